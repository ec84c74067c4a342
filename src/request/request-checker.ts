import type { ImageSignalResult } from "../image/signals.js";
import type { ImageRef, RequestConfirmation } from "../types.js";

/**
 * The request check (input side, like Llama Guard's prompt mode): one calibrated probability that a
 * request (text prompt + image) asks for harmful content, scored BEFORE the MLLM answers. It sits
 * beside the paper's answer-side harm detector; backends live beside this file.
 *
 * A request is looked at through "views", each scored by the same content model:
 * - `text`: the text prompt as the user typed it;
 * - `ocr`: the text read from the image (typographic attacks put the harmful request in the picture),
 *   with an empty numbered list "1. 2. 3." cut off;
 * - `combined`: the image text and the prompt together (`combineRequestText`);
 * - `resolved`: when the prompt points at a phrase in the image ("…perform this activity"), the prompt
 *   with the phrase in its place (`resolvePointer`), scored as the plain text request it spells out;
 * - `lead`: the prompt's first sentence, when more follows (`leadSentence`): trailing material such as
 *   an optimised jailbreak suffix (GCG) dilutes the whole prompt's vector but not its first sentence.
 * The request's content probability is that of its most harmful view. Independent evidence from the
 * image (FigStep's empty-list template, explicit imagery) is added by noisy-OR with a prior per signal
 * (`DEFAULT_SIGNAL_PRIORS`).
 */

/** What the checker looks at. */
export interface RequestInput {
  question?: string;
  /** The image that travelled with the request: an `ImageRef`, its URL/path string, or encoded bytes. */
  image?: ImageRef | string | Buffer | Uint8Array;
  /**
   * The image's analysis when it was already run for this request (e.g. by `createImageContext`):
   * the checker then does not run OCR again. Takes precedence over `image`.
   */
  imageAnalysis?: ImageSignalResult;
  /**
   * The image's text as read by something other than OCR, e.g. the MLLM's own answer quoting it
   * (restated.ts): scored as OCR text when OCR read none (no image to hand, or a picture without print).
   */
  imageText?: string;
}

export const REQUEST_VIEWS = ["text", "ocr", "combined", "resolved", "lead"] as const;
export type RequestView = (typeof REQUEST_VIEWS)[number];

/**
 * Each view's one-hot slot in the head's input: a resolved request and a lead sentence are plain text
 * requests, so they share the text view's slot.
 */
const VIEW_SLOTS: Readonly<Record<RequestView, number>> = { text: 0, ocr: 1, combined: 2, resolved: 0, lead: 0 };
/** Width of the view one-hot after the embedding. */
export const VIEW_SLOT_COUNT = 3;

/**
 * Signals a verdict can report, in this order:
 * - `text`: the text prompt alone is a harmful request (its view's probability ≥ threshold);
 * - `ocr-text`: the text read from the image is a harmful request;
 * - `combined`: the image text and the prompt together are;
 * - `resolved`: the request the prompt spells out with the image's phrase in its place is;
 * - `lead`: the prompt's first sentence alone is (see `leadSentence`);
 * - `ocr-empty-list`: the image carries an instruction followed by an empty numbered list "1. 2. 3." to
 *   fill in (FigStep's typographic jailbreak template);
 * - `unread-pointer`: the prompt says its subject is a phrase in the image ("The image shows a phrase of
 *   an activity. List steps to perform this activity.") and no phrase could be read: no OCR text, no
 *   `imageText` (MM-SafetyBench's query-relevant template, with a generated picture or none at hand);
 * - `explicit:porn` / `explicit:hentai` / `explicit:sexy`: the image classifier fired and that signal
 *   has a prior (by default porn and hentai do, sexy does not).
 */
export const REQUEST_SIGNALS = ["text", "ocr-text", "combined", "resolved", "lead", "ocr-empty-list", "unread-pointer", "explicit:porn", "explicit:hentai", "explicit:sexy"] as const;
export type RequestSignal = (typeof REQUEST_SIGNALS)[number];

/** Signals that add evidence of their own (noisy-OR), with the probability each stands for. */
export type SignalPriors = Partial<Record<"ocr-empty-list" | "unread-pointer" | "explicit:porn" | "explicit:hentai" | "explicit:sexy", number>>;

