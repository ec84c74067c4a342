import pLimit from "p-limit";
import type { Categorizer, CategoryVerdict } from "./detector/categorizer.js";
import type { HarmDetector } from "./detector/harm-detector.js";
import { REFUSAL_TEXT, type Detoxifier, type DetoxOutput } from "./detoxifier/detoxifier.js";
import { CandidateRejectedError, NotApplicableError } from "./detoxifier/errors.js";
import { createRefusal } from "./detoxifier/refusal.js";
import { createHash } from "node:crypto";
import { promiseMemo } from "./internal/promise-memo.js";
import { CATEGORY_POLICIES, benignContent, goesAlong, policyFor, policyViolated, type PolicyName } from "./policies.js";
import type { ImageContext, ImageContextProvider } from "./request/image-context.js";
import type { RequestChecker, RequestInput, RequestVerdict } from "./request/request-checker.js";
import { pointsAtImage, restatedImageText } from "./request/restated.js";
import type { HarmVerdict, ProtectInput, ProtectResult, Protector, RepairAttempt, RequestRisk, Trigger } from "./types.js";

export interface ProtectorOptions {
  detector: HarmDetector;
  /** Repair strategies tried in order on a flagged answer; the refusal is always appended as the last resort. */
  detoxifiers?: Detoxifier[];
  /** Decides the MM-SafetyBench category (for policies and category-aware repair). */
  categorizer?: Categorizer;
  /**
   * Policies to apply (policies.ts). Default: the category policies when a categorizer is given, and
   * "harmful-request" when a request checker is; [] turns them off.
   */
  policies?: readonly PolicyName[];
  /** A category decides a policy only at or above this probability (default 0.5). */
  categoryConfidence?: number;
  /**
   * The political-decline policy replaces the whole answer, so it acts only at or above this category
   * probability (default 0.9); a disclaimer only adds text, so the advice policy uses `categoryConfidence`.
   */
  declineConfidence?: number;
  /**
   * When a model fails: "refuse" (fail closed, default) refuses the answer with the error in the
   * result; "pass" lets an answer through unchecked when the detector fails, and skips a failed
   * repair strategy for the next one.
   */
  onError?: "refuse" | "pass";
  /** Default concurrency of `protectBatch`. */
  concurrency?: number;
  /** Answers scored per detector call in `protectBatch`. */
  detectorBatchSize?: number;
  /** Replace the paper's refusal text. */
  refusalText?: string;
  /**
   * When the harm category is known, refuse with a short category-specific explanation and where to
   * turn (`CATEGORY_REFUSALS`) instead of the paper's bare text (default true).
   */
  categoryRefusals?: boolean;
  /**
   * Reads the image of a request (OCR, explicit-content signals) so the detector judges the answer
   * against what the picture asks: typographic attacks put the harmful request in the image.
   */
  imageContext?: ImageContextProvider;
  /** Scores the request itself (text + image text), as Llama Guard's prompt mode does. */
  requestChecker?: RequestChecker;
  /**
   * What a flagged request does: "check-answer" (default) reports its risk and judges the answer as
   * usual (the paper: only harmful answers are changed); "refuse" refuses whatever the answer.
   */
  onHarmfulRequest?: "check-answer" | "refuse";
  /**
   * Off by default. When set, the harmful-request policy leaves an answer alone if the detector's
   * content score (its `content` signal: the answer's words alone) is below this floor; "detector" takes
   * the detector's own `contentFloor` (the shipped one: the 90th percentile of benign validation
   * answers). The request check flags some everyday questions, and a harmless answer to them is then
   * refused; the floor spares most of those, at the price of some harmful answers that read mildly
   * (README, "Policies", has the measured trade-off).
   */
  contentFloor?: number | "detector";
}

/** The request as the detector sees it: the question with the image's text, and what fired. */
interface PreparedRequest {
  question?: string;
  signals: string[];
  request?: RequestRisk;
}

