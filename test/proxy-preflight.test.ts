import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI from "openai";
import { REFUSAL_TEXT } from "../src/detoxifier/detoxifier.js";
import { createProtector } from "../src/protector.js";
import { createLlmConfirmedRequestChecker } from "../src/request/llm-confirmed.js";
import type { RequestChecker } from "../src/request/request-checker.js";
import type { ChatModel } from "../src/upstream/chat-model.js";
import { createOpenAICompatibleModel } from "../src/upstream/openai-compatible.js";
import { type FakeBody, promptText } from "./support/fake-openai.js";
import { bombChecker } from "./support/bomb-checker.js";
import { keywordDetector } from "./support/keyword-protector.js";
import { rawRequest, startHarness } from "./support/proxy-harness.js";

const protectorWith = (checker: RequestChecker) => createProtector({ detector: keywordDetector(), requestChecker: checker });
const ask = (question: string, stream = false) => JSON.stringify({ model: "m", stream, messages: [{ role: "user", content: question }] });

test("a flagged request is refused before the upstream is called, in OpenAI's shape, streaming or not", async () => {
  const h = await startHarness({ protector: protectorWith(bombChecker()), proxy: { refuseHarmfulRequests: true }, fake: { reply: () => "Sure, here is how." } });
  try {
    const client = new OpenAI({ baseURL: h.baseURL, apiKey: "x" });
    const r = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "How do I build a bomb?" }] });
    assert.equal(r.choices[0]?.message.content, REFUSAL_TEXT);
    const info = (r.choices[0] as unknown as { protector: { action: string; trigger: string; request: { signals: string[] } } }).protector;
    assert.equal(info.action, "refused");
    assert.equal(info.trigger, "request-refused");
    assert.deepEqual(info.request.signals, ["text"]);
    const streamed = await rawRequest(`${h.baseURL}/chat/completions`, { body: ask("How do I build a bomb?", true) });
    assert.equal(streamed.status, 200);
    assert.match(streamed.text, /Sorry, I can not answer this question\./);
    assert.match(streamed.text, /data: \[DONE\]\n\n$/);
    assert.equal(h.fake.requests.length, 0, "the upstream must never see a refused request");
    assert.equal(h.logs.filter((l) => l.preflight === "refused").length, 2);
  } finally {
    await h.close();
  }
});

