import assert from "node:assert/strict";
import { test } from "node:test";
import type { LanguageModelV3CallOptions, LanguageModelV3GenerateResult, LanguageModelV3StreamPart, LanguageModelV3StreamResult } from "@ai-sdk/provider";
import { generateText, streamText, wrapLanguageModel } from "ai";
import { MockLanguageModelV3, simulateReadableStream } from "ai/test";
import { protectorMiddleware } from "../src/adapters/ai-sdk.js";
import { REFUSAL_TEXT } from "../src/detoxifier/detoxifier.js";
import type { ProtectInput, Protector } from "../src/types.js";
import { brokenProtector, containsHarm, keywordProtector } from "./support/keyword-protector.js";
import { BENIGN_ANSWER, HARMFUL_ANSWER } from "./support/replies.js";

const usage = { inputTokens: { total: 3, noCache: 3, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 9, text: 9, reasoning: 0 } };

function generated(content: LanguageModelV3GenerateResult["content"], unified: "stop" | "tool-calls" = "stop"): LanguageModelV3GenerateResult {
  return { content, finishReason: { unified, raw: unified }, usage, warnings: [] };
}

function streamed(text: string, size: number, extra: LanguageModelV3StreamPart[] = [], tail: LanguageModelV3StreamPart[] = []): LanguageModelV3StreamResult {
  const deltas: LanguageModelV3StreamPart[] = [];
  for (let i = 0; i < text.length; i += size) deltas.push({ type: "text-delta", id: "t1", delta: text.slice(i, i + size) });
  const chunks: LanguageModelV3StreamPart[] = [
    { type: "stream-start", warnings: [] },
    { type: "response-metadata", id: "r1", modelId: "mock" },
    ...extra,
    { type: "text-start", id: "t1" },
    ...deltas,
    { type: "text-end", id: "t1" },
    ...tail,
    { type: "finish", finishReason: { unified: "stop", raw: "stop" }, usage },
  ];
  return { stream: simulateReadableStream({ chunks }) };
}

/** Runs the middleware's wrapStream over `doStream` and collects every part it lets out. */
async function wrapStreamParts(mw: ReturnType<typeof protectorMiddleware>, doStream: () => Promise<LanguageModelV3StreamResult>, params: LanguageModelV3CallOptions = { prompt: [] }): Promise<LanguageModelV3StreamPart[]> {
  const res = (await mw.wrapStream?.({ doStream, doGenerate: async () => generated([]), params, model: new MockLanguageModelV3() })) as LanguageModelV3StreamResult;
  const parts: LanguageModelV3StreamPart[] = [];
  const reader = res.stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
  return parts;
}

const wrap = (model: MockLanguageModelV3, protector: Protector = keywordProtector(), onError?: "refuse" | "pass") =>
  wrapLanguageModel({ model, middleware: protectorMiddleware({ protector, streamWindow: { minChars: 40 }, onError }) });

test("generateText: a benign answer is unchanged; the outcome is in providerMetadata.protector", async () => {
  const model = wrap(new MockLanguageModelV3({ doGenerate: generated([{ type: "text", text: BENIGN_ANSWER }]) }));
  const r = await generateText({ model, prompt: "What is chemistry?" });
  assert.equal(r.text, BENIGN_ANSWER);
  assert.deepEqual(r.providerMetadata?.protector, { action: "pass", flagged: false, score: 0.05, category: null });
});

test("generateText: a harmful answer is repaired before the caller sees it", async () => {
  const model = wrap(new MockLanguageModelV3({ doGenerate: generated([{ type: "text", text: HARMFUL_ANSWER }]) }));
  const r = await generateText({ model, prompt: "bomb?" });
  assert.ok(!containsHarm(r.text), r.text);
  assert.equal((r.providerMetadata?.protector as { flagged: boolean }).flagged, true);
});

