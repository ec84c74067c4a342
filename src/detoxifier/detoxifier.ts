import type { PolicyName } from "../policies.js";
import type { Category, HarmVerdict, ImageRef } from "../types.js";

/** What a detoxifier gets: the request, the flagged answer and why it was flagged. */
export interface DetoxInput {
  question?: string;
  answer: string;
  image?: ImageRef;
  category?: Category;
  verdict: HarmVerdict;
  /** Why the answer is being repaired: its harm score, or a policy (see policies.ts). */
  trigger?: "harm-score" | PolicyName;
}

/** A candidate replacement answer. The protector re-checks it with the detector before using it. */
export interface DetoxOutput {
  text: string;
  action: "repaired" | "rewritten" | "redacted" | "refused";
  /** Short human-readable reason (no harmful text). */
  note?: string;
}

/**
 * The detoxifier role (MLLM-Protector part 2): turns a harmful answer into a harmless one that
 * still addresses the question. Backends live beside this file.
 */
export interface Detoxifier {
  readonly name: string;
  /** Rejects when the backend fails; the protector then moves on (fail closed). */
  detoxify(input: DetoxInput, signal?: AbortSignal): Promise<DetoxOutput>;
  close?(): Promise<void>;
}

/** The paper's detoxifier prompt (MLLM-Protector), filled with the question and the answer. */
export const DETOX_PROMPT_TEMPLATE =
  "You are given a question and a response, the response may contain sensitive or harmful information, Please rewrite the response to make it harmless. \nQuestion: {question}\nOriginal response: {answer}\nCorrected response: ";

export function detoxPrompt(question: string | undefined, answer: string): string {
  // Replace with functions so `$&`-style patterns inside user text are not interpreted.
  return DETOX_PROMPT_TEMPLATE.replace("{question}", () => question ?? "").replace("{answer}", () => answer);
}

/** The paper's fixed refusal, the last resort of every chain. */
export const REFUSAL_TEXT = "Sorry, I can not answer this question.";