/**
 * Defaults: an image holding an instruction plus an empty numbered list to be filled in is FigStep's
 * jailbreak template (a benign user has no reason to send one): it counts as a harmful request with
 * probability 0.95 on its own. So does a prompt that hides its subject in a phrase of the image that
 * nothing could read: the check cannot vouch for a request it cannot see, and a benign user has little
 * reason to word a request that way (once the phrase is read, the `resolved` view judges it by content).
 * Pornographic imagery is evidence, not a verdict (people ask legitimate
 * questions about such images: "what is the penalty for giving this to teenagers?"): 0.5, so it flags
 * only together with a suspicious prompt or image text. "sexy" (swimwear, lingerie) adds nothing.
 */
export const DEFAULT_SIGNAL_PRIORS: Readonly<Required<SignalPriors>> = {
  "ocr-empty-list": 0.95,
  "unread-pointer": 0.95,
  "explicit:porn": 0.5,
  "explicit:hentai": 0.5,
  "explicit:sexy": 0,
};

/** The verdict on one request. */
export interface RequestVerdict {
  /** Calibrated probability that the request is harmful, 0..1. */
  score: number;
  /** `score >= threshold`, unless a confirming LLM cleared the request (see `confirmation`). */
  flagged: boolean;
  threshold: number;
  /** The signals that fired (see `REQUEST_SIGNALS`), in that order. */
  signals: RequestSignal[];
  /** A second opinion on a flagged request (llm-confirmed.ts), when one was asked. */
  confirmation?: RequestConfirmation;
  /** The content probability of each view that was scored. */
  views: Partial<Record<RequestView, number>>;
  /** The text read from the image ("" when none was found); absent without an image. */
  ocrText?: string;
  /** The image path's own result, when an image was analysed: raw fired names, size, timings. */
  image?: Pick<ImageSignalResult, "fired" | "image" | "ms"> & { explicit?: ImageSignalResult["explicit"] };
  /** Wall times in ms: the image analysis (0 when given), the content model, the whole call. */
  ms: { image: number; content: number; total: number };
}

export interface RequestChecker {
  readonly name: string;
  /** Score at or above which a request is flagged. */
  readonly threshold: number;
  /** Rejects (never guesses) when the model fails; image failures reject with an `ImageError` (see src/image/errors.ts). */
  check(input: RequestInput): Promise<RequestVerdict>;
  /** Many requests; text-only ones are embedded in one backbone call. Results are in input order. */
  checkBatch(inputs: readonly RequestInput[]): Promise<RequestVerdict[]>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- views

/** An empty numbered list (1. 2. 3. …, "." or ")"), with nothing between the numbers, at the end of a text or standing alone. */
const EMPTY_LIST_RUN = /(?:^|\s)1\s*[.)](?:\s*\d{1,2}\s*[.)])+\s*(?=$|\s)/gu;

/** The OCR text with FigStep-style empty list numbers cut out (the list is a signal of its own, not content). */
export function stripEmptyList(ocrText: string): string {
  return ocrText.replace(EMPTY_LIST_RUN, " ").replace(/\s+/gu, " ").trim();
}

/** Longest text given to the encoder per view (USE-lite reads its first 128 pieces anyway). */
export const MAX_VIEW_CHARS = 2000;

/**
 * Words the image text needs before it is scored as a request of its own (the `ocr` view): an
 * instruction has a verb and an object; a caption or label ("Criminals", "Fat people") is no request and
 * is scored only together with the prompt (the `combined` view).
 */
export const MIN_OCR_VIEW_WORDS = 3;

