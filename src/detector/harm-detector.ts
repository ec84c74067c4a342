import type { HarmVerdict, QAItem, SpanScore } from "../types.js";

export interface ScoreOptions {
  /**
   * Skip any fast path and compute every signal: the protector asks for this on answers to requests
   * its request check flagged, whose policies read the `declines` and `content` signals.
   */
  thorough?: boolean;
}

/**
 * The harm detector role (MLLM-Protector part 1): one harmfulness score per (question, answer).
 * Backends live beside this file; the pipeline only knows this interface.
 */
export interface HarmDetector {
  readonly name: string;
  /** Score at or above which an answer is flagged. */
  readonly threshold: number;
  /**
   * Optional: verdicts carry `signals.content` (P(harmful) from the answer's words alone, before any
   * request evidence), and content below this floor counts as benign (the protector's `contentFloor`
   * option can use it to spare harmless answers from the harmful-request policy).
   */
  readonly contentFloor?: number;
  /** Scores a batch; results are in input order. Rejects (never guesses) when the model fails. */
  score(items: readonly QAItem[], options?: ScoreOptions): Promise<HarmVerdict[]>;
  /**
   * Scores every sentence/step of one answer in the context of its question (for redaction).
   * Spans cover the answer in order.
   */
  scoreSpans?(item: QAItem): Promise<SpanScore[]>;
  /** Frees workers and native sessions. */
  close?(): Promise<void>;
}
