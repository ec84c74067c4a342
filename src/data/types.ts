import type { Category } from "../types.js";

/** One answer with a harm label, the common shape every dataset importer returns. */
export interface LabelledAnswer {
  /** Dataset and split, e.g. "gptfuzz/train", "alpaca-eval/claude-2". */
  source: string;
  question?: string;
  answer: string;
  /** 1 = harmful, 0 = harmless. */
  label: 0 | 1;
  /** Ties answers to the same question together (pairwise loss, split by question). */
  group?: string;
  /** The model that wrote the answer, when known (for holding models out). */
  model?: string;
  category?: Category;
  /** Whether the answer does what was asked (not a refusal or a deflection), when known; trains the compliance head. */
  complies?: boolean;
  /**
   * Whether the answer declines (refuses or deflects) rather than doing the task, when known; trains
   * the decline head. Unlike `complies`, a judge's "harmless" says nothing here: many harmless answers
   * to harmful requests do the task in a benign way.
   */
  declines?: boolean;
}

/** Two answers to one question where one is known to be safer (hh-rlhf, PKU-SafeRLHF, …). */
export interface PreferencePair {
  source: string;
  question?: string;
  safer: string;
  lessSafe: string;
  /** Known per-answer safety, when the dataset labels it; undefined when it only ranks. */
  saferIsSafe?: boolean;
  lessSafeIsSafe?: boolean;
  group?: string;
  category?: Category;
}

/** A question (request) with a harm label, for the request-side check. */
export interface LabelledQuestion {
  source: string;
  question: string;
  label: 0 | 1;
  category?: Category;
}
