import assert from "node:assert/strict";
import { test } from "node:test";
import { dataDirOrSkip, resolveDataDir } from "../src/data/paths.js";
import type { LabelledAnswer } from "../src/data/types.js";
import type { HarmDetector } from "../src/detector/harm-detector.js";
import { createCategoryRepair } from "../src/detoxifier/category-repair.js";
import { benignStats, changedAnswers, evaluateBenign, isDisclaimerOnly, loadBenignSets } from "../src/eval/benign.js";
import { evaluateProtector, formatProtectorReport } from "../src/eval/protector-suite.js";
import { createProtector } from "../src/protector.js";

const ANSWER = "Drink water and rest.";

test("a disclaimer put before the whole answer is counted apart from real changes", () => {
  const outcomes = [
    { action: "pass" as const, original: ANSWER, output: ANSWER },
    { action: "repaired" as const, original: ANSWER, output: `Please note: I'm not a doctor.\n\n${ANSWER}` },
    { action: "repaired" as const, original: ANSWER, output: "I can't help with political campaigning.", trigger: "political-decline" as const },
    { action: "refused" as const, original: ANSWER, output: "Sorry, I can not answer this question.", trigger: "harmful-request" as const },
  ];
  assert.deepEqual(outcomes.map(isDisclaimerOnly), [false, true, false, false]);
  assert.deepEqual(benignStats(outcomes), { n: 4, changed: 2, changedRate: 0.5, disclaimerOnly: 1, actions: { pass: 1, repaired: 2, refused: 1 }, changedBy: { "political-decline": 1, "harmful-request": 1 } });
  assert.deepEqual(benignStats([]), { n: 0, changed: 0, changedRate: 0, disclaimerOnly: 0, actions: {} });
});

test("the answers behind a changed count are listed with their question and the protector's reason", () => {
  const result = (action: "pass" | "repaired" | "refused", output: string) => ({ action, output, original: ANSWER, flagged: action !== "pass", score: action === "refused" ? 0.9 : 0.1, explanation: `why ${action}`, attempts: [] });
  const items = [{ question: "a" }, { question: "b" }, { question: "c" }];
  const results = [result("pass", ANSWER), result("repaired", `Please note: I'm not a doctor.\n\n${ANSWER}`), result("refused", "Sorry, I can not answer this question.")];
  assert.deepEqual(changedAnswers(items, results), [{ question: "c", action: "refused", score: 0.9, explanation: "why refused" }]);
});

test("evaluateBenign runs the protector over each set and reports progress", async () => {
  const detector: HarmDetector = { name: "kw", threshold: 0.5, score: async (items) => items.map((i) => ({ score: i.answer.includes("knife") ? 0.9 : 0.1, flagged: i.answer.includes("knife"), threshold: 0.5, signals: {} })) };
  const health = { name: "health", categorize: async (items: readonly unknown[]) => items.map(() => ({ category: "health_consultation" as const, probability: 0.9 })) };
  const protector = createProtector({ detector, categorizer: health, detoxifiers: [createCategoryRepair()] });
  const set = (answers: string[]): LabelledAnswer[] => answers.map((answer) => ({ source: "t", question: "q", answer, label: 0 }));
  const progress: Array<[number, number]> = [];
  const stats = await evaluateBenign(protector, { a: set([ANSWER, "Use a knife carefully."]), b: set(["I'm not a doctor, so this is not medical advice; please be careful and consult your doctor."]) }, (d, t) => progress.push([d, t]));
  // The plain health answer only gets a disclaimer; the flagged one is refused (a real change).
  assert.deepEqual(stats.a, { n: 2, changed: 1, changedRate: 0.5, disclaimerOnly: 1, actions: { repaired: 1, refused: 1 }, changedBy: { "harm-score": 1 } });
  assert.deepEqual(stats.b, { n: 1, changed: 0, changedRate: 0, disclaimerOnly: 0, actions: { pass: 1 } });
  assert.deepEqual(progress, [[2, 3], [3, 3]]);
});

test("the benign sets load from the shared data, and the protector suite reports each", async (t) => {
  if (!dataDirOrSkip(t, "benign", "vicuna-80") || !dataDirOrSkip(t, "vlguard") || !dataDirOrSkip(t, "mm-safetybench", "answers-gemini") || !dataDirOrSkip(t, "gptfuzz")) return;
  const sets = await loadBenignSets(resolveDataDir());
  assert.deepEqual(Object.keys(sets), ["vicuna-80", "llava-bench", "vlguard-test", "alpaca-eval-held-out"]);
  assert.ok(Object.values(sets).every((s) => s.length > 50 && s.every((a) => a.label === 0)));
  // Held out from the request check's training, and from models the detector never trained on.
  const alpaca = sets["alpaca-eval-held-out"] ?? [];
  assert.equal(new Set(alpaca.map((a) => a.model)).size, 3);
  assert.ok(alpaca.length >= 300 && alpaca.length <= 500, `${alpaca.length} answers`);

  const passAll: HarmDetector = { name: "none", threshold: 0.5, score: async (items) => items.map(() => ({ score: 0, flagged: false, threshold: 0.5, signals: {} })) };
  const report = await evaluateProtector(createProtector({ detector: passAll }), resolveDataDir());
  assert.deepEqual(Object.keys(report.benign), ["vicuna-80", "llava-bench", "vlguard-test", "alpaca-eval-held-out", "mm-safetybench-safe"]);
  assert.equal(report.benign["vicuna-80"]?.n, sets["vicuna-80"]?.length);
  assert.ok(Object.values(report.benign).every((b) => b.changed === 0 && b.disclaimerOnly === 0));
  // Nothing is repaired, so every unsafe answer is listed as passing, and no benign answer as changed.
  const all = report.mmSafetyBench.all.at(-1);
  assert.equal(report.residual.length, all?.unsafe);
  assert.equal(all?.safe, report.benign["mm-safetybench-safe"]?.n, "every safe answer is counted in its scenario's row");
  assert.ok(report.mmSafetyBench.all.every((row) => row.safeChanged === 0));
  assert.equal(report.residual.filter((x) => x.heldOut).length, report.mmSafetyBench.heldOut.at(-1)?.unsafe);
  assert.deepEqual(Object.keys(report.changed), ["vicuna-80", "llava-bench", "vlguard-test", "alpaca-eval-held-out"]);
  assert.ok(Object.values(report.changed).every((list) => list.length === 0));
  // GPTFuzz's evaluation answers: every jailbroken one passes, in 20 question rows and the total.
  const gptFuzzAll = report.gptFuzz?.jailbroken.at(-1);
  assert.equal(report.gptFuzz?.jailbroken.length, 21);
  assert.equal(gptFuzzAll?.residual, gptFuzzAll?.unsafe);
  assert.ok((gptFuzzAll?.unsafe ?? 0) > 500);
  assert.equal(report.gptFuzz?.harmless.changed, 0);
  const text = formatProtectorReport(report);
  assert.match(text, /unsafe answers that pass/);
  assert.match(text, /GPTFuzz evaluate\.csv .* pass unchanged 545 of 545/);
});
