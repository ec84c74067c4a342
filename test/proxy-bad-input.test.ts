import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { rawRequest, startHarness, type Harness } from "./support/proxy-harness.js";
import { cannedReply } from "./support/replies.js";

let h: Harness;
before(async () => {
  h = await startHarness({ fake: { reply: cannedReply }, proxy: { maxBodyBytes: 200_000, maxImageBytes: 50_000, maxImages: 3 } });
});
after(async () => {
  await h.close();
});

const user = (content: unknown): unknown => ({ model: "m", messages: [{ role: "user", content }] });
const img = (url: unknown): unknown => ({ type: "image_url", image_url: { url } });

/** [name, raw body, expected status, message pattern, expected param (undefined: not checked)]. */
const CASES: Array<[string, string, number, RegExp, string?]> = [
  ["invalid JSON", '{"model": "m", "messages": [', 400, /not valid JSON/],
  ["empty body", "", 400, /body is empty/],
  ["a JSON array", "[]", 400, /must be a JSON object/],
  ["JSON null", "null", 400, /must be a JSON object/],
  ["missing model", JSON.stringify({ messages: [{ role: "user", content: "hi" }] }), 400, /model is required/, "model"],
  ["model is a number", JSON.stringify({ model: 4, messages: [{ role: "user", content: "hi" }] }), 400, /model must be a string/, "model"],
  ["missing messages", JSON.stringify({ model: "m" }), 400, /messages is required/, "messages"],
  ["messages empty", JSON.stringify({ model: "m", messages: [] }), 400, /messages must not be empty/, "messages"],
  ["messages a string", JSON.stringify({ model: "m", messages: "hi" }), 400, /messages must be an array/, "messages"],
  ["message without role", JSON.stringify({ model: "m", messages: [{ content: "hi" }] }), 400, /role must be one of/, "messages[0].role"],
  ["unknown role", JSON.stringify({ model: "m", messages: [{ role: "wizard", content: "hi" }] }), 400, /role must be one of/, "messages[0].role"],
  ["content a number", JSON.stringify(user(42)), 400, /content must be a string or an array/, "messages[0].content"],
  ["content missing", JSON.stringify({ model: "m", messages: [{ role: "user" }] }), 400, /content must be a string or an array/, "messages[0].content"],
  ["content parts empty", JSON.stringify(user([])), 400, /content parts must not be empty/, "messages[0].content"],
  ["unknown part type", JSON.stringify(user([{ type: "video", video: "x" }])), 400, /content part type must be text, image_url/, "messages[0].content[0].type"],
  ["text part without text", JSON.stringify(user([{ type: "text" }])), 400, /expected string/, "messages[0].content[0].text"],
  ["image_url a string", JSON.stringify(user([{ type: "image_url", image_url: "https://x/a.png" }])), 400, /expected object/, "messages[0].content[0].image_url"],
  ["image file: URL", JSON.stringify(user([img("file:///etc/passwd")])), 400, /http\(s\) URL or a data:image/, "messages[0].content[0].image_url.url"],
  ["image ftp: URL", JSON.stringify(user([img("ftp://example.com/a.png")])), 400, /http\(s\) URL or a data:image/],
  ["image a bare path", JSON.stringify(user([img("/etc/passwd")])), 400, /http\(s\) URL or a data:image/],
  ["data: URL not an image", JSON.stringify(user([img("data:text/plain;base64,aGVsbG8=")])), 400, /data:image\/<type>;base64/],
  ["data: URL bad base64", JSON.stringify(user([img("data:image/png;base64,***not base64***")])), 400, /not valid base64/],
  ["data: URL of bytes that are no image", JSON.stringify(user([img("data:image/png;base64,AAAAAAAAAAAA")])), 400, /does not hold an image/, "messages[0].content[0].image_url.url"],
  ["data: image too large", JSON.stringify(user([img(`data:image/png;base64,${"A".repeat(80_000)}`)])), 413, /the limit is 50000/],
  ["too many images", JSON.stringify(user([1, 2, 3, 4].map((i) => img(`https://example.com/${i}.png`)))), 400, /too many images: at most 3/],
  ["image detail wrong", JSON.stringify(user([{ type: "image_url", image_url: { url: "https://x/a.png", detail: "ultra" } }])), 400, /detail: Invalid option/, "messages[0].content[0].image_url.detail"],
  ["system content with an image", JSON.stringify({ model: "m", messages: [{ role: "system", content: [img("https://x/a.png")] }] }), 400, /content part type must be text/],
  ["tool message without tool_call_id", JSON.stringify({ model: "m", messages: [{ role: "tool", content: "42" }] }), 400, /tool_call_id: .*expected string/, "messages[0].tool_call_id"],
  ["stream not a boolean", JSON.stringify({ ...(user("hi") as object), stream: "yes" }), 400, /stream must be a boolean/, "stream"],
  ["temperature a string", JSON.stringify({ ...(user("hi") as object), temperature: "hot" }), 400, /expected number/, "temperature"],
  ["n is zero", JSON.stringify({ ...(user("hi") as object), n: 0 }), 400, /^n: Too small: expected number to be >=1/, "n"],
  ["max_tokens negative", JSON.stringify({ ...(user("hi") as object), max_tokens: -5 }), 400, /^max_tokens: Too small/, "max_tokens"],
  ["tools not an array", JSON.stringify({ ...(user("hi") as object), tools: { type: "function" } }), 400, /^tools: .*expected array/, "tools"],
  ["body over the limit", JSON.stringify(user("x".repeat(250_000))), 413, /larger than 200000 bytes/],
];

