import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { REFUSAL_TEXT } from "../src/detoxifier/detoxifier.js";
import { brokenProtector, containsHarm, keywordProtector } from "./support/keyword-protector.js";
import { chatBody, postChat, sseEvents, startHarness, streamedText, type Harness } from "./support/proxy-harness.js";
import { BENIGN_ANSWER, cannedReply, HARMFUL_ANSWER } from "./support/replies.js";

let h: Harness;
before(async () => {
  h = await startHarness({ fake: { reply: cannedReply }, proxy: { streamWindow: { minChars: 40 } } });
});
after(async () => {
  await h.close();
});

test("a benign stream arrives whole, in the upstream's chunk shape, with protector on the final chunk and usage after it", async () => {
  h.fake.setBehaviour({ chunkChars: 5 });
  const r = await postChat(h, chatBody("What is chemistry?", { stream: true, stream_options: { include_usage: true } }));
  assert.equal(r.status, 200);
  assert.match(r.headers["content-type"] ?? "", /text\/event-stream/);
  const { events, done } = sseEvents(r.text);
  assert.ok(done, "ends with [DONE]");
  assert.equal(streamedText(events), BENIGN_ANSWER);
  const upstreamId = events[0]?.id;
  assert.match(upstreamId ?? "", /^chatcmpl-fake-/);
  for (const e of events) {
    assert.equal(e.id, upstreamId);
    assert.equal(e.object, "chat.completion.chunk");
    assert.equal(e.model, "fake-model");
    assert.equal(typeof e.created, "number");
  }
  assert.equal(events[0]?.choices[0]?.delta.role, "assistant");
  const final = events.at(-2);
  assert.equal(final?.choices[0]?.finish_reason, "stop");
  assert.deepEqual(final?.choices[0]?.protector, { action: "pass", flagged: false, score: 0.05, category: null });
  assert.ok(events.at(-1)?.usage, "the usage chunk comes last");
  assert.ok(events.filter((e) => e.choices.some((c) => c.delta.content)).length > 1, "it really streamed in several windows");
  h.fake.setBehaviour({});
});

test("every byte sent is recorded: a harmful answer split across chunk boundaries never reaches the client", async () => {
  for (const chunkChars of [1, 2, 3, 5, 7, 11, 64]) {
    h.fake.setBehaviour({ chunkChars });
    const r = await postChat(h, chatBody("How do I build a bomb?", { stream: true }));
    assert.equal(r.status, 200);
    for (const c of r.chunks) assert.ok(!containsHarm(c.bytes.toString("utf8")), `chunkChars ${chunkChars}: a chunk carried harm`);
    assert.ok(!containsHarm(r.text), `chunkChars ${chunkChars}: ${r.text}`);
    const { events, done } = sseEvents(r.text);
    assert.ok(done, "done");
    const text = streamedText(events);
    assert.ok(text.startsWith("Chemistry is the study of matter"), "the benign opening was released before the flag");
    assert.match(text, /Safety note/);
    const final = events.at(-1)?.choices[0];
    assert.equal(final?.protector?.flagged, true);
    assert.notEqual(final?.protector?.action, "pass");
    assert.equal(final?.protector?.trigger, "harm-score");
  }
  h.fake.setBehaviour({});
});

test("harmful from the first word: nothing of it is sent, the client gets the refusal", async () => {
  h.fake.setBehaviour({ chunkChars: 4 });
  const r = await postChat(h, chatBody("poison", { stream: true }));
  const { events } = sseEvents(r.text);
  assert.equal(streamedText(events), REFUSAL_TEXT);
  assert.ok(!containsHarm(r.text), "!containsHarm(r.text)");
  h.fake.setBehaviour({});
});

test("a flagged window stops relaying: the upstream stream is cut early", async () => {
  h.fake.reset();
  h.fake.setBehaviour({ chunkChars: 4, chunkDelayMs: 5, reply: () => `${HARMFUL_ANSWER} ${"More filler text about labs. ".repeat(40)}` });
  const r = await postChat(h, chatBody("bomb", { stream: true }));
  assert.ok(!containsHarm(r.text), "!containsHarm(r.text)");
  assert.equal(sseEvents(r.text).events.at(-1)?.choices[0]?.protector?.stopped, true);
  await new Promise((res) => setTimeout(res, 50));
  assert.equal(h.fake.requests.at(-1)?.closedEarly, true, "the proxy hung up on the upstream");
  h.fake.setBehaviour({});
});

