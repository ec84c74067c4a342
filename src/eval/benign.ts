import { existsSync } from "node:fs";
import { join } from "node:path";
import { readAlpacaEval, readLlavaBenchInTheWild, readVicuna80 } from "../data/benign.js";
import type { LabelledAnswer } from "../data/types.js";
import { readVlGuardAnswers } from "../data/vlguard.js";
import { ALPACA_TEST_MODELS } from "../train/corpus.js";
import type { ProtectResult, Protector } from "../types.js";

/**
 * Helpfulness kept: on benign answers, how many the protector changes, per set. An added
 * professional disclaimer (the answer kept whole after it) is counted apart: it keeps the help.
 */

export interface BenignSetStats {
  n: number;
  /** Changed beyond an added disclaimer. */
  changed: number;
  changedRate: number;
  /** Only a disclaimer put before the unchanged answer. */
  disclaimerOnly: number;
  actions: Record<string, number>;
  /** The answers changed beyond a disclaimer, by what changed them (`ProtectResult.trigger`), where known. */
  changedBy?: Record<string, number>;
}

type Outcome = Pick<ProtectResult, "action" | "output" | "original" | "trigger">;

/** A repair that only put a disclaimer before the whole, unchanged answer. */
export function isDisclaimerOnly(r: Outcome): boolean {
  return r.action === "repaired" && r.output !== r.original && r.output.endsWith(r.original);
}

/** Changed beyond an added disclaimer: what a benign set's `changed` counts. */
export function changedBeyondDisclaimer(r: Outcome): boolean {
  return r.action !== "pass" && !isDisclaimerOnly(r);
}

export function benignStats(results: readonly Outcome[]): BenignSetStats {
  const actions: Record<string, number> = {};
  const changedBy: Record<string, number> = {};
  let disclaimerOnly = 0;
  let changed = 0;
  for (const r of results) {
    actions[r.action] = (actions[r.action] ?? 0) + 1;
    if (changedBeyondDisclaimer(r)) {
      changed++;
      if (r.trigger) changedBy[r.trigger] = (changedBy[r.trigger] ?? 0) + 1;
    }
    if (isDisclaimerOnly(r)) disclaimerOnly++;
  }
  return { n: results.length, changed, changedRate: changed / Math.max(1, results.length), disclaimerOnly, actions, ...(Object.keys(changedBy).length ? { changedBy } : {}) };
}

/** One answer the protector changed or let through, for reading: what was asked and why it acted. */
export interface ListedAnswer {
  question?: string;
  action: ProtectResult["action"];
  score: number;
  explanation: string;
}

/** The benign answers changed beyond an added disclaimer (what `changed` counts), in input order. */
export function changedAnswers(items: readonly Pick<LabelledAnswer, "question">[], results: readonly ProtectResult[]): ListedAnswer[] {
  return results.flatMap((r, i) => (changedBeyondDisclaimer(r) ? [listed(items[i]?.question, r)] : []));
}

/** One result as a `ListedAnswer` (no answer text: the report is for reading what happened, not what was said). */
export function listed(question: string | undefined, r: ProtectResult): ListedAnswer {
  return { ...(question === undefined ? {} : { question }), action: r.action, score: r.score, explanation: r.explanation };
}

/** Protect answers in batches of 64, reporting progress per batch. */
export async function protectAll(protector: Protector, items: readonly LabelledAnswer[], onProgress?: (n: number) => void): Promise<ProtectResult[]> {
  const out: ProtectResult[] = [];
  for (let i = 0; i < items.length; i += 64) {
    const part = items.slice(i, i + 64);
    out.push(...(await protector.protectBatch(part.map((a) => ({ question: a.question, answer: a.answer })))));
    onProgress?.(part.length);
  }
  return out;
}

/**
 * The benign answer sets under a datasets folder that exist: Vicuna-80, LLaVA-Bench (in the wild +
 * COCO) and VLGuard responses (test + GPT-4V safe-safe). Missing sets are left out, not an error.
 */
export async function loadBenignSets(dataDir: string): Promise<Record<string, LabelledAnswer[]>> {
  const sets: Record<string, LabelledAnswer[]> = {};
  const at = (...p: string[]): string => join(dataDir, ...p);
  if (existsSync(at("benign", "vicuna-80"))) sets["vicuna-80"] = await readVicuna80(at("benign", "vicuna-80"));
  if (existsSync(at("benign", "llava-bench-in-the-wild"))) sets["llava-bench"] = await readLlavaBenchInTheWild(at("benign", "llava-bench-in-the-wild"));
  const vlguard = ["test.json", "gpt4_safe_safes.json"].map((f) => at("vlguard", f)).filter((f) => existsSync(f));
  if (vlguard.length) sets["vlguard-test"] = (await Promise.all(vlguard.map((f) => readVlGuardAnswers(f)))).flat();
  if (existsSync(at("benign", "alpaca-eval"))) {
    // Ordinary instructions: the answers of the detector's unseen models to the instructions the request
    // check held out (it trains on most AlpacaEval instructions, so the rest would flatter it).
    const { loadRequestCorpus } = await import("../train/request.js");
    const heldOut = new Set((await loadRequestCorpus(dataDir)).requests.filter((r) => r.source === "alpaca-eval" && r.split === "test").map((r) => r.question));
    sets["alpaca-eval-held-out"] = (await readAlpacaEval(at("benign", "alpaca-eval"))).filter((a) => ALPACA_TEST_MODELS.has(a.model ?? "") && heldOut.has(a.question));
  }
  return sets;
}

/** Run the protector over each set and count what it changed. `onProgress` gets answers done so far and the total. */
export async function evaluateBenign(
  protector: Protector,
  sets: Readonly<Record<string, readonly LabelledAnswer[]>>,
  onProgress?: (done: number, total: number) => void,
): Promise<Record<string, BenignSetStats>> {
  const total = Object.values(sets).reduce((n, s) => n + s.length, 0);
  let done = 0;
  const out: Record<string, BenignSetStats> = {};
  for (const [name, items] of Object.entries(sets)) {
    out[name] = benignStats(await protectAll(protector, items, (n) => onProgress?.((done += n), total)));
  }
  return out;
}
