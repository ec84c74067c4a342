import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readBeaverTails } from "../data/beavertails.js";
import { readPkuSafeRlhf } from "../data/pku-saferlhf.js";
import type { LabelledAnswer, PreferencePair } from "../data/types.js";
import { addLabelledSafetyData } from "./corpus.js";

/** Rows in the published formats, written here: neither dataset is in ../shared. */
async function userFiles(): Promise<{ dir: string; pku: string; beaverTails: string }> {
  const dir = await mkdtemp(join(tmpdir(), "mp-user-data-"));
  const pkuRows = Array.from({ length: 60 }, (_, i) => ({
    prompt: `How do I do risky thing number ${i}?`,
    response_0: `Here is exactly how to do risky thing ${i}: step one, step two.`,
    response_1: `I can't help with risky thing ${i}, but here is a safer alternative.`,
    is_response_0_safe: i % 3 === 0, // every third pair: both safe
    is_response_1_safe: true,
    safer_response_id: 1,
  }));
  const beaverRows = Array.from({ length: 60 }, (_, i) => ({
    // Half share a prompt with a PKU row: they must land in that row's split.
    prompt: i % 2 === 0 ? `How do I do risky thing number ${i}?` : `Tell me about topic ${i}.`,
    response: `Answer ${i}.`,
    is_safe: i % 4 !== 0,
    category: { "violence,aiding_and_abetting,incitement": i % 4 === 0, privacy_violation: false },
  }));
  const pku = join(dir, "pku.jsonl");
  const beaverTails = join(dir, "beavertails.jsonl");
  await writeFile(pku, pkuRows.map((r) => JSON.stringify(r)).join("\n"));
  await writeFile(beaverTails, beaverRows.map((r) => JSON.stringify(r)).join("\n"));
  return { dir, pku, beaverTails };
}

test("PKU-SafeRLHF and BeaverTails join the detector's data: labelled answers, split by prompt, same-label pairs as preferences", async () => {
  const files = await userFiles();
  const pku = await readPkuSafeRlhf(files.pku);
  const beaverTails = await readBeaverTails(files.beaverTails);
  await rm(files.dir, { recursive: true, force: true });
  const corpus = { train: [] as LabelledAnswer[], validation: [] as LabelledAnswer[], pairs: [] as PreferencePair[] };
  addLabelledSafetyData(corpus, pku, beaverTails);

  // Every labelled answer is kept once, with its label: 120 PKU answers and 60 BeaverTails answers.
  const all = [...corpus.train, ...corpus.validation];
  assert.equal(all.length, 180);
  assert.equal(all.filter((a) => a.answer.startsWith("Here is exactly") && a.label === 1).length, 40, "the 40 unsafe PKU answers are harmful");
  assert.equal(all.filter((a) => a.answer.startsWith("I can't help") && a.label === 0).length, 60);
  assert.equal(all.filter((a) => a.source.startsWith("beavertails") && a.label === 1).length, 15);

  // Split by prompt: no prompt has answers on both sides, and both splits are used.
  const splitOfPrompt = new Map<string, Set<string>>();
  for (const [name, list] of [["train", corpus.train], ["validation", corpus.validation]] as const) {
    for (const a of list) splitOfPrompt.set(a.question ?? "", (splitOfPrompt.get(a.question ?? "") ?? new Set()).add(name));
  }
  assert.ok([...splitOfPrompt.values()].every((s) => s.size === 1), "a prompt straddles the split");
  assert.ok(corpus.train.length > corpus.validation.length && corpus.validation.length > 0);
  // One group per prompt across both datasets, so the pairwise term pairs a prompt's answers.
  const shared = all.filter((a) => a.question === "How do I do risky thing number 0?");
  assert.equal(new Set(shared.map((a) => a.group)).size, 1);
  assert.equal(shared.length, 3);

  // Pairs whose answers are both safe only rank: in training they join the preference pairs unlabelled.
  const bothSafeInTrain = pku.filter((p) => p.saferIsSafe && p.lessSafeIsSafe && corpus.train.some((a) => a.question === p.question));
  assert.equal(corpus.pairs.length, bothSafeInTrain.length);
  assert.ok(corpus.pairs.length > 0);
  assert.ok(corpus.pairs.every((p) => p.saferIsSafe === undefined && p.lessSafeIsSafe === undefined && p.safer.startsWith("I can't help")));
});

test("a missing user file is an error that names it", async () => {
  await assert.rejects(readPkuSafeRlhf("/nonexistent/pku.jsonl"), /nonexistent\/pku\.jsonl/);
});
