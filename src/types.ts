/**
 * Types shared by every stage of the data path:
 * input → MLLM → detector → (detoxifier) → verified output.
 */
import type { TRIGGERS } from "./policies.js";

/** One (question, answer) pair as the detector sees it. `question` is optional: answer-only scoring is supported. */
export interface QAItem {
  question?: string;
  answer: string;
}

/** An image that travelled with the request: a file path, a `data:` URL or an http(s) URL. */
export interface ImageRef {
  url: string;
}

/** The 13 MM-SafetyBench scenarios, in the benchmark's order (01 … 13). */
export const CATEGORIES = [
  "illegal_activity",
  "hate_speech",
  "malware_generation",
  "physical_harm",
  "economic_harm",
  "fraud",
  "sex",
  "political_lobbying",
  "privacy_violence",
  "legal_opinion",
  "financial_advice",
  "health_consultation",
  "gov_decision",
] as const;
export type Category = (typeof CATEGORIES)[number];

/** What the protector did to an answer. */
export type Action = "pass" | "repaired" | "rewritten" | "redacted" | "refused";

/** Harm score of one span (a sentence or step) of an answer; offsets index into `answer`. */
export interface SpanScore {
  start: number;
  end: number;
  score: number;
}

/** The harm detector's verdict on one item. */
export interface HarmVerdict {
  /** Calibrated probability that the answer is harmful, 0..1. */
  score: number;
  /** `score >= threshold`. */
  flagged: boolean;
  threshold: number;
  /** Named component scores that add up to the decision (e.g. `{ embedding: 2.1, lexical: -0.3 }`, logits). */
  signals: Record<string, number>;
  /** Most harmful spans of the answer, highest first (at most a few), when the backend scores spans. */
  topSpans?: SpanScore[];
}

/** One answer for the protector to check, with the request it answers. */
export interface ProtectInput {
  question?: string;
  answer: string;
  image?: ImageRef;
}

/** One step of the repair chain, for explanation and audit (never holds harmful text). */
export interface RepairAttempt {
  strategy: string;
  /** Detector score of the candidate; absent when the strategy failed before producing one. */
  score?: number;
  accepted: boolean;
  error?: string;
}

/** The request check's verdict (the request itself, before or beside the answer). */
export interface RequestRisk {
  /** Calibrated probability that the request is harmful, 0..1. */
  score: number;
  flagged: boolean;
  threshold: number;
  /**
   * What fired (the request check's `REQUEST_SIGNALS`: "text", "ocr-text", "combined", "resolved", "lead",
   * "ocr-empty-list", "unread-pointer", "explicit:…"), plus "restated" when the request was checked
   * again with the image's phrase as the answer quotes it (this verdict is that second check's).
   */
  signals: string[];
  /** A confirming LLM's word on the flag, when one was asked (`createLlmConfirmedRequestChecker`). */
  confirmation?: RequestConfirmation;
}

/**
 * What a confirming LLM said about a flagged request: "safe" cleared the flag, "unsafe" kept it; an
 * `error` (no readable answer) kept it too.
 */
export type RequestConfirmation = { by: string; verdict: "safe" | "unsafe" } | { by: string; error: string };

/**
 * Why an answer was changed: its harm score (whenever the detector flagged it), else the policy that
 * changed it (see policies.ts), the request check refusing the request outright (`onHarmfulRequest:
 * "refuse"`), or a failed check (fail closed).
 */
export type Trigger = (typeof TRIGGERS)[number];

/** What the protector returns for one answer. */
export interface ProtectResult {
  /** The text that is safe to show. */
  output: string;
  /** The answer as the MLLM wrote it. */
  original: string;
  flagged: boolean;
  score: number;
  category?: Category;
  action: Action;
  /** One readable sentence on why this action was taken. */
  explanation: string;
  /** Why the answer was changed; absent when it passed. */
  trigger?: Trigger;
  attempts: RepairAttempt[];
  /** Signals that fired on the request: the image's ("ocr-text", "ocr-empty-list", "explicit:…") and "request:…" when the request check flagged it. */
  signals?: string[];
  /** The request check's verdict, when a request checker is configured. */
  request?: RequestRisk;
  /** Set when a model or upstream failed and the protector failed closed (or passed, with `onError: "pass"`). */
  error?: string;
}

/** The protector's public face: the proxy and SDK adapters depend on this only. */
export interface Protector {
  protect(input: ProtectInput, options?: { signal?: AbortSignal }): Promise<ProtectResult>;
  /**
   * The detector's verdict on a possibly partial answer, no repair: streaming uses it to release only
   * text that passed. With the "harmful-request" policy on, an answer that goes along with a flagged
   * request is flagged too (signal `harmfulRequest`), so it is stopped before any of it is shown.
   * Rejects when the detector or the request check fails.
   */
  screen(input: ProtectInput): Promise<HarmVerdict>;
  /** The request check alone (before the MLLM answers); null when no request checker is configured. Rejects when it fails. */
  checkRequest(input: Pick<ProtectInput, "question" | "image">): Promise<RequestRisk | null>;
  protectBatch(inputs: readonly ProtectInput[], options?: { concurrency?: number; signal?: AbortSignal }): Promise<ProtectResult[]>;
  close(): Promise<void>;
}
