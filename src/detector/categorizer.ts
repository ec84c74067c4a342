import type { Category, QAItem } from "../types.js";

/** The category of a request: one of the 13 MM-SafetyBench scenarios, or null for an ordinary request. */
export interface CategoryVerdict {
  category: Category | null;
  /** Probability of `category` (of "none" when category is null). */
  probability: number;
  /** Probability that the exchange is an ordinary one (no scenario), when the categorizer knows it. */
  ordinary?: number;
}

/** Decides which MM-SafetyBench scenario a (question, answer) belongs to; drives policies and repair. */
export interface Categorizer {
  readonly name: string;
  categorize(items: readonly QAItem[]): Promise<CategoryVerdict[]>;
}