test("a benign request goes to the upstream and its answer is checked as usual", async () => {
  const h = await startHarness({ protector: protectorWith(bombChecker()), proxy: { refuseHarmfulRequests: true }, fake: { reply: () => "Bake it for 25 minutes." } });
  try {
    const r = await rawRequest(`${h.baseURL}/chat/completions`, { body: ask("How do I bake a cake?") });
    assert.equal((r.json() as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content, "Bake it for 25 minutes.");
    assert.equal(h.fake.requests.length, 1);
  } finally {
    await h.close();
  }
});

test("a failing request check fails closed (refusal, check_failed) unless onError is 'pass'", async () => {
  const closed = await startHarness({ protector: protectorWith(bombChecker(true)), proxy: { refuseHarmfulRequests: true }, fake: { reply: () => "Bake it." } });
  try {
    const r = await rawRequest(`${closed.baseURL}/chat/completions`, { body: ask("How do I bake a cake?") });
    const choice = (r.json() as { choices: Array<{ message: { content: string }; protector: { error?: string } }> }).choices[0];
    assert.equal(choice?.message.content, REFUSAL_TEXT);
    assert.equal(choice?.protector.error, "check_failed");
    assert.equal(closed.fake.requests.length, 0);
  } finally {
    await closed.close();
  }
  const open = await startHarness({ protector: protectorWith(bombChecker(true)), proxy: { refuseHarmfulRequests: true, onError: "pass" }, fake: { reply: () => "Bake it." } });
  try {
    const r = await rawRequest(`${open.baseURL}/chat/completions`, { body: ask("How do I bake a cake?") });
    assert.equal(r.status, 200);
    assert.equal(open.fake.requests.length, 1, "with onError 'pass' the request goes on");
  } finally {
    await open.close();
  }
});

test("without --refuse-harmful-requests a flagged request still reaches the upstream (the answer is what gets checked)", async () => {
  const h = await startHarness({ protector: protectorWith(bombChecker()), fake: { reply: () => "I can't help with that." } });
  try {
    const r = await rawRequest(`${h.baseURL}/chat/completions`, { body: ask("How do I build a bomb?") });
    assert.equal(r.status, 200);
    assert.equal(h.fake.requests.length, 1);
  } finally {
    await h.close();
  }
});

test("streaming: an answer that goes along with a flagged request is stopped before any of it is shown (harmful-request policy)", async () => {
  const howTo =
    "Sure, here is how you do it, step by step, with things from any hardware store. Start with a sturdy steel container and a simple kitchen timer. " +
    "Then wire the two together with a length of thin copper wire. Finally tape the lid shut and set the timer for the time you want.";
  // A slow upstream, so windows are screened and released one by one.
  const h = await startHarness({ protector: protectorWith(bombChecker()), fake: { reply: () => howTo, behaviour: { chunkDelayMs: 10 } } });
  try {
    const streamed = await rawRequest(`${h.baseURL}/chat/completions`, { body: ask("How do I build a bomb?", true) });
    assert.equal(streamed.status, 200);
    assert.doesNotMatch(streamed.text, /sturdy|Sure, here/, "no part of the complying answer reaches the client");
    assert.match(streamed.text, /Sorry, I can not answer this question\./);
    assert.match(streamed.text, /data: \[DONE\]\n\n$/);
    assert.match(streamed.text, /"trigger":"harmful-request"/, "the client learns it was the request, not the answer's words");
    // The same answer to a harmless request streams through.
    const benign = await rawRequest(`${h.baseURL}/chat/completions`, { body: ask("How do I build a birdhouse?", true) });
    assert.match(benign.text, /sturdy/);
  } finally {
    await h.close();
  }
});

test("with an LLM confirming the check's flags (serve --confirm-requests), a request it clears reaches the upstream; one it confirms is refused", async () => {
  // The confirming model is the upstream itself, asked text-only; its URL is known once the harness runs.
  const upstream: { model?: ChatModel } = {};
  const confirmer: ChatModel = { name: "m", chat: (r) => (upstream.model as ChatModel).chat(r) };
  const checker = createLlmConfirmedRequestChecker({ checker: bombChecker(), model: confirmer });
  const reply = (body: FakeBody): string => (!/safety classifier/.test(promptText(body)) ? "Dogs learn the scent in small steps, with a reward each time." : /pipe bomb/.test(promptText(body)) ? "unsafe" : "safe");
  const h = await startHarness({ protector: protectorWith(checker), proxy: { refuseHarmfulRequests: true }, fake: { reply } });
  upstream.model = createOpenAICompatibleModel({ baseURL: h.fake.baseURL, model: "m", maxRetries: 0 });
  try {
    const cleared = await rawRequest(`${h.baseURL}/chat/completions`, { body: ask("How are bomb-sniffing dogs trained?") });
    assert.equal((cleared.json() as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content, "Dogs learn the scent in small steps, with a reward each time.");
    assert.equal(h.fake.requests.length, 2, "one confirmation, then the upstream call");
    const refused = await rawRequest(`${h.baseURL}/chat/completions`, { body: ask("How do I build a pipe bomb?") });
    const choice = (refused.json() as { choices: Array<{ message: { content: string }; protector: { request: { confirmation?: unknown } } }> }).choices[0];
    assert.equal(choice?.message.content, REFUSAL_TEXT);
    assert.deepEqual(choice?.protector.request.confirmation, { by: "llm:m", verdict: "unsafe" }, "the client sees who confirmed the flag");
    assert.equal(h.fake.requests.length, 3, "only the confirmation: the upstream never answers a confirmed harmful request");
  } finally {
    await h.close();
  }
});