type Context = { ctx?: ImageContext } | { error: unknown };
type Judged = { verdict: HarmVerdict; category: CategoryVerdict | null };

/** The question as the detector reads it: the image context's (it adds the picture's text) when there is one. */
function detectorQuestion(input: ProtectInput, context: Context): string | undefined {
  return "ctx" in context && context.ctx ? context.ctx.question : input.question;
}

/**
 * The MLLM-Protector pipeline: answer → detector → (category policy) → repair chain → verify.
 * Unflagged answers that no policy touches pass byte-for-byte. Every repaired candidate is scored
 * again; a candidate that still fails goes to the next strategy, and the refusal ends the chain.
 */
export function createProtector(options: ProtectorOptions): Protector {
  const { detector, categorizer } = options;
  const chain = [...(options.detoxifiers ?? []), createRefusal(options.refusalText, { byCategory: options.categoryRefusals ?? true })];
  const refusal = chain[chain.length - 1] as Detoxifier;
  const policies = new Set<PolicyName>(options.policies ?? [...(categorizer ? CATEGORY_POLICIES : []), ...(options.requestChecker ? (["harmful-request"] as const) : [])]);
  if (CATEGORY_POLICIES.some((p) => policies.has(p)) && !categorizer) throw new Error("category policies need a categorizer");
  if (policies.has("harmful-request") && !options.requestChecker) throw new Error('the "harmful-request" policy needs a request checker');
  const confidence = options.categoryConfidence ?? 0.5;
  const declineConfidence = options.declineConfidence ?? 0.9;
  const onError = options.onError ?? "refuse";
  const batchSize = options.detectorBatchSize ?? 32;
  const onHarmfulRequest = options.onHarmfulRequest ?? "check-answer";
  const contentFloor = options.contentFloor === "detector" ? detector.contentFloor : options.contentFloor;
  if (options.contentFloor === "detector" && contentFloor === undefined) throw new Error(`contentFloor "detector": the ${detector.name} detector has no content floor`);
  /** An answer that goes along with a flagged request, in words the detector does not find plainly benign. */
  const servesRequest = (answer: string, verdict: HarmVerdict): boolean => goesAlong(answer, verdict) && !benignContent(verdict, contentFloor);

  // One image analysis per image, shared by the request check, the detector and streaming's repeated screens.
  const imageMemo = promiseMemo<ImageContext | undefined>(64);
  function imageOf(input: ProtectInput): Promise<ImageContext | undefined> {
    const { image } = input;
    const context = options.imageContext;
    if (!image || !context) return Promise.resolve(undefined);
    return imageMemo(requestKey(input), () => context.analyze(input));
  }

  /** The image context of each input (its analysis, and the question as the detector reads it), or its error. */
  function contextsOf(inputs: readonly ProtectInput[]): Promise<Context[]> {
    return Promise.all(inputs.map((i) => imageOf(i).then((ctx) => ({ ctx }), (error: unknown) => ({ error }))));
  }

  /** The request check for each input; an item whose image or check failed gets its error. */
  async function checkRequests(inputs: readonly ProtectInput[], contexts: readonly Context[]): Promise<Array<PreparedRequest | { error: unknown }>> {
    let risks: RequestRisk[] | null = null;
    let riskError: unknown = null;
    if (options.requestChecker) {
      try {
        const verdicts = await options.requestChecker.checkBatch(inputs.map((input, i) => {
          const c = contexts[i];
          return { question: input.question, imageAnalysis: c && "ctx" in c ? c.ctx?.analysis : undefined };
        }));
        risks = verdicts.map(riskOf);
        // A request whose subject is a phrase in the picture is checked again with the phrase as the
        // answer quotes it: the better-informed verdict replaces the first.
        const again = inputs.map((input, i) => ({ i, req: rereads(risks?.[i]) ? restatedRequest(input, contexts[i] && "ctx" in contexts[i] ? contexts[i].ctx : undefined) : undefined }));
        const todo = again.filter((x): x is { i: number; req: RequestInput } => x.req !== undefined);
        if (todo.length) {
          const restated = await options.requestChecker.checkBatch(todo.map((x) => x.req));
          todo.forEach(({ i }, k) => {
            if (risks) risks[i] = restatedRisk(restated[k] as RequestVerdict);
          });
        }
      } catch (err) {
        riskError = err;
      }
    }
    return inputs.map((input, i) => {
      const c = contexts[i] as Context;
      if ("error" in c) return { error: c.error };
      if (riskError) return { error: riskError };
      const request = risks?.[i];
      const signals = [...(c.ctx?.fired ?? []), ...(request?.flagged ? request.signals.map((s) => `request:${s}`) : [])];
      return { question: detectorQuestion(input, c), signals, ...(request ? { request } : {}) };
    });
  }

  /** Detector verdict and category for each input; an item whose image context or model call failed gets its error. */
  async function judge(inputs: readonly ProtectInput[], contexts: readonly Context[]): Promise<Array<Judged | { error: unknown }>> {
    const out: Array<Judged | { error: unknown }> = contexts.map((c) => ("error" in c ? { error: c.error } : { error: new Error("detector returned no verdict") }));
    const ready = inputs.map((_, i) => i).filter((i) => !("error" in (contexts[i] as Context)));
    if (!ready.length) return out;
    const items = ready.map((i) => ({ question: detectorQuestion(inputs[i] as ProtectInput, contexts[i] as Context), answer: (inputs[i] as ProtectInput).answer }));
    try {
      const [verdicts, categories] = await Promise.all([detector.score(items), categorizer ? categorizer.categorize(items) : null]);
      if (verdicts.length !== items.length) throw new Error(`detector returned ${verdicts.length} verdicts for ${items.length} answers`);
      ready.forEach((i, k) => (out[i] = { verdict: verdicts[k] as HarmVerdict, category: categories?.[k] ?? null }));
    } catch (error) {
      for (const i of ready) out[i] = { error };
    }
    return out;
  }

  /** Answers to flagged requests that took the detector's fast path are read in full: the policies need the signals it leaves out. */
  async function readInFull(inputs: readonly ProtectInput[], contexts: readonly Context[], prepared: ReadonlyArray<PreparedRequest | { error: unknown }>, judged: Array<Judged | { error: unknown }>): Promise<void> {
    const again = inputs.map((_, i) => i).filter((i) => {
      const p = prepared[i] as PreparedRequest | { error: unknown };
      const j = judged[i] as Judged | { error: unknown };
      return !("error" in p) && p.request?.flagged && !("error" in j) && j.verdict.signals.fastPath;
    });
    if (!again.length) return;
    try {
      const full = await detector.score(again.map((i) => ({ question: detectorQuestion(inputs[i] as ProtectInput, contexts[i] as Context), answer: (inputs[i] as ProtectInput).answer })), { thorough: true });
      again.forEach((i, k) => {
        const verdict = full[k];
        judged[i] = verdict ? { ...(judged[i] as Judged), verdict } : { error: new Error("detector returned no verdict") };
      });
    } catch (error) {
      for (const i of again) judged[i] = { error };
    }
  }

  async function decide(input: ProtectInput, prepared: PreparedRequest, verdict: HarmVerdict, cat: CategoryVerdict | null, signal?: AbortSignal): Promise<ProtectResult> {
    const category = cat?.category && cat.probability >= confidence ? cat.category : undefined;
    const question = prepared.question;
    const base = {
      original: input.answer,
      flagged: verdict.flagged,
      score: verdict.score,
      category,
      ...(prepared.signals.length ? { signals: prepared.signals } : {}),
      ...(prepared.request ? { request: prepared.request } : {}),
    };
    if (prepared.request?.flagged && onHarmfulRequest === "refuse") {
      const output = options.refusalText ?? REFUSAL_TEXT;
      return { ...base, flagged: true, output, action: "refused", trigger: "request-refused", explanation: `the request was flagged (score ${fmt(prepared.request.score)}; ${prepared.request.signals.join(", ")}) and harmful requests are refused`, attempts: [{ strategy: "refusal", accepted: true }] };
    }
    const categoryPolicy = category ? policyFor(category) : null;
    const sureEnough = categoryPolicy !== "political-decline" || (cat?.probability ?? 0) >= declineConfidence;
    const categoryPolicyApplies = categoryPolicy !== null && sureEnough && policies.has(categoryPolicy) && policyViolated(categoryPolicy, input.answer);
    const request = prepared.request;
    // Also on flagged answers: then redaction is skipped, since what it keeps would still serve the request.
    const harmfulRequestApplies = !categoryPolicy && policies.has("harmful-request") && request?.flagged === true && servesRequest(input.answer, verdict) && (await corroborated(request, question));
    if (!verdict.flagged && !categoryPolicyApplies && !harmfulRequestApplies) {
      return { ...base, output: input.answer, action: "pass", explanation: `harm score ${fmt(verdict.score)} is below the threshold ${fmt(verdict.threshold)}`, attempts: [] };
    }
    const attempts: RepairAttempt[] = [];
    const trigger: "harm-score" | PolicyName = harmfulRequestApplies ? "harmful-request" : verdict.flagged ? "harm-score" : (categoryPolicy as PolicyName);
    // What the result reports: the harm score whenever the detector flagged the answer, so that a policy's
    // name marks the answers only the policy changed (where its false alarms would show).
    const reported: Trigger = verdict.flagged ? "harm-score" : trigger;
    const scoreWhy = `harm score ${fmt(verdict.score)} is at or above the threshold ${fmt(verdict.threshold)}`;
    const requestWhy = `the request was flagged as harmful (score ${fmt(request?.score ?? Number.NaN)}) and the answer goes along with it (harmful-request policy)`;
    const why =
      trigger === "harmful-request"
        ? verdict.flagged
          ? `${scoreWhy}, and ${requestWhy}`
          : requestWhy
        : trigger === "harm-score"
          ? scoreWhy
          : `the ${trigger} policy applies to ${category?.replace("_", " ")} answers`;
    // Fail closed: after a model failure the chain jumps straight to the refusal (unless onError is "pass").
    const failClosed = (): number => (onError === "refuse" ? chain.length - 2 : -1);
    for (let i = 0; i < chain.length; i++) {
      const strategy = chain[i] as Detoxifier;
      if (signal?.aborted) throw signal.reason ?? new Error("aborted");
      let out: DetoxOutput;
      try {
        out = await strategy.detoxify({ question, answer: input.answer, image: input.image, category, verdict, trigger }, signal);
      } catch (err) {
        if (err instanceof NotApplicableError) {
          attempts.push({ strategy: strategy.name, accepted: false, error: `not applicable: ${err.message}` });
          continue;
        }
        if (err instanceof CandidateRejectedError) {
          attempts.push({ strategy: strategy.name, accepted: false, error: `rejected: ${err.message}` });
          continue;
        }
        attempts.push({ strategy: strategy.name, accepted: false, error: errorText(err) });
        i = Math.max(i, failClosed());
        continue;
      }
      if (strategy === refusal) {
        attempts.push({ strategy: strategy.name, accepted: true });
        return { ...base, output: out.text, action: "refused", trigger: reported, explanation: `${why}; ${explainFailures(attempts)}refused`, attempts, ...firstError(attempts) };
      }
      // Verify: a repaired answer must pass the detector itself.
      let check: HarmVerdict | undefined;
      try {
        [check] = await detector.score([{ question, answer: out.text }]);
      } catch (err) {
        attempts.push({ strategy: strategy.name, accepted: false, error: `verification failed: ${errorText(err)}` });
        i = Math.max(i, failClosed());
        continue;
      }
      const accepted = check !== undefined && !check.flagged;
      attempts.push({ strategy: strategy.name, score: check?.score, accepted });
      if (accepted) {
        return { ...base, output: out.text, action: out.action, trigger: reported, explanation: `${why}; ${strategy.name}: ${out.note ?? out.action}`, attempts };
      }
    }
    throw new Error("unreachable: the refusal ends every chain");
  }

  function failed(input: ProtectInput, err: unknown): ProtectResult {
    const error = errorText(err);
    if (onError === "pass") {
      return { output: input.answer, original: input.answer, flagged: false, score: Number.NaN, action: "pass", explanation: `not checked (the check failed; onError "pass"): ${error}`, attempts: [], error };
    }
    return { output: options.refusalText ?? REFUSAL_TEXT, original: input.answer, flagged: true, score: Number.NaN, action: "refused", trigger: "check-failed", explanation: `refused because the check failed (fail closed): ${error}`, attempts: [], error };
  }

  async function protect(input: ProtectInput, opts: { signal?: AbortSignal } = {}): Promise<ProtectResult> {
    return (await protectBatch([input], opts))[0] as ProtectResult;
  }

  async function protectBatch(inputs: readonly ProtectInput[], opts: { concurrency?: number; signal?: AbortSignal } = {}): Promise<ProtectResult[]> {
    const limit = pLimit(opts.concurrency ?? options.concurrency ?? 4);
    const results: Array<Promise<ProtectResult>> = [];
    for (let start = 0; start < inputs.length; start += batchSize) {
      const part = inputs.slice(start, start + batchSize);
      const contexts = await contextsOf(part);
      // The request check and the detector run side by side: neither needs the other's result.
      const [prepared, judged] = await Promise.all([checkRequests(part, contexts), judge(part, contexts)]);
      await readInFull(part, contexts, prepared, judged);
      part.forEach((input, i) => {
        const p = prepared[i] as PreparedRequest | { error: unknown };
        const j = judged[i] as Judged | { error: unknown };
        if ("error" in p) results.push(Promise.resolve(failed(input, p.error)));
        else if ("error" in j) results.push(Promise.resolve(failed(input, j.error)));
        else results.push(limit(() => decide(input, p, j.verdict, j.category, opts.signal)));
      });
    }
    return Promise.all(results);
  }

  // Streaming screens one request many times: its check runs once.
  const requestMemo = promiseMemo<RequestRisk | null>(64);
  const requestRiskOf = (input: ProtectInput): Promise<RequestRisk | null> => requestMemo(requestKey(input), () => checkRequest(input));

  async function screen(input: ProtectInput): Promise<HarmVerdict> {
    const ctx = await imageOf(input);
    const item = { question: ctx ? ctx.question : input.question, answer: input.answer };
    let [verdict] = await detector.score([item]);
    if (!verdict) throw new Error("detector returned no verdict");
    if (verdict.flagged || !policies.has("harmful-request")) return verdict;
    let request = await requestRiskOf(input);
    const restated = rereads(request) ? restatedRequest(input, ctx) : undefined;
    if (restated && options.requestChecker) {
      const checker = options.requestChecker;
      request = await requestMemo(`${requestKey(input)}\0${restated.imageText}`, async () => restatedRisk(await checker.check(restated)));
    }
    if (!request?.flagged) return verdict;
    // The policy reads signals the detector's fast path leaves out.
    if (verdict.signals.fastPath) [verdict] = await detector.score([item], { thorough: true });
    if (!verdict) throw new Error("detector returned no verdict");
    if (verdict.flagged || !servesRequest(input.answer, verdict)) return verdict;
    const [cat] = categorizer ? await categorizer.categorize([item]) : [];
    const category = cat?.category && cat.probability >= confidence ? cat.category : undefined;
    if ((category && policyFor(category)) || !(await corroborated(request, ctx ? ctx.question : input.question))) return verdict;
    return { ...verdict, flagged: true, signals: { ...verdict.signals, harmfulRequest: request.score } };
  }

  async function checkRequest(input: Pick<ProtectInput, "question" | "image">): Promise<RequestRisk | null> {
    if (!options.requestChecker) return null;
    const ctx = await imageOf({ ...input, answer: "" });
    return riskOf(await options.requestChecker.check({ question: input.question, imageAnalysis: ctx?.analysis }));
  }

  /**
   * The harmful-request policy overrides an answer the detector passed on the request check's word
   * alone, so with a categorizer it also needs the category head, reading the request alone, to name a
   * scenario: its most likely class must not be "no scenario" (a categorizer that cannot say "none":
   * a category at `categoryConfidence`). One model's false alarm on an everyday request ("Help me get a
   * job in the government in which I'll have major bargaining power", "How do I beat my brother at
   * chess?", where "no scenario" leads at P 0.42) must not refuse a helpful answer. The request alone,
   * because a partly benign answer dilutes the exchange and a streamed answer is partial.
   * A request whose subject is a phrase in the picture (`unread-pointer`, or read from the answer:
   * `restated`) needs no second opinion: the category head cannot see that subject.
   */
  async function corroborated(request: RequestRisk, question: string | undefined): Promise<boolean> {
    if (!categorizer || request.signals.includes("unread-pointer") || request.signals.includes("restated")) return true;
    const [cat] = await categorizer.categorize([{ question, answer: "" }]);
    if (cat?.ordinary !== undefined) return cat.category !== null;
    return cat?.category != null && cat.probability >= confidence;
  }

  /**
   * The request to check again when the prompt points at a picture whose text OCR did not read (no
   * image to hand, or a picture without print) and the answer quotes what the picture says (restated.ts).
   * Only requests that passed, or were flagged for an unread pointer alone, are worth reading again.
   */
  function restatedRequest(input: ProtectInput, ctx: ImageContext | undefined): RequestInput | undefined {
    if (!policies.has("harmful-request") || ctx?.imageText !== undefined) return undefined;
    if (!input.image && !pointsAtImage(input.question)) return undefined;
    const imageText = restatedImageText(input.answer);
    return imageText === undefined ? undefined : { question: input.question, imageText, ...(ctx ? { imageAnalysis: ctx.analysis } : {}) };
  }

  return {
    protect,
    protectBatch,
    screen,
    checkRequest,
    async close() {
      await Promise.all([detector.close?.(), ...chain.map((d) => d.close?.()), options.imageContext?.close(), options.requestChecker?.close()]);
    },
  };
}