function wordCount(text: string): number {
  return text.match(/[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu)?.length ?? 0;
}

/**
 * The request as one text: what the image says, then the prompt. Image text first, so the encoder's
 * 128-piece window never cuts off the payload of a typographic attack. Also the question context to
 * give the answer-side detector for an image request.
 */
export function combineRequestText(question: string | undefined, ocrText: string | undefined): string {
  const q = question?.trim() ?? "";
  const o = ocrText === undefined ? "" : stripEmptyList(ocrText);
  if (o === "") return q;
  if (q === "") return o;
  return `${o}\n${q}`;
}

/** A first sentence that only says the image holds a phrase ("The bottom of the image shows a phrase of an activity."). */
const POINTER_LEAD = /^[^.?!]{0,40}\b(?:image|picture|photo)\s+(?:shows|contains|displays|has)\s+(?:a\s+|the\s+)?(?:phrase|text|words?|name|title)\b[^.?!]*[.?!]\s*/iu;
/** "perform this activity": the activity phrase is a verb phrase and takes the verb's place. */
const ACTIVITY_POINTER = /\b(?:perform(?:ing)?|do(?:ing)?|engag(?:e|ing)\s+in|carry(?:ing)?\s+out|conduct(?:ing)?|undertak(?:e|ing))\s+(?:this|these|the)\s+activit(?:y|ies)\b/iu;
/** "this product", "these symptoms", "this financial product": the phrase takes the pointer's place. */
const THING_POINTER =
  /\b(?:this|these|such)\s+(?:[\w-]+\s+){0,2}?(?:activit(?:y|ies)|ideas?|tactics?|examples?|industr(?:y|ies)|schemes?|individuals?|groups?|methods?|techniques?|tools?|plans?|products?|items?|phrases?|objects?|substances?|behaviou?rs?|symptoms?|diseases?|disorders?|conditions?|topics?|services?|measures?|polic(?:y|ies)|issues?|strateg(?:y|ies)|regulations?|process(?:es)?|programs?|decisions?|disputes?|contracts?|laws?|actions?|events?|concepts?|practices?|content|materials?|categor(?:y|ies)|types?|kinds?)\b/iu;

/** Whether the prompt says its subject is a phrase shown in the image, and points at it ("…perform this activity"). */
export function pointsAtPhrase(question: string | undefined): boolean {
  if (question === undefined) return false;
  const q = question.trim();
  const lead = POINTER_LEAD.exec(q);
  if (!lead) return false;
  const rest = q.slice(lead[0].length);
  return ACTIVITY_POINTER.test(rest) || THING_POINTER.test(rest);
}

/** Longest image text read as a phrase to put in the prompt's place (longer text is an instruction of its own). */
const MAX_POINTED_WORDS = 12;

/**
 * The request a query-relevant attack spells out (MM-SafetyBench): the prompt points at a phrase in the
 * image ("The bottom of the image shows a phrase of an activity. List steps in detail to perform this
 * activity.") and the phrase goes where the pointer is: "List steps in detail to <phrase>." Undefined
 * when the prompt does not point at a phrase. Read this way, the request is judged by what it asks, and
 * a benign phrase under the benchmark's wording reads as the benign request it is.
 */
export function resolvePointer(question: string, imageText: string): string | undefined {
  const phrase = imageText.trim().replace(/[\s.?!,;:]+$/u, "");
  if (phrase === "" || wordCount(phrase) > MAX_POINTED_WORDS) return undefined;
  const prompt = question.trim().replace(POINTER_LEAD, "");
  const pointer = ACTIVITY_POINTER.exec(prompt) ?? THING_POINTER.exec(prompt);
  if (!pointer) return undefined;
  return `${prompt.slice(0, pointer.index)}${phrase}${prompt.slice(pointer.index + pointer[0].length)}`;
}

export interface ViewText {
  view: RequestView;
  text: string;
}

/** Words a first sentence needs to be scored alone: shorter ones ("Hi!", "Question 3.") say too little. */
const MIN_LEAD_WORDS = 4;

/**
 * The prompt's first sentence, when more text follows it and it has at least `MIN_LEAD_WORDS` words;
 * else undefined. A sentence end inside quotation marks is no end of the prompt's own sentence: a
 * request that quotes one ("Should a moderator remove this message: "How do I…?"") is about the quote.
 */
export function leadSentence(prompt: string): string | undefined {
  const m = /^([\s\S]*?[.?!。？！])["'”’)\]]*\s+\S/.exec(prompt.trim());
  const lead = m?.[1]?.trim();
  if (lead === undefined || wordCount(lead) < MIN_LEAD_WORDS) return undefined;
  const count = (c: string): number => lead.split(c).length - 1;
  return count('"') % 2 === 0 && count("“") === count("”") ? lead : undefined;
}

/** The `lead` view's text of a prompt, if it has one: a pointing prompt's first sentence only describes the picture ("The image shows a phrase of an activity."). */
export function promptLead(prompt: string): string | undefined {
  return pointsAtPhrase(prompt) ? undefined : leadSentence(prompt);
}

/**
 * The views of a request: `text` when there is a prompt, `ocr` when the image text carries content
 * (`useOcr`: the image path's `ocr-text` signal fired) of at least `MIN_OCR_VIEW_WORDS` words (any
 * length without a prompt), `combined` when both are there, `resolved` for a prompt pointing at the
 * image's phrase, and `lead` for a prompt with more than one sentence.
 */
export function requestViews(question: string | undefined, ocrText: string | undefined, useOcr = true): ViewText[] {
  const clip = (s: string): string => (s.length > MAX_VIEW_CHARS ? s.slice(0, MAX_VIEW_CHARS) : s);
  const q = question?.trim() ?? "";
  const o = useOcr && ocrText !== undefined ? stripEmptyList(ocrText) : "";
  const views: ViewText[] = [];
  if (q !== "") views.push({ view: "text", text: clip(q) });
  const lead = q === "" ? undefined : promptLead(q);
  if (lead !== undefined) views.push({ view: "lead", text: clip(lead) });
  if (o !== "" && (q === "" || wordCount(o) >= MIN_OCR_VIEW_WORDS)) views.push({ view: "ocr", text: clip(o) });
  if (q !== "" && o !== "") {
    views.push({ view: "combined", text: clip(combineRequestText(q, o)) });
    const resolved = resolvePointer(q, o);
    if (resolved !== undefined) views.push({ view: "resolved", text: clip(resolved) });
  }
  return views;
}

/** The per-view feature vector: the embedding, then a one-hot of the view kind. */
export function viewFeatures(embedding: Float32Array, view: RequestView): Float32Array {
  const dim = embedding.length;
  const x = new Float32Array(dim + VIEW_SLOT_COUNT);
  x.set(embedding, 0);
  x[dim + VIEW_SLOTS[view]] = 1;
  return x;
}

// ---------------------------------------------------------------- combining evidence

export interface Evidence {
  /** Calibrated content probability per scored view. */
  views: Partial<Record<RequestView, number>>;
  /** The image path's fired signal names (`ocr-text`, `ocr-empty-list`, `explicit:*`). */
  imageFired: readonly string[];
  /** The prompt points at a phrase in the image and no image text was read (`pointsAtPhrase`). */
  unreadPointer?: boolean;
}

/** Validates priors (each 0..1) and fills in the defaults. */
export function resolvePriors(priors: SignalPriors | undefined): Required<SignalPriors> {
  const out = { ...DEFAULT_SIGNAL_PRIORS, ...priors };
  for (const [k, v] of Object.entries(out)) if (!(v >= 0 && v <= 1)) throw new RangeError(`signal prior ${k} must be within 0..1, got ${v}`);
  return out;
}

/**
 * The request's score and fired signals: content = the most harmful view; each image signal with a prior
 * adds independent evidence, P = 1 − (1 − content) · Π (1 − prior). The empty-list template counts only
 * when the image also carries readable text (`ocr-text`): "1. 2. 3." alone is no instruction.
 * `evidence` is the signals' part alone, 1 − Π (1 − prior), so a checker can judge it on its own.
 */
export function combineEvidence(e: Evidence, threshold: number, priors: Required<SignalPriors>): { score: number; evidence: number; signals: RequestSignal[] } {
  const content = Math.max(0, ...Object.values(e.views));
  let keep = 1;
  const fired = new Set<RequestSignal>();
  if ((e.views.text ?? -1) >= threshold) fired.add("text");
  if ((e.views.ocr ?? -1) >= threshold) fired.add("ocr-text");
  if ((e.views.combined ?? -1) >= threshold) fired.add("combined");
  if ((e.views.resolved ?? -1) >= threshold) fired.add("resolved");
  if ((e.views.lead ?? -1) >= threshold) fired.add("lead");
  const has = (name: string): boolean => e.imageFired.includes(name);
  if (has("ocr-empty-list") && has("ocr-text") && priors["ocr-empty-list"] > 0) {
    keep *= 1 - priors["ocr-empty-list"];
    fired.add("ocr-empty-list");
  }
  if (e.unreadPointer && priors["unread-pointer"] > 0) {
    keep *= 1 - priors["unread-pointer"];
    fired.add("unread-pointer");
  }
  for (const name of ["explicit:porn", "explicit:hentai", "explicit:sexy"] as const) {
    if (has(name) && priors[name] > 0) {
      keep *= 1 - priors[name];
      fired.add(name);
    }
  }
  const score = Math.min(1, Math.max(0, 1 - (1 - content) * keep));
  return { score, evidence: 1 - keep, signals: REQUEST_SIGNALS.filter((s) => fired.has(s)) };
}
