import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { REFUSAL_TEXT } from "../src/detoxifier/detoxifier.js";
import { startFakeOpenAI } from "./support/fake-openai.js";
import { brokenProtector, containsHarm, keywordProtector } from "./support/keyword-protector.js";
import { chatBody, postChat, rawRequest, startHarness, type Harness } from "./support/proxy-harness.js";
import { BENIGN_ANSWER, cannedReply } from "./support/replies.js";

interface Completion {
  choices: Array<{ message: { role: string; content: string | null; tool_calls?: unknown }; finish_reason: string; logprobs: unknown; protector: { action: string; flagged: boolean; score: number | null; category: string | null; trigger?: string; error?: string } }>;
  model: string;
  id: string;
}
interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

let h: Harness;
before(async () => {
  h = await startHarness({ fake: { reply: cannedReply } });
});
after(async () => {
  await h.close();
});

const PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

test("a benign answer passes byte-for-byte with a protector object; the request reaches the upstream unchanged", async () => {
  h.fake.reset();
  const body = {
    model: "fake-model",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "What is chemistry?" }, { type: "image_url", image_url: { url: PNG, detail: "low" } }, { type: "image_url", image_url: { url: "https://example.com/cat.png" } }] },
    ],
    tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }],
    temperature: 0.2,
    some_vendor_field: { keep: true },
  };
  const raw = `${JSON.stringify(body, null, 1)}\n`;
  const r = await rawRequest(`${h.baseURL}/chat/completions`, { body: raw });
  assert.equal(r.status, 200);
  const c = r.json() as Completion;
  assert.equal(c.choices[0]?.message.content, BENIGN_ANSWER);
  assert.deepEqual(c.choices[0]?.protector, { action: "pass", flagged: false, score: 0.05, category: null });
  assert.equal(c.model, "fake-model");
  assert.equal(h.fake.requests.length, 1);
  assert.equal(h.fake.requests[0]?.rawBody, raw, "forwarded byte-for-byte");
  assert.equal(h.fake.requests[0]?.path, "/v1/chat/completions");
});

test("the protector sees the last user turn's text and first image", async () => {
  const seen: Array<{ question?: string; image?: { url: string } }> = [];
  const inner = keywordProtector();
  const spy = { ...inner, protect: async (i: Parameters<typeof inner.protect>[0], o?: Parameters<typeof inner.protect>[1]) => (seen.push({ question: i.question, image: i.image }), inner.protect(i, o)) };
  const s = await startHarness({ protector: spy, fake: { reply: cannedReply } });
  try {
    const r = await postChat(s, {
      model: "m",
      messages: [
        { role: "user", content: "first question" },
        { role: "assistant", content: "first answer" },
        { role: "user", content: [{ type: "text", text: "What is in" }, { type: "image_url", image_url: { url: PNG } }, { type: "text", text: "this picture?" }, { type: "image_url", image_url: { url: "https://example.com/2.png" } }] },
      ],
    });
    assert.equal(r.status, 200);
    assert.deepEqual(seen, [{ question: "What is in\nthis picture?", image: { url: PNG } }]);
  } finally {
    await s.close();
  }
});

test("a harmful answer is repaired before the client sees it; its logprobs are dropped", async () => {
  const r = await postChat(h, chatBody("How do I build a bomb?", { logprobs: true }));
  assert.equal(r.status, 200);
  assert.ok(!containsHarm(r.text), r.text);
  const c = r.json() as Completion;
  assert.equal(c.choices[0]?.protector.action, "redacted");
  assert.equal(c.choices[0]?.protector.flagged, true);
  assert.equal(c.choices[0]?.protector.score, 0.95);
  assert.equal(c.choices[0]?.protector.trigger, "harm-score", "the client learns why it changed");
  assert.equal(c.choices[0]?.logprobs, null);
  assert.match(c.choices[0]?.message.content ?? "", /Safety note/);

  const refused = await postChat(h, chatBody("poison"));
  const rc = refused.json() as Completion;
  assert.equal(rc.choices[0]?.message.content, REFUSAL_TEXT);
  assert.equal(rc.choices[0]?.protector.action, "refused");
  assert.ok(!containsHarm(refused.text), "!containsHarm(refused.text)");
});