function riskOf(v: RequestVerdict): RequestRisk {
  return { score: v.score, flagged: v.flagged, threshold: v.threshold, signals: v.signals, ...(v.confirmation ? { confirmation: v.confirmation } : {}) };
}

/** Whether a request's verdict could change once the image's phrase is known. */
function rereads(risk: RequestRisk | null | undefined): boolean {
  return !risk?.flagged || (risk.signals.length === 1 && risk.signals[0] === "unread-pointer");
}

function restatedRisk(v: RequestVerdict): RequestRisk {
  return { ...riskOf(v), signals: [...v.signals, "restated"] };
}

/** One request (question + image URL) as a memo key. */
function requestKey(input: Pick<ProtectInput, "question" | "image">): string {
  return createHash("sha256").update(input.question ?? "").update("\0").update(input.image?.url ?? "").digest("hex");
}

function fmt(x: number): string {
  return x.toFixed(3);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function explainFailures(attempts: readonly RepairAttempt[]): string {
  const tried = attempts.filter((a) => a.strategy !== "refusal").map((a) => (a.error ? `${a.strategy} (${a.error})` : `${a.strategy} (still flagged)`));
  return tried.length ? `tried ${tried.join(", ")}; ` : "";
}

function firstError(attempts: readonly RepairAttempt[]): { error?: string } {
  const e = attempts.find((a) => a.error && !a.error.startsWith("not applicable") && !a.error.startsWith("rejected"));
  return e?.error ? { error: e.error } : {};
}
