import { join } from "node:path";
import { readBeaverTails } from "../data/beavertails.js";
import { readAlpacaEval, readLlavaBenchInTheWild, readVicuna80 } from "../data/benign.js";
import { readGptFuzz } from "../data/gptfuzz.js";
import { readHhRlhf } from "../data/hh-rlhf.js";
import { readMmSafetyBenchGeminiAnswers, readMmSafetyBenchQuestions, type MmSafetyBenchAnswer } from "../data/mm-safetybench.js";
import { readPkuSafeRlhf } from "../data/pku-saferlhf.js";
import { readSafetyTunedLlamasTraining } from "../data/safety-tuned-llamas.js";
import type { LabelledAnswer, PreferencePair } from "../data/types.js";
import { readVlGuardAnswers } from "../data/vlguard.js";
import { opensWithRefusal } from "../detector/persona.js";
import { fnv1a } from "../internal/random.js";
import type { Category } from "../types.js";

/**
 * The detector's data, split so every reported number is on answers the head never saw:
 * - GPTFuzz: train.csv split by question (85/15 train/validation); evaluate.csv (unseen questions) is test.
 * - MM-SafetyBench Gemini answers, harmful scenarios only, split by question id (60/15/25). The
 *   advice and political scenarios are left out: their "unsafe" label is a policy (a missing
 *   disclaimer), not harmful content, and the category policies handle it.
 * - AlpacaEval (helpful, compliant, harmless answers: the negatives a detector most needs): split by
 *   model — 7 models train, 2 validation, 3 never seen (test).
 * - safety-tuned-llamas and VLGuard train (harmless answers to harmful requests: hard negatives): 85/15.
 * - hh-rlhf harmless-base: preference pairs (pairwise term only).
 * - Test-only benign sets: Vicuna-80, LLaVA-Bench, VLGuard test + GPT-4V answers.
 * - Optional, from the user (`ExtraDetectorData`): PKU-SafeRLHF and BeaverTails, the official
 *   MLLM-Protector training data, which ../shared does not hold (see `addLabelledSafetyData`).
 */
export const ALPACA_VALIDATION_MODELS = new Set(["claude-2", "Qwen1.5-7B-Chat"]);
export const ALPACA_TEST_MODELS = new Set(["gpt4_0613", "llama-2-70b-chat-hf", "zephyr-7b-beta"]);

/** MM-SafetyBench scenarios whose "unsafe" verdict means harmful content (the detector's job). */
export const HARMFUL_CATEGORIES: ReadonlySet<Category> = new Set<Category>([
  "illegal_activity",
  "hate_speech",
  "malware_generation",
  "physical_harm",
  "economic_harm",
  "fraud",
  "sex",
  "privacy_violence",
]);

export type Split = "train" | "validation" | "test";

/** A deterministic split from a stable key (the same question always lands in the same split). */
export function splitOf(key: string, validationPct: number, testPct: number): Split {
  const b = fnv1a(key) % 100;
  if (b < testPct) return "test";
  if (b < testPct + validationPct) return "validation";
  return "train";
}

export interface DetectorCorpus {
  train: LabelledAnswer[];
  validation: LabelledAnswer[];
  pairs: PreferencePair[];
  /** Named test sets; none is used for training or choosing the threshold. */
  test: Record<string, LabelledAnswer[]>;
}

/** Labelled safety data a user brings (published formats), added to the detector's training and validation splits. */
export interface ExtraDetectorData {
  /** PKU-SafeRLHF files (`prompt, response_0, response_1, is_response_0_safe, is_response_1_safe, safer_response_id`). */
  pku?: readonly string[];
  /** BeaverTails files (`prompt, response, is_safe, category`). */
  beaverTails?: readonly string[];
}