test("a flagged tool call is withheld; a benign one passes", async () => {
  // The shared fake answers text only, so this test serves tool calls from its own tiny upstream.
  const { createServer } = await import("node:http");
  let args = '{"city":"Paris"}';
  const up = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "c1", object: "chat.completion", created: 1, model: "m", choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [{ id: "t1", type: "function", function: { name: "send", arguments: args } }] }, finish_reason: "tool_calls" }] }));
    });
  });
  await new Promise<void>((r) => up.listen(0, "127.0.0.1", r));
  const port = (up.address() as { port: number }).port;
  const s = await startHarness({ proxy: { upstream: `http://127.0.0.1:${port}/v1` } });
  try {
    const ok = (await postChat(s, chatBody("weather?"))).json() as Completion;
    assert.equal(ok.choices[0]?.message.content, null);
    assert.ok(ok.choices[0]?.message.tool_calls, "ok.choices[0]?.message.tool_calls");
    assert.equal(ok.choices[0]?.finish_reason, "tool_calls");
    args = '{"body":"mix the explosive with fuel"}';
    const r = await postChat(s, chatBody("weather?"));
    const bad = r.json() as Completion & { choices: Array<{ protector: { withheld?: boolean } }> };
    assert.equal(bad.choices[0]?.message.tool_calls, undefined);
    assert.equal(bad.choices[0]?.message.content, REFUSAL_TEXT);
    assert.equal(bad.choices[0]?.finish_reason, "stop");
    assert.equal(bad.choices[0]?.protector.withheld, true);
    assert.ok(!containsHarm(r.text), "!containsHarm(r.text)");
  } finally {
    await s.close();
    await new Promise((r) => up.close(r));
  }
});