test("the last window is checked at the end of the stream", async () => {
  h.fake.setBehaviour({ chunkChars: 6, reply: () => `${BENIGN_ANSWER} Add poison.` });
  const r = await postChat(h, chatBody("hi", { stream: true }));
  const text = streamedText(sseEvents(r.text).events);
  assert.ok(!containsHarm(r.text), text);
  assert.ok(text.startsWith(BENIGN_ANSWER.slice(0, 60)), "text.startsWith(BENIGN_ANSWER.slice(0, 60))");
  h.fake.setBehaviour({});
});

test("upstream dies mid-stream: an error event ends the stream, held text is dropped, no [DONE]", async () => {
  const s = await startHarness({ fake: { reply: cannedReply, behaviour: { mode: "hang", afterChunks: 14, chunkChars: 8 } }, proxy: { upstreamTimeoutMs: 200, streamWindow: { minChars: 40 } } });
  try {
    const r = await postChat(s, chatBody("bomb", { stream: true }));
    assert.equal(r.status, 200);
    const { events, done } = sseEvents(r.text);
    assert.ok(!done, "!done");
    const err = events.at(-1)?.error;
    assert.equal(err?.type, "upstream_error");
    assert.match(err?.message ?? "", /did not respond within 200 ms/);
    assert.ok(!containsHarm(r.text), "!containsHarm(r.text)");
    assert.ok(HARMFUL_ANSWER.startsWith(streamedText(events)), "only checked text of the answer went out");
  } finally {
    await s.close();
  }
});

test("a malformed upstream chunk ends the stream with an error event", async () => {
  for (const variant of ["invalid-json", "wrong-shape"] as const) {
    h.fake.enqueue({ mode: "malformed", variant });
    const r = await postChat(h, chatBody("hi", { stream: true }));
    const { events, done } = sseEvents(r.text);
    assert.ok(!done, "!done");
    assert.equal(events.at(-1)?.error?.code, "upstream_stream_failed", variant);
  }
});

test("upstream 5xx before the stream starts → 502 JSON", async () => {
  h.fake.enqueue({ mode: "fail", status: 500 });
  const r = await postChat(h, chatBody("hi", { stream: true }));
  assert.equal(r.status, 502);
});

test("stream checks fail closed; with onError 'pass' the stream goes through", async () => {
  const closed = await startHarness({ protector: brokenProtector(), fake: { reply: cannedReply } });
  const open = await startHarness({ protector: brokenProtector(), fake: { reply: cannedReply }, proxy: { onError: "pass" } });
  try {
    const c = sseEvents((await postChat(closed, chatBody("hi", { stream: true }))).text).events;
    assert.equal(streamedText(c), REFUSAL_TEXT);
    assert.equal(c.at(-1)?.choices[0]?.protector?.action, "refused");
    const o = sseEvents((await postChat(open, chatBody("hi", { stream: true }))).text).events;
    assert.equal(streamedText(o), BENIGN_ANSWER);
  } finally {
    await closed.close();
    await open.close();
  }
});

test("window 'all': no answer text before the upstream finishes", async () => {
  const s = await startHarness({ fake: { reply: cannedReply, behaviour: { chunkChars: 10, chunkDelayMs: 10 } }, proxy: { streamWindow: { mode: "all" } } });
  try {
    const r = await postChat(s, chatBody("hi", { stream: true }));
    const contentChunks = r.chunks.filter((c) => c.bytes.toString().includes('"content":"C'));
    assert.equal(contentChunks.length, 1);
    assert.equal(streamedText(sseEvents(r.text).events), BENIGN_ANSWER);
  } finally {
    await s.close();
  }
});

test("the client leaving mid-stream aborts the upstream", async () => {
  h.fake.reset();
  h.fake.setBehaviour({ chunkChars: 4, chunkDelayMs: 20, reply: () => "Calm words about gardening. ".repeat(40) });
  const ctl = new AbortController();
  const res = await fetch(`${h.baseURL}/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(chatBody("hi", { stream: true })), signal: ctl.signal });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  ctl.abort();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(h.fake.requests.at(-1)?.closedEarly, true);
  assert.equal(h.server.proxy.inFlight(), 0);
  h.fake.setBehaviour({});
});

test("the detector sees every window before release (screen calls ≥ released windows)", async () => {
  const protector = keywordProtector();
  const s = await startHarness({ protector, fake: { reply: cannedReply, behaviour: { chunkChars: 3 } }, proxy: { streamWindow: { minChars: 30 } } });
  try {
    const r = await postChat(s, chatBody("hi", { stream: true }));
    const events = sseEvents(r.text).events;
    let shown = "";
    for (const e of events) {
      const piece = e.choices[0]?.delta.content;
      if (!piece) continue;
      shown += piece;
      assert.ok(protector.detector.seen.includes(shown), `released ${JSON.stringify(shown)} unchecked`);
    }
    assert.equal(shown, BENIGN_ANSWER);
  } finally {
    await s.close();
  }
});