test("wrapGenerate: flagged tool calls and reasoning are withheld; benign ones kept", async () => {
  const mw = protectorMiddleware({ protector: keywordProtector() });
  const params: LanguageModelV3CallOptions = { prompt: [{ role: "user", content: [{ type: "text", text: "send it" }] }] };
  const model = new MockLanguageModelV3();
  const call = (content: LanguageModelV3GenerateResult["content"]) =>
    mw.wrapGenerate?.({ doGenerate: async () => generated(content, "tool-calls"), doStream: async () => streamed("", 1), params, model }) as Promise<LanguageModelV3GenerateResult>;
  const ok = await call([{ type: "reasoning", text: "The user wants mail sent." }, { type: "tool-call", toolCallId: "1", toolName: "send", input: '{"to":"a@b.c"}' }]);
  assert.equal(ok.content.length, 2);
  assert.equal(ok.finishReason.unified, "tool-calls");
  const bad = await call([{ type: "tool-call", toolCallId: "1", toolName: "send", input: '{"body":"how to mix the explosive"}' }]);
  assert.deepEqual(bad.content, [{ type: "text", text: REFUSAL_TEXT }]);
  assert.equal(bad.finishReason.unified, "stop");
  assert.equal((bad.providerMetadata?.protector as { withheld?: boolean }).withheld, true);
});

test("streamText: a benign answer streams in several windows, whole and unchanged", async () => {
  const model = wrap(new MockLanguageModelV3({ doStream: streamed(BENIGN_ANSWER, 3) }));
  const r = streamText({ model, prompt: "What is chemistry?" });
  const pieces: string[] = [];
  for await (const t of r.textStream) pieces.push(t);
  assert.equal(pieces.join(""), BENIGN_ANSWER);
  assert.ok(pieces.length > 1, "released in more than one window");
  assert.equal(((await r.providerMetadata)?.protector as { action: string }).action, "pass");
});

test("streamText: harmful text split over deltas never reaches the caller", async () => {
  for (const size of [1, 2, 5, 13]) {
    const model = wrap(new MockLanguageModelV3({ doStream: streamed(HARMFUL_ANSWER, size) }));
    const r = streamText({ model, prompt: "bomb?" });
    let text = "";
    for await (const t of r.textStream) {
      assert.ok(!containsHarm(t), `size ${size}: ${t}`);
      text += t;
    }
    assert.ok(!containsHarm(text), "!containsHarm(text)");
    assert.ok(text.startsWith("Chemistry is the study"), `size ${size}: ${text}`);
    assert.equal(((await r.providerMetadata)?.protector as { flagged: boolean }).flagged, true);
  }
});

test("streamText: a harmful last sentence, shorter than a window, is caught by the final check", async () => {
  const model = wrap(new MockLanguageModelV3({ doStream: streamed(`${BENIGN_ANSWER} Add poison.`, 3) }));
  const r = streamText({ model, prompt: "hi" });
  let text = "";
  for await (const t of r.textStream) text += t;
  assert.equal(containsHarm(text), false, text);
  assert.ok(text.startsWith(BENIGN_ANSWER.slice(0, 60)), text);
});

test("wrapStream: reasoning is held to the end and withheld with a flagged answer; raw parts never pass", async () => {
  const mw = protectorMiddleware({ protector: keywordProtector(), streamWindow: { minChars: 40 } });
  const params: LanguageModelV3CallOptions = { prompt: [{ role: "user", content: [{ type: "text", text: "x" }] }] };
  const run = (text: string, extra: LanguageModelV3StreamPart[]) => wrapStreamParts(mw, async () => streamed(text, 4, extra), params);
  const reasoning: LanguageModelV3StreamPart[] = [
    { type: "raw", rawValue: { leaked: "explosive" } },
    { type: "reasoning-start", id: "r" },
    { type: "reasoning-delta", id: "r", delta: "Thinking it over." },
    { type: "reasoning-end", id: "r" },
  ];
  const ok = await run(BENIGN_ANSWER, reasoning);
  assert.ok(!ok.some((p) => p.type === "raw"), "!ok.some((p) => p.type === \"raw\")");
  const types = ok.map((p) => p.type);
  assert.ok(types.indexOf("reasoning-delta") > types.lastIndexOf("text-delta"), "reasoning comes after the checked text");
  const bad = await run(HARMFUL_ANSWER, reasoning);
  assert.ok(!bad.some((p) => p.type.startsWith("reasoning")), "!bad.some((p) => p.type.startsWith(\"reasoning\"))");
  assert.ok(!containsHarm(JSON.stringify(bad)), "harm in the parts");
  assert.equal(bad.filter((p) => p.type === "text-start").length, 1);
  assert.equal(bad.at(-1)?.type, "finish");
});