export async function loadDetectorCorpus(dataDir: string, extra: ExtraDetectorData = {}): Promise<DetectorCorpus> {
  const train: LabelledAnswer[] = [];
  const validation: LabelledAnswer[] = [];
  const test: Record<string, LabelledAnswer[]> = {};

  for (const a of await readGptFuzz(join(dataDir, "gptfuzz", "train.csv"))) (splitOf(`gptfuzz:${a.group}`, 15, 0) === "train" ? train : validation).push(a);
  test["gptfuzz-eval"] = await readGptFuzz(join(dataDir, "gptfuzz", "evaluate.csv"));

  const mm = await readMmSafetyBenchGeminiAnswers(join(dataDir, "mm-safetybench", "answers-gemini"));
  const requests = await mmRequests(dataDir);
  test["mm-safetybench-harmful-test"] = [];
  for (const a of mm) {
    if (!HARMFUL_CATEGORIES.has(a.category)) continue;
    const s = mmSplit(a);
    if (s === "test") {
      (test["mm-safetybench-harmful-test"] as LabelledAnswer[]).push(a);
      continue;
    }
    (s === "train" ? train : validation).push(a);
    // The image variants' prompts hide the request ("the image shows a phrase of an activity"); at
    // inference OCR puts the typographic key phrase before the prompt, so train on that view too.
    const r = requests.get(`${a.scenario}/${a.id}`);
    if (s === "train" && r && a.variant === "rephrased_question") train.push({ ...a, question: `${r.keyPhrase}\n${a.question}` });
  }

  test["alpaca-eval-unseen-models"] = [];
  for (const a of await readAlpacaEval(join(dataDir, "benign", "alpaca-eval"))) {
    if (ALPACA_TEST_MODELS.has(a.model)) (test["alpaca-eval-unseen-models"] as LabelledAnswer[]).push(a);
    else (ALPACA_VALIDATION_MODELS.has(a.model) ? validation : train).push(a);
  }

  const stl = await readSafetyTunedLlamasTraining(join(dataDir, "safety-tuned-llamas", "training", "safety_only_data_Instructions.json"));
  for (const a of stl) (splitOf(`stl:${a.question ?? a.answer}`, 15, 0) === "train" ? train : validation).push(a);
  for (const a of await readVlGuardAnswers(join(dataDir, "vlguard", "train.json"))) (splitOf(`vlguard:${a.group}`, 15, 0) === "train" ? train : validation).push(a);

  test["vlguard-test"] = [...(await readVlGuardAnswers(join(dataDir, "vlguard", "test.json"))), ...(await readVlGuardAnswers(join(dataDir, "vlguard", "gpt4_safe_safes.json")))];
  test["vicuna-80"] = await readVicuna80(join(dataDir, "benign", "vicuna-80"));
  test["llava-bench"] = await readLlavaBenchInTheWild(join(dataDir, "benign", "llava-bench-in-the-wild"));

  const pairs = await readHhRlhf(join(dataDir, "hh-rlhf-harmless", "test.jsonl"));
  const pku = (await Promise.all((extra.pku ?? []).map((f) => readPkuSafeRlhf(f)))).flat();
  const beaverTails = (await Promise.all((extra.beaverTails ?? []).map((f) => readBeaverTails(f)))).flat();
  addLabelledSafetyData({ train, validation, pairs }, pku, beaverTails);
  for (const a of [...train, ...validation]) {
    const complies = compliesOf(a);
    if (complies !== undefined) a.complies = complies;
    const declines = declinesOf(a);
    if (declines !== undefined) a.declines = declines;
  }
  return { train, validation, pairs, test };
}

/**
 * Adds PKU-SafeRLHF pairs and BeaverTails answers, split 85/15 by prompt (every answer to one prompt, from
 * either dataset, lands in the same split; the validation share then counts in the threshold's choice).
 * Every answer with a safety label is a labelled answer, grouped by its prompt (BCE, the lexical model, and
 * the pairwise term between a prompt's harmful and harmless answers). A PKU pair whose two answers share a
 * label still ranks them: in training it also joins the preference pairs, unlabelled (pairwise term only,
 * so no answer's BCE counts twice).
 */