test("GET /v1/models is passed through; GET /health answers locally", async () => {
  const m = await rawRequest(`${h.baseURL}/models`);
  assert.equal(m.status, 200);
  assert.deepEqual((m.json() as { data: Array<{ id: string }> }).data.map((d) => d.id), ["fake-model"]);
  const health = await rawRequest(`${h.server.url}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(health.json(), { status: "ok" });
});

test("upstream 4xx are passed through as they are", async () => {
  h.fake.enqueue({ mode: "fail", status: 429, error: { message: "rate limited, slow down", type: "rate_limit_error", code: "rate_limit" }, headers: { "retry-after": "7" } });
  const r = await postChat(h, chatBody("hi"));
  assert.equal(r.status, 429);
  assert.equal(r.headers["retry-after"], "7");
  assert.deepEqual(r.json(), { error: { message: "rate limited, slow down", type: "rate_limit_error", param: null, code: "rate_limit" } });
  h.fake.enqueue({ mode: "fail", status: 404, error: { message: "model not found", type: "invalid_request_error", code: "model_not_found" } });
  assert.equal((await postChat(h, chatBody("hi"))).status, 404);
});

test("upstream 5xx, invalid JSON, wrong shape → 502 with a clear message and no upstream text", async () => {
  h.fake.enqueue({ mode: "fail", status: 503, error: { message: "secret internal explosive detail" } });
  const r = await postChat(h, chatBody("hi"));
  assert.equal(r.status, 502);
  const e = r.json() as ErrorBody;
  assert.equal(e.error.type, "upstream_error");
  assert.match(e.error.message, /HTTP 503/);
  assert.ok(!r.text.includes("secret"), "!r.text.includes(\"secret\")");

  h.fake.enqueue({ mode: "malformed", variant: "invalid-json" });
  const bad = await postChat(h, chatBody("hi"));
  assert.equal(bad.status, 502);
  assert.match((bad.json() as ErrorBody).error.message, /invalid JSON/);

  h.fake.enqueue({ mode: "malformed", variant: "wrong-shape" });
  const shape = await postChat(h, chatBody("hi"));
  assert.equal(shape.status, 502);
  assert.match((shape.json() as ErrorBody).error.message, /not a chat completion/);
});

test("connection refused and a hanging upstream → 502", async () => {
  const dead = await startFakeOpenAI();
  const deadURL = dead.baseURL;
  await dead.close();
  const s = await startHarness({ proxy: { upstream: deadURL } });
  try {
    const r = await postChat(s, chatBody("hi"));
    assert.equal(r.status, 502);
    const e = r.json() as ErrorBody;
    assert.equal(e.error.code, "upstream_unreachable");
    assert.match(e.error.message, /ECONNREFUSED/);
  } finally {
    await s.close();
  }
  const slow = await startHarness({ proxy: { upstreamTimeoutMs: 150 }, fake: { behaviour: { mode: "hang" } } });
  try {
    const started = Date.now();
    const r = await postChat(slow, chatBody("hi"));
    assert.equal(r.status, 502);
    assert.equal((r.json() as ErrorBody).error.code, "upstream_timeout");
    assert.ok(Date.now() - started < 2000, "Date.now() - started < 2000");
    const sr = await postChat(slow, chatBody("hi", { stream: true }));
    assert.equal(sr.status, 502, "no headers had been sent, so a stream request gets a 502 too");
  } finally {
    await slow.close();
  }
});

test("a slow upstream is waited for", async () => {
  h.fake.enqueue({ delayMs: 300 });
  const r = await postChat(h, chatBody("hi"));
  assert.equal(r.status, 200);
  assert.equal((r.json() as Completion).choices[0]?.message.content, BENIGN_ANSWER);
});

test("fail closed: a crashing protector refuses; with onError 'pass' the answer goes through", async () => {
  const closed = await startHarness({ protector: brokenProtector(), fake: { reply: cannedReply } });
  const open = await startHarness({ protector: brokenProtector(), fake: { reply: cannedReply }, proxy: { onError: "pass" } });
  try {
    const c = (await postChat(closed, chatBody("hi"))).json() as Completion;
    assert.equal(c.choices[0]?.message.content, REFUSAL_TEXT);
    assert.equal(c.choices[0]?.protector.action, "refused");
    assert.equal(c.choices[0]?.protector.error, "check_failed");
    assert.equal(c.choices[0]?.protector.trigger, "check-failed");
    const o = (await postChat(open, chatBody("hi"))).json() as Completion;
    assert.equal(o.choices[0]?.message.content, BENIGN_ANSWER);
    assert.equal(o.choices[0]?.protector.error, "check_failed");
  } finally {
    await closed.close();
    await open.close();
  }
});

test("bearer auth: wrong or missing key → 401; the right key works and is not sent upstream", async () => {
  const s = await startHarness({ proxy: { apiKey: "s3cret-key", upstreamKey: "upstream-key" }, fake: { reply: cannedReply } });
  try {
    for (const headers of [{} as Record<string, string>, { authorization: "Bearer wrong" }, { authorization: "Bearer s3cret-ke" }, { authorization: "Basic s3cret-key" }, { authorization: "Bearer s3cret-key-and-more" }]) {
      const r = await postChat(s, chatBody("hi"), headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal((r.json() as ErrorBody).error.code, "invalid_api_key");
    }
    assert.equal((await rawRequest(`${s.baseURL}/models`)).status, 401);
    assert.equal(s.fake.requests.length, 0, "nothing reached the upstream");
    const ok = await postChat(s, chatBody("hi"), { authorization: "Bearer s3cret-key" });
    assert.equal(ok.status, 200);
    assert.equal(s.fake.requests[0]?.headers.authorization, "Bearer upstream-key");
    assert.equal((await rawRequest(`${s.server.url}/health`)).status, 200, "health needs no key");
  } finally {
    await s.close();
  }
});

test("without keys of its own the proxy forwards the client's Authorization", async () => {
  h.fake.reset();
  await postChat(h, chatBody("hi"), { authorization: "Bearer client-own-key" });
  assert.equal(h.fake.requests[0]?.headers.authorization, "Bearer client-own-key");
});

test("logs hold no question or answer unless logContent is on", async () => {
  const before = h.logs.length;
  await postChat(h, chatBody("How do I build a bomb? unique-question-marker"));
  await postChat(h, chatBody("unique-question-marker", { stream: true }));
  const lines = JSON.stringify(h.logs.slice(before));
  assert.equal(h.logs.length - before, 2);
  assert.ok(!lines.includes("unique-question-marker"), "!lines.includes(\"unique-question-marker\")");
  assert.ok(!lines.includes("Chemistry"), "!lines.includes(\"Chemistry\")");
  assert.ok(!containsHarm(lines), "!containsHarm(lines)");
  assert.match(lines, /"action":"redacted"/);

  const s = await startHarness({ proxy: { logContent: true }, fake: { reply: cannedReply } });
  try {
    await postChat(s, chatBody("How do I build a bomb? unique-question-marker"));
    await postChat(s, chatBody("unique-question-marker", { stream: true }));
    const all = JSON.stringify(s.logs);
    assert.ok(all.includes("unique-question-marker"), "all.includes(\"unique-question-marker\")");
    assert.ok(all.includes("explosive"), "the original answer is logged when asked for");
    assert.equal(s.logs[1]?.content?.answers[0]?.original, BENIGN_ANSWER);
  } finally {
    await s.close();
  }
});

test("graceful shutdown: in-flight requests finish, new ones are refused", async () => {
  const s = await startHarness({ fake: { reply: cannedReply, behaviour: { delayMs: 400 } } });
  const inflight = postChat(s, chatBody("hi"));
  const inflightStream = postChat(s, chatBody("hi", { stream: true }));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(s.server.proxy.inFlight(), 2);
  const closing = s.server.close();
  const health = await rawRequest(`${s.server.url}/health`).catch((err: unknown) => err);
  assert.ok(health instanceof Error || (health as { status: number }).status === 503, "no new work while draining");
  const [r, rs] = await Promise.all([inflight, inflightStream]);
  await closing;
  assert.equal(r.status, 200);
  assert.equal((r.json() as Completion).choices[0]?.message.content, BENIGN_ANSWER);
  assert.equal(rs.status, 200);
  assert.ok(rs.text.endsWith("data: [DONE]\n\n"), "rs.text.endsWith(\"data: [DONE]\\n\\n\")");
  await assert.rejects(postChat(s, chatBody("hi")), "the port is closed");
  await s.fake.close();
});
