import assert from "node:assert/strict";
import { test } from "node:test";
import { promiseMemo } from "./promise-memo.js";

test("one call per key while remembered; a failure is retried; the oldest key goes first", async () => {
  const memo = promiseMemo<number>(2);
  let calls = 0;
  const make = (v: number) => () => {
    calls++;
    return Promise.resolve(v);
  };
  assert.equal(await memo("a", make(1)), 1);
  assert.equal(await memo("a", make(99)), 1, "remembered");
  assert.equal(calls, 1);
  await assert.rejects(memo("b", () => Promise.reject(new Error("down"))));
  await new Promise((r) => setImmediate(r));
  assert.equal(await memo("b", make(2)), 2, "a rejected promise is forgotten");
  await memo("c", make(3));
  assert.equal(await memo("a", make(4)), 4, "past the size, the oldest key was dropped");
});