test("wrapStream: tool input split over deltas is screened whole; a flagged call is withheld", async () => {
  const mw = protectorMiddleware({ protector: keywordProtector(), streamWindow: { minChars: 40 } });
  const toolParts = (input: string): LanguageModelV3StreamPart[] => [
    { type: "tool-input-start", id: "c1", toolName: "send" },
    ...[...input.matchAll(/.{1,3}/g)].map((m): LanguageModelV3StreamPart => ({ type: "tool-input-delta", id: "c1", delta: m[0] })),
    { type: "tool-input-end", id: "c1" },
    { type: "tool-call", toolCallId: "c1", toolName: "send", input },
  ];
  const run = (input: string) => wrapStreamParts(mw, async () => streamed(BENIGN_ANSWER, 6, [], toolParts(input)));
  const ok = await run('{"to":"bob"}');
  assert.equal(ok.filter((p) => p.type.startsWith("tool-")).length, toolParts('{"to":"bob"}').length);
  const bad = await run('{"body":"mix the explosive"}');
  assert.equal(bad.filter((p) => p.type.startsWith("tool-")).length, 0, "the tool call is withheld");
  assert.equal(containsHarm(JSON.stringify(bad)), false, "no fragment of the arguments went out");
  const text = bad.flatMap((p) => (p.type === "text-delta" ? [p.delta] : [])).join("");
  assert.ok(text.endsWith(REFUSAL_TEXT), text);
});

test("an error part mid-stream ends the stream with an error; held text is dropped", async () => {
  const mw = protectorMiddleware({ protector: keywordProtector(), streamWindow: { minChars: 40 } });
  const chunks: LanguageModelV3StreamPart[] = [
    { type: "text-start", id: "t" },
    { type: "text-delta", id: "t", delta: "Short start, then the explosive" },
    { type: "error", error: new Error("provider overloaded") },
  ];
  const parts = await wrapStreamParts(mw, async () => ({ stream: simulateReadableStream({ chunks }) }));
  assert.deepEqual(parts.map((p) => p.type), ["error"]);
  assert.match(String((parts[0] as { error: Error }).error.message), /provider overloaded/);
});

test("the protector gets the last user turn's text and first image", async () => {
  const seen: ProtectInput[] = [];
  const inner = keywordProtector();
  const spy: Protector = { ...inner, protect: async (i, o) => (seen.push(i), inner.protect(i, o)) };
  const model = wrap(new MockLanguageModelV3({ doGenerate: generated([{ type: "text", text: BENIGN_ANSWER }]) }), spy);
  const png = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
  await generateText({
    model,
    messages: [
      { role: "user", content: "earlier" },
      { role: "assistant", content: "ok" },
      { role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image", image: png, mediaType: "image/png" }] },
    ],
  });
  assert.equal(seen[0]?.question, "What is this?");
  assert.equal(seen[0]?.image?.url, `data:image/png;base64,${Buffer.from(png).toString("base64")}`);
});

test("fail closed around a crashing protector, in generate and stream; onError 'pass' passes", async () => {
  const g = await generateText({ model: wrap(new MockLanguageModelV3({ doGenerate: generated([{ type: "text", text: BENIGN_ANSWER }]) }), brokenProtector()), prompt: "hi" });
  assert.equal(g.text, REFUSAL_TEXT);
  const s = streamText({ model: wrap(new MockLanguageModelV3({ doStream: streamed(BENIGN_ANSWER, 7) }), brokenProtector()), prompt: "hi" });
  let text = "";
  for await (const t of s.textStream) text += t;
  assert.equal(text, REFUSAL_TEXT);
  const p = await generateText({ model: wrap(new MockLanguageModelV3({ doGenerate: generated([{ type: "text", text: BENIGN_ANSWER }]) }), brokenProtector(), "pass"), prompt: "hi" });
  assert.equal(p.text, BENIGN_ANSWER);
});
