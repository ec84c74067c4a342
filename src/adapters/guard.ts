/**
 * The one decision every adapter makes about a finished answer: run it through the protector, screen
 * the model's other text (tool-call arguments, reasoning, refusals), fail closed on errors, and
 * describe the outcome to the client without repeating harmful text.
 */
import { REFUSAL_TEXT } from "../detoxifier/detoxifier.js";
import type { Action, Category, HarmVerdict, ImageRef, Protector, ProtectResult, Trigger } from "../types.js";

/** What the client learns about the check of one answer (never any of the answer's text). */
export interface ProtectorInfo {
  action: Action;
  flagged: boolean;
  /** Harm score of the model's answer; null when it was not scored (empty answer, or the check failed). */
  score: number | null;
  category: Category | null;
  /** Why the answer was changed (the harm score, a policy, a refused request, a failed check); absent when it passed. */
  trigger?: Trigger;
  /** Streaming: the original stopped being relayed mid-answer because a window was flagged. */
  stopped?: true;
  /** Tool calls / reasoning were withheld because they were flagged (or could not be checked). */
  withheld?: true;
  /** The check failed: with onError "refuse" the answer was refused; with "pass" it went out unchecked. */
  error?: "check_failed";
}

export interface GuardOptions {
  protector: Protector;
  /** When the protector itself throws: "refuse" (fail closed, default) or "pass" the unchecked answer. */
  onError?: "refuse" | "pass";
  /** Text sent instead of an answer that must not be shown (default: the paper's refusal). */
  refusalText?: string;
}

/** The request an answer responds to. */
export interface AnswerContext {
  question?: string;
  image?: ImageRef;
  signal?: AbortSignal;
}

export interface GuardedAnswer {
  /** The text the client may see. */
  output: string;
  info: ProtectorInfo;
  /** Drop the model's tool calls / reasoning: they were flagged or could not be checked. */
  withhold: boolean;
  /** The protector's full result, for logs (holds the original answer: log it only when allowed). */
  result?: ProtectResult;
}

export function refusalOf(options: GuardOptions): string {
  return options.refusalText ?? REFUSAL_TEXT;
}

export function infoOf(r: ProtectResult): ProtectorInfo {
  const info: ProtectorInfo = { action: r.action, flagged: r.flagged, score: Number.isFinite(r.score) ? r.score : null, category: r.category ?? null };
  if (r.trigger) info.trigger = r.trigger;
  if (r.error) info.error = "check_failed";
  return info;
}

/** What flagged a screened (partial) answer: the harmful-request policy marks its verdicts. */
export function screenTrigger(verdict: HarmVerdict): Trigger {
  return verdict.signals.harmfulRequest !== undefined ? "harmful-request" : "harm-score";
}

/**
 * Decide a complete answer. `extraText` is the model's other text (tool-call names and arguments,
 * reasoning): it is screened as an answer of its own and withheld when flagged, in which case the
 * whole reply becomes the refusal (a tool call the detector flags must not run).
 */
export async function guardAnswer(options: GuardOptions, ctx: AnswerContext, answer: string, extraText = ""): Promise<GuardedAnswer> {
  const onError = options.onError ?? "refuse";
  let output = answer;
  let info: ProtectorInfo = { action: "pass", flagged: false, score: null, category: null };
  let result: ProtectResult | undefined;
  if (answer.length > 0) {
    try {
      result = await options.protector.protect({ question: ctx.question, answer, image: ctx.image }, { signal: ctx.signal });
      output = result.output;
      info = infoOf(result);
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      if (onError === "pass") info = { action: "pass", flagged: false, score: null, category: null, error: "check_failed" };
      else return { output: refusalOf(options), info: { action: "refused", flagged: false, score: null, category: null, trigger: "check-failed", error: "check_failed" }, withhold: true };
    }
  }
  if (extraText.trim().length > 0) {
    // Tool calls that belong to a flagged answer go with it, whatever their own score.
    if (info.flagged) return { output, info: { ...info, withheld: true }, withhold: true, result };
    let verdict: HarmVerdict | undefined;
    let failed = false;
    try {
      verdict = await options.protector.screen({ question: ctx.question, answer: extraText });
    } catch (err) {
      if (ctx.signal?.aborted) throw err;
      failed = true;
    }
    if (verdict?.flagged || (failed && onError !== "pass")) {
      const why: Partial<ProtectorInfo> = verdict?.flagged ? { flagged: true, trigger: screenTrigger(verdict) } : { trigger: "check-failed", error: "check_failed" };
      return { output: refusalOf(options), info: { ...info, ...why, action: "refused", withheld: true }, withhold: true, result };
    }
    if (failed) info = { ...info, error: "check_failed" };
  }
  return { output, info, withhold: false, result };
}

/**
 * What to send after `released` (already with the client, never retracted) so that the client ends up
 * with the protector's `output` for the answer `full`, as closely as an append-only stream allows:
 * - the output extends what was released (a pass, or a repair that kept the start): send the rest;
 * - the output contains what was released after a lead-in (a disclaimer put first, a redaction's
 *   safety note before the kept sentences): send what follows it, then the lead-in, since the top of
 *   the answer is already on screen;
 * - anything else (refusal, decline, rewrite): a blank line, then the replacement in full.
 * `full` is unused by the rules but documents the contract: `released` is a prefix of it.
 */
export function continuation(released: string, full: string, output: string): string {
  if (!full.startsWith(released)) throw new Error("continuation: released text must be a prefix of the answer");
  if (output.startsWith(released)) return output.slice(released.length);
  const shown = released.trimEnd();
  const at = shown.length > 0 ? output.indexOf(shown) : -1;
  if (at >= 0) {
    const leadIn = output.slice(0, at).trim();
    const rest = output.slice(at + shown.length);
    const tail = rest.startsWith(released.slice(shown.length)) ? rest.slice(released.length - shown.length) : rest;
    return tail + (leadIn ? separator(released + tail) + leadIn : "");
  }
  return separator(released) + output;
}

function separator(shown: string): string {
  if (shown.length === 0 || shown.endsWith("\n\n")) return "";
  return shown.endsWith("\n") ? "\n" : "\n\n";
}