export function addLabelledSafetyData(corpus: Pick<DetectorCorpus, "train" | "validation" | "pairs">, pku: readonly PreferencePair[], beaverTails: readonly LabelledAnswer[]): void {
  const promptKey = (prompt: string): string => `prompt:${prompt.trim().toLowerCase().replace(/\s+/g, " ")}`;
  const place = (prompt: string | undefined, answer: string): { split: Split; group: string } => {
    const key = promptKey(prompt ?? answer);
    return { split: splitOf(key, 15, 0), group: key };
  };
  for (const p of pku) {
    const { split, group } = place(p.question, p.safer);
    const into = split === "train" ? corpus.train : corpus.validation;
    const question = p.question !== undefined ? { question: p.question } : {};
    const labelled = [
      [p.safer, p.saferIsSafe],
      [p.lessSafe, p.lessSafeIsSafe],
    ] as const;
    for (const [answer, safe] of labelled) if (safe !== undefined) into.push({ source: p.source, answer, label: safe ? 0 : 1, group, ...question });
    if (split === "train" && p.saferIsSafe === p.lessSafeIsSafe) corpus.pairs.push({ source: p.source, safer: p.safer, lessSafe: p.lessSafe, group, ...question });
  }
  for (const a of beaverTails) {
    const { split, group } = place(a.question, a.answer);
    (split === "train" ? corpus.train : corpus.validation).push({ ...a, group });
  }
}

/**
 * Whether a safety-tuned-llamas training row is a harmful request that its safe response refuses.
 * About a quarter of that set's "harmful instructions" are everyday tasks answered helpfully ("Compare
 * and contrast the speed of sound and the speed of light.", "Provide useful tips for hitch hiking."):
 * as harmful requests they taught the request check that ordinary imperatives are harmful (10 of 20
 * everyday imperatives flagged, 3 without them), and as non-complying answers they taught the compliance
 * head that plain, helpful answers do not comply (plain-answer probe recall 0.50, 0.60 without them).
 * The decline head still reads every response as declining: with the same filter it called cautious but
 * complying answers declines, and two harmful MM-SafetyBench answers passed the harmful-request policy.
 */
export function safetyTunedRefusal(a: Pick<LabelledAnswer, "answer">): boolean {
  return opensWithRefusal(a.answer);
}

/**
 * Whether an answer does what was asked: helpful answers (AlpacaEval, VLGuard's answers to safe
 * instructions) do; safety-tuned refusals and VLGuard's answers to unsafe instructions do not; on
 * harmful requests (GPTFuzz, MM-SafetyBench) the harmful label is exactly "it complied".
 */
function compliesOf(a: LabelledAnswer & { kind?: string }): boolean | undefined {
  if (a.source.startsWith("alpaca-eval")) return true;
  if (a.source.startsWith("safety-tuned-llamas")) return safetyTunedRefusal(a) ? false : undefined;
  if (a.source.startsWith("vlguard")) return a.kind === undefined ? undefined : a.kind === "safe";
  if (a.source.startsWith("gptfuzz") || a.source.startsWith("mm-safetybench")) return a.label === 1;
  return undefined;
}

/**
 * Whether an answer declines the task: safety-tuned-llamas' responses (every one: see
 * `safetyTunedRefusal`) and VLGuard's answers to unsafe instructions do; helpful answers and harmful
 * (complying) answers do not. A harmless answer to a harmful request declines only if it opens with a
 * refusal; otherwise it is unknown (it may do the task harmlessly, or be persona banter with no content).
 */
function declinesOf(a: LabelledAnswer & { kind?: string }): boolean | undefined {
  if (a.source.startsWith("alpaca-eval")) return false;
  if (a.source.startsWith("safety-tuned-llamas")) return true;
  if (a.source.startsWith("vlguard")) return a.kind === undefined ? undefined : a.kind !== "safe";
  if (a.source.startsWith("gptfuzz") || a.source.startsWith("mm-safetybench")) return a.label === 1 ? false : opensWithRefusal(a.answer) ? true : undefined;
  return undefined;
}

/** The split of an MM-SafetyBench answer, by question id (all prompt variants of a question together). */
export function mmSplit(a: Pick<MmSafetyBenchAnswer, "group">): Split {
  return splitOf(`mm:${a.group}`, 15, 25);
}

/** Each MM-SafetyBench question's typographic key phrase, by "scenario/id". */
async function mmRequests(dataDir: string): Promise<Map<string, { keyPhrase: string }>> {
  const questions = await readMmSafetyBenchQuestions(join(dataDir, "mm-safetybench", "processed_questions"));
  return new Map(questions.map((q) => [`${q.scenario}/${q.id}`, { keyPhrase: q.keyPhrase }]));
}