test(`${CASES.length} bad requests each get a 4xx with a clear OpenAI-style error, and never reach the upstream`, async () => {
  assert.ok(CASES.length >= 20, "CASES.length >= 20");
  h.fake.reset();
  for (const [name, body, status, pattern, param] of CASES) {
    const r = await rawRequest(`${h.baseURL}/chat/completions`, { body });
    assert.equal(r.status, status, `${name}: ${r.text}`);
    const e = r.json() as { error: { message: string; type: string; param: string | null; code: string | null } };
    assert.deepEqual(Object.keys(e.error).sort(), ["code", "message", "param", "type"], name);
    assert.equal(e.error.type, "invalid_request_error", name);
    assert.match(e.error.message, pattern, `${name}: ${e.error.message}`);
    if (param !== undefined) assert.equal(e.error.param, param, name);
    // The server is still up after each.
    assert.equal((await rawRequest(`${h.server.url}/health`)).status, 200, `${name}: health`);
  }
  assert.equal(h.fake.requests.length, 0, "no bad request was forwarded");
  const ok = await rawRequest(`${h.baseURL}/chat/completions`, { body: JSON.stringify(user("hi")) });
  assert.equal(ok.status, 200, "a good request still works afterwards");
});

test("wrong method and unknown paths get OpenAI-style 405/404", async () => {
  const get = await rawRequest(`${h.baseURL}/chat/completions`);
  assert.equal(get.status, 405);
  assert.match((get.json() as { error: { message: string } }).error.message, /use POST/);
  const unknown = await rawRequest(`${h.baseURL}/embeddings`, { body: "{}" });
  assert.equal(unknown.status, 404);
  assert.match((unknown.json() as { error: { message: string } }).error.message, /no route for POST \/v1\/embeddings/);
});

test("a client that sends a truncated body and hangs up does not take the server down", async () => {
  const { request } = await import("node:http");
  await new Promise<void>((resolve) => {
    const req = request(`${h.baseURL}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", "content-length": "1000" } });
    req.on("error", () => resolve());
    req.write('{"model": "m", "mess');
    setTimeout(() => {
      req.destroy();
      resolve();
    }, 50);
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await rawRequest(`${h.server.url}/health`)).status, 200);
  assert.equal(h.server.proxy.inFlight(), 0);
});
