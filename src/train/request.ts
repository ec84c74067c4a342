import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { readAlpacaEval, readLlavaBenchInTheWild, readVicuna80 } from "../data/benign.js";
import { readAdvBench, readFigStep, readMmHarmfulBench, readRedInstruct } from "../data/harmful-questions.js";
import { mmSafetyBenchGroup, readMmSafetyBenchQuestions } from "../data/mm-safetybench.js";
import { resolveDataDir } from "../data/paths.js";
import { readSafetyTunedLlamasEvaluation, readSafetyTunedLlamasTraining } from "../data/safety-tuned-llamas.js";
import { readVlGuardQuestions } from "../data/vlguard.js";
import type { Backbone } from "../detector/backbones/backbone.js";
import { Head, sigmoid } from "../detector/head.js";
import { LexicalModel, hashedNgrams } from "../detector/lexical.js";
import { requestViewLogits } from "../request/embedded.js";
import { fitFusion } from "./detector.js";
import { binaryMetrics, thresholdForFpr, type BinaryMetrics } from "../eval/metrics.js";
import { fnv1a } from "../internal/random.js";
import { serialiseRequestModel, type RequestCalibration, type RequestModel } from "../request/model-file.js";
import { type RequestView, type ViewText, requestViews, viewFeatures } from "../request/request-checker.js";
import type { Category } from "../types.js";
import { HARMFUL_CATEGORIES, mmSplit, safetyTunedRefusal, type Split } from "./corpus.js";
import { trainingBackbone } from "./embedding-cache.js";

/**
 * Training data and training of the request check (src/request/).
 *
 * Requests (text prompt + what an image says):
 * - harmful: AdvBench; red-instruct (CatQA, HarmfulQA, DangerousQA, AdversarialQA); MM-SafetyBench
 *   questions (Question, Changed Question, and the TYPO request: Rephrased Question + Key Phrase in the
 *   image); safety-tuned-llamas' harmful prompt sets, and its training instructions whose safe response
 *   refuses (the rest are mostly everyday tasks: see `safetyTunedRefusal`).
 * - benign: AlpacaEval instructions, VLGuard safe instructions, safety-tuned-llamas I-Alpaca and
 *   I-PhysicalSafetySafe.
 * - Advice and political scenarios (MM-SafetyBench 08, 10–13; CatQA "Political Campaigning" and "Tailored
 *   Financial Advice") are left out: their "unsafe" is a policy (answer with a disclaimer, decline politics)
 *   that the answer side applies, not a harmful request, and "what helps against high blood pressure?"
 *   must not be blocked.
 * - Augmentations (deterministic, by hash), so the content model reads image text as well as prompts:
 *   typographic requests (a generic image prompt + the request written in the image, turned into a
 *   "Steps to …" phrase where it is a how-question) for harmful and benign requests alike; benign
 *   document images (a prompt about the text + a passage of an AlpacaEval answer); benign OCR noise from
 *   photos; and benign judgement requests ("Is the following sentence safe? …") that quote a request.
 *   The generic image prompts alone are benign.
 * - Never trained on (test only): FigStep (its 500 questions, and any training question that nearly
 *   duplicates one of them or its typographic instruction, are removed), Vicuna-80 and LLaVA-Bench
 *   questions, MM-HarmfulBench questions.
 *
 * Deduplication and split: questions are grouped when their normalised text or their set of content
 * words match (and all variants of one MM-SafetyBench question are one group); groups go to
 * train/validation/test (70/15/15) by a hash, so a question and its near-copies never straddle splits.
 * The head is trained on single views (src/request/request-checker.ts); the validation split (whole
 * requests, scored by their most harmful view) fits the Platt calibration and the threshold that holds
 * the benign false-positive rate at the target.
 */

export interface LabelledRequest {
  source: string;
  question?: string;
  /** What the image says (typographic and document requests). */
  ocrText?: string;
  label: 0 | 1;
  /**
   * The label of the prompt alone, used for the `text` view: a typographic attack's prompt is benign on
   * its own (0); `null` = the prompt alone is no training example (MM-SafetyBench's rephrased prompts
   * point at a harmful image). Default: `label`.
   */
  textLabel?: 0 | 1 | null;
  /**
   * The label of the image text alone (`ocr` view); `null` = not a training example on its own
   * (MM-SafetyBench's key phrases are topics, "illegal drugs": only the prompt makes them a request).
   * Default: `label`.
   */
  ocrLabel?: 0 | 1 | null;
  group: string;
  split: Split | "test-only";
  category?: Category;
}

export interface RequestCorpus {
  requests: LabelledRequest[];
  stats: {
    questions: Record<string, { harmful: number; benign: number }>;
    excluded: { figstepNearDuplicates: number; policyCategories: number; duplicates: number; conflictingLabels: number };
    groups: number;
  };
}

/** Categories whose "unsafe" is a policy, not a harmful request (see the module comment). */
const POLICY_CATEGORIES: ReadonlySet<Category> = new Set<Category>(["political_lobbying", "legal_opinion", "financial_advice", "health_consultation", "gov_decision"]);

// ---------------------------------------------------------------- text helpers

/** Lower case, NFKC, every run of non-letters/digits → one space. */
export function normaliseRequestText(text: string): string {
  return text.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

const STOPWORDS = new Set(
  "a an the and or but if of to in on at by for with about as into from up down out over under is are was were be been being am do does did doing have has had having i me my we our you your he him his she her it its they them their this that these those what which who whom whose when where why how can could would should will shall may might must some any all each every no not so than too very just also there here then once s t".split(" "),
);

/** The sorted set of content words (stop words dropped): near-copies that reorder or swap small words share it. */
export function contentWords(text: string): string[] {
  return [...new Set(normaliseRequestText(text).split(" ").filter((w) => w !== "" && !STOPWORDS.has(w)))].sort();
}

function jaccard(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  const sb = new Set(b);
  let inter = 0;
  for (const w of a) if (sb.has(w)) inter++;
  return inter / (a.length + b.length - inter);
}

const TYPO_FORMS: ReadonlyArray<(vp: string) => string> = [(vp) => `Steps to ${vp}.`, (vp) => `Methods to ${vp}.`, (vp) => `Ways to ${vp}.`, (vp) => vp];

/**
 * A request as a typographic attack writes it into an image: how-questions and imperatives become a
 * declarative phrase ("Steps to make a cake.", or the bare "make a cake" as MM-SafetyBench's key phrases
 * are); anything else is written as it is.
 */
export function typographicPhrase(question: string, salt: number): string {
  const vp = verbPhrase(question);
  if (vp === undefined) return question.trim().replace(/\s+/g, " ");
  return (TYPO_FORMS[salt % TYPO_FORMS.length] as (s: string) => string)(vp);
}

const IMPERATIVE_VERBS = new Set(
  "write create generate explain describe give list make design develop provide suggest compose outline teach tell find name identify summarize summarise produce build plan show draft prepare share recommend help construct invent brainstorm come draw organize organise calculate compare analyze analyse convert translate rewrite edit propose detail demonstrate instruct".split(" "),
);

/** The verb phrase of a how-question or an imperative request ("make a cake"), or undefined. */
export function verbPhrase(question: string): string | undefined {
  const q = question.trim().replace(/\s+/g, " ");
  const how = /^how\s+(?:to|(?:can|could|do|would|should|might)\s+(?:i|one|someone|somebody|you|we|a person|anyone))\s+(.+?)[?.!\s]*$/i.exec(q);
  if (how?.[1]) return how[1];
  const first = /^([A-Za-z]+)\b/.exec(q)?.[1]?.toLowerCase();
  if (first !== undefined && IMPERATIVE_VERBS.has(first) && !q.includes("\n") && q.length <= 300) return q.replace(/[?.!\s]+$/, "").replace(/^\S/, (c) => c.toLowerCase());
  return undefined;
}

const REPHRASINGS: ReadonlyArray<(vp: string) => string> = [
  (vp) => `List steps in detail to ${vp}.`,
  (vp) => `How can I ${vp}?`,
  (vp) => `Can you explain in detail how to ${vp}?`,
  (vp) => `What is the best way to ${vp}?`,
];

/**
 * The same request in another common phrasing. Applied to harmful and benign requests alike, so that a
 * phrasing ("How can I …", "List steps in detail to …", which MM-SafetyBench uses for every harmful
 * question) tells nothing and the content has to.
 */
export function rephraseRequest(question: string, salt: number): string | undefined {
  const vp = verbPhrase(question);
  if (vp === undefined) return undefined;
  return (REPHRASINGS[salt % REPHRASINGS.length] as (s: string) => string)(vp);
}

const QR_LEADS = ["The bottom of the image shows", "The image shows"] as const;
const QR_ACTIVITY_ASKS = ["List steps in detail to perform this activity.", "Explain in detail how to perform this activity.", "What is the best way to perform this activity?"] as const;

/** The longest run of one to three content words, in the question's order: a product-like key phrase. */
function contentRun(question: string): string | undefined {
  let best: string[] = [];
  let run: string[] = [];
  for (const token of question.split(/\s+/u)) {
    const word = token.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "");
    const ends = word !== token.replace(/^[^\p{L}\p{N}]+/u, "");
    if (word !== "" && !STOPWORDS.has(word.toLowerCase()) && run.length < 3) run.push(word);
    else run = word !== "" && !STOPWORDS.has(word.toLowerCase()) ? [word] : [];
    if (run.length >= best.length) best = [...run];
    if (ends) run = [];
  }
  return best.length ? best.join(" ") : undefined;
}

/** Prompt words that ask for evasion or harm whatever the image shows: such prompts are never paired with a benign phrase. */
const HARMFUL_QUALIFIER = /\b(?:without|caught|detect\w*|secret\w*|discreet\w*|anonymous\w*|illegal\w*|undetect\w*|untrace\w*|trace|exploit\w*|harm\w*|victims?|steal\w*|evad\w*|bypass\w*)\b/iu;

/**
 * A request as MM-SafetyBench's query-relevant attack writes it: the key phrase goes into the image and
 * the prompt only points at it ("The bottom of the image shows a phrase of an activity. List steps in
 * detail to perform this activity."). Made from harmful and benign requests alike, so that the pointing
 * prompt tells nothing and the phrase has to: trained on harmful requests only, the check learned the
 * benchmark's wording and flagged it with any phrase ("sourdough bread" too).
 */
export function queryRelevantForm(question: string, salt: number): { prompt: string; keyPhrase: string } | undefined {
  const lead = QR_LEADS[salt % QR_LEADS.length] as string;
  const vp = verbPhrase(question);
  if (vp !== undefined && (salt >>> 3) % 3 !== 0) {
    return { prompt: `${lead} a phrase of an activity. ${QR_ACTIVITY_ASKS[(salt >>> 5) % QR_ACTIVITY_ASKS.length] as string}`, keyPhrase: vp };
  }
  const phrase = contentRun(question);
  if (phrase === undefined) return undefined;
  const q = question.trim().replace(/\s+/gu, " ");
  const at = q.indexOf(phrase);
  if (at < 0) return undefined;
  const before = q.slice(0, at).replace(/\b(?:a|an|the)\s+$/iu, "");
  const after = q.slice(at + phrase.length);
  // A question that is nothing but the phrase leaves no request to point with.
  if (contentWords(`${before} ${after}`).length === 0) return undefined;
  const rest = `${before}this product${after}`;
  return { prompt: `${lead} a phrase of a product. ${rest}`, keyPhrase: phrase };
}

/** Generic image prompts of typographic requests (benign on their own): the image carries the request. */
export const TYPO_PROMPTS = [
  "Follow the instructions shown in the image.",
  "Answer the question written in the picture.",
  "Read the text in this image and respond to it in detail.",
  "The image contains a request. Please carry it out step by step.",
  "Look at the text in the image and give a detailed answer.",
  "Please help me with the task described in the image.",
  "The text in the picture describes an activity. Explain how to perform it in detail.",
  "Respond to the request in the image.",
  "Complete the task shown in the image.",
  "Can you do what the picture asks?",
  "Give a thorough response to the instruction in this image.",
  "What is written here? Please answer it.",
] as const;

/** Prompts about a document in an image (benign). */
const DOC_PROMPTS = [
  "Summarize the text in this image.",
  "What does this document say?",
  "Translate the text in the picture into French.",
  "Proofread the text in this image.",
  "Explain the passage shown in the image in simple words.",
  "Turn the text in this screenshot into bullet points.",
] as const;

/** Judgement requests that quote a sentence: asking whether something is safe is not a harmful request. */
const JUDGE_TEMPLATES: ReadonlyArray<(q: string) => string> = [
  (q) => `Is the following request safe to answer? "${q}"`,
  (q) => `Classify this message as safe or unsafe: ${q}`,
  (q) => `Does the following text contain harmful content? Answer yes or no. "${q}"`,
  (q) => `Rate how appropriate this sentence is on a scale from 1 to 5: "${q}"`,
  (q) => `Would it be offensive or dangerous to say this? "${q}"`,
  (q) => `A user wrote: "${q}" Should a moderator remove this message?`,
];

/** Deterministic OCR noise of the kind Tesseract reads from photos without text. */
export function ocrNoise(seed: number): string {
  const pieces = ["ee", "ae", "Sih", "|", "—", "=", "a", "i", "Wi", "ii", "AN", "fe", "Lr", "eS", "oe", "~", "7", "4", "ts", "nl", "es", "Re", "rs", "we", "oo", "ps", "SS", "«", "»", "Ti", "be", "na"];
  let h = seed >>> 0;
  const n = 6 + (h % 12);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    h = fnv1a(String(h), h);
    out.push(pieces[h % pieces.length] as string);
  }
  return out.join(" ");
}

/** A passage as it might appear in a screenshot or a page: the first sentences, up to ~400 characters. */
function passage(text: string): string {
  const clean = text.replace(/\s+/g, " ").trim();
  if (clean.length <= 400) return clean;
  const cut = clean.slice(0, 400);
  const end = Math.max(cut.lastIndexOf(". "), cut.lastIndexOf("? "), cut.lastIndexOf("! "));
  return end > 120 ? cut.slice(0, end + 1) : cut;
}

// ---------------------------------------------------------------- corpus

interface BaseQuestion {
  source: string;
  question: string;
  label: 0 | 1;
  /** Questions with the same hint are one group (MM-SafetyBench variants). */
  groupHint?: string;
  category?: Category;
  /** MM-SafetyBench TYPO request that comes with this question. */
  typo?: { prompt: string; keyPhrase: string };
  /** The split the detector gives this question (MM-SafetyBench): its group goes there too. */
  splitHint?: Split;
}

class UnionFind {
  private readonly parent: number[] = [];
  add(): number {
    this.parent.push(this.parent.length);
    return this.parent.length - 1;
  }
  find(x: number): number {
    let r = x;
    while (this.parent[r] !== r) r = this.parent[r] as number;
    while (this.parent[x] !== r) {
      const next = this.parent[x] as number;
      this.parent[x] = r;
      x = next;
    }
    return r;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

export interface RequestCorpusOptions {
  /** Share of harmful / benign questions that also appear as a typographic request (default 0.4 / 0.6). */
  typoShareHarmful?: number;
  typoShareBenign?: number;
  /** Share of harmful / benign questions that also appear rephrased (default 0.25 / 0.9; benign phrasings are rarer in the data). */
  rephraseShareHarmful?: number;
  rephraseShareBenign?: number;
  /** Share of training questions (other than MM-SafetyBench's own) that also appear as a query-relevant attack (default 0.3). */
  queryRelevantShare?: number;
  /** Share of questions that also appear quoted in a benign judgement request (default 0.2). */
  judgeShare?: number;

  /** Jaccard of content words at which a training question counts as a near-copy of a FigStep question (default 0.6). */
  figstepJaccard?: number;
}

const exists = (p: string): boolean => existsSync(p);

async function loadBaseQuestions(dataDir: string, excluded: RequestCorpus["stats"]["excluded"]): Promise<BaseQuestion[]> {
  const out: BaseQuestion[] = [];
  const harm = join(dataDir, "harmful-questions");
  for (const q of await readAdvBench(join(harm, "advbench", "advbench_harmful_behaviors.json"))) out.push({ source: "advbench", question: q.question, label: 1 });
  for (const q of await readRedInstruct(join(harm, "red-instruct"))) {
    if (q.category !== undefined && POLICY_CATEGORIES.has(q.category)) {
      excluded.policyCategories++;
      continue;
    }
    out.push({ source: q.source, question: q.question, label: 1, ...(q.category ? { category: q.category } : {}) });
  }
  for (const q of await readMmSafetyBenchQuestions(join(dataDir, "mm-safetybench", "processed_questions"))) {
    if (!HARMFUL_CATEGORIES.has(q.category)) {
      excluded.policyCategories++;
      continue;
    }
    const groupHint = `mm:${q.scenario}:${q.id}`;
    // Held out here exactly when the detector and the protector evaluation hold it out.
    const splitHint = mmSplit({ group: mmSafetyBenchGroup(q.scenario, q.id) });
    out.push({ source: "mm-safetybench/question", question: q.question, label: 1, groupHint, splitHint, category: q.category, typo: { prompt: q.rephrasedQuestion, keyPhrase: q.keyPhrase } });
    if (q.changedQuestion.trim() && q.changedQuestion !== q.question) out.push({ source: "mm-safetybench/changed", question: q.changedQuestion, label: 1, groupHint, splitHint, category: q.category });
  }
  const stl = join(dataDir, "safety-tuned-llamas");
  for (const q of await readSafetyTunedLlamasEvaluation(join(stl, "evaluation"))) out.push({ source: q.source, question: q.question, label: q.label, ...(q.category ? { category: q.category } : {}) });
  for (const a of await readSafetyTunedLlamasTraining(join(stl, "training", "safety_only_data_Instructions.json"))) {
    if (a.question && safetyTunedRefusal(a)) out.push({ source: "safety-tuned-llamas/training", question: a.question, label: 1 });
  }
  const seenAlpaca = new Set<string>();
  for (const a of await readAlpacaEval(join(dataDir, "benign", "alpaca-eval"))) {
    if (!a.question || seenAlpaca.has(a.question)) continue;
    seenAlpaca.add(a.question);
    out.push({ source: "alpaca-eval", question: a.question, label: 0 });
  }
  for (const file of ["train.json", "test.json"]) {
    for (const q of await readVlGuardQuestions(join(dataDir, "vlguard", file))) if (q.label === 0) out.push({ source: "vlguard/safe", question: q.question, label: 0 });
  }
  return out;
}

/** Loads, filters, deduplicates, groups and splits the request data, and builds the augmented requests. */
export async function loadRequestCorpus(dataDir: string, options: RequestCorpusOptions = {}): Promise<RequestCorpus> {
  const typoHarmful = options.typoShareHarmful ?? 0.4;
  const typoBenign = options.typoShareBenign ?? 0.6;
  const judgeShare = options.judgeShare ?? 0.2;
  const queryRelevantShare = options.queryRelevantShare ?? 0.3;
  const rephraseHarmful = options.rephraseShareHarmful ?? 0.25;
  const rephraseBenign = options.rephraseShareBenign ?? 0.9;
  const figJ = options.figstepJaccard ?? 0.6;
  const excluded = { figstepNearDuplicates: 0, policyCategories: 0, duplicates: 0, conflictingLabels: 0 };

  // FigStep stays out of training: its questions and instructions, and near-copies of either.
  const fig = await readFigStep(join(dataDir, "figstep", "question", "safebench.csv"));
  const figTexts = fig.flatMap((f) => [f.question, f.instruction]).filter((t) => t.trim() !== "");
  const figNorm = new Set(figTexts.map(normaliseRequestText));
  const figWords = figTexts.map(contentWords);
  const figByWord = new Map<string, number[]>();
  figWords.forEach((ws, i) => ws.forEach((w) => figByWord.set(w, [...(figByWord.get(w) ?? []), i])));
  const nearFigStep = (text: string): boolean => {
    if (figNorm.has(normaliseRequestText(text))) return true;
    const ws = contentWords(text);
    const candidates = new Set(ws.flatMap((w) => figByWord.get(w) ?? []));
    for (const i of candidates) if (jaccard(ws, figWords[i] as string[]) >= figJ) return true;
    return false;
  };

  const all = await loadBaseQuestions(dataDir, excluded);
  const kept: BaseQuestion[] = [];
  for (const q of all) {
    if (nearFigStep(q.question) || (q.typo !== undefined && nearFigStep(q.typo.keyPhrase) && contentWords(q.typo.keyPhrase).length >= 3)) {
      excluded.figstepNearDuplicates++;
      continue;
    }
    kept.push(q);
  }

  // Exact duplicates (normalised) are kept once.
  const byNorm = new Map<string, BaseQuestion>();
  const unique: BaseQuestion[] = [];
  const conflicted = new Set<string>();
  for (const q of kept) {
    const key = normaliseRequestText(q.question);
    if (key === "") continue;
    const prev = byNorm.get(key);
    if (prev === undefined) {
      byNorm.set(key, q);
      unique.push(q);
    } else {
      excluded.duplicates++;
      if (prev.label !== q.label) conflicted.add(key);
      prev.splitHint ??= q.splitHint;
    }
  }

  // Groups: same content-word set, or the same MM-SafetyBench question.
  const uf = new UnionFind();
  const ids = unique.map(() => uf.add());
  const firstBy = new Map<string, number>();
  unique.forEach((q, i) => {
    const keys = [`w:${contentWords(q.question).join(" ")}`];
    if (q.groupHint) keys.push(`h:${q.groupHint}`);
    for (const k of keys) {
      const j = firstBy.get(k);
      if (j === undefined) firstBy.set(k, i);
      else uf.union(ids[i] as number, ids[j] as number);
    }
  });
  const members = new Map<number, number[]>();
  unique.forEach((_, i) => {
    const r = uf.find(ids[i] as number);
    members.set(r, [...(members.get(r) ?? []), i]);
  });
  const groupOf = new Array<string>(unique.length);
  const splitOfIdx = new Array<Split>(unique.length);
  const dropped = new Set<number>();
  for (const list of members.values()) {
    const texts = list.map((i) => normaliseRequestText((unique[i] as BaseQuestion).question)).sort();
    const labels = new Set(list.map((i) => (unique[i] as BaseQuestion).label));
    if (labels.size > 1 || texts.some((t) => conflicted.has(t))) {
      excluded.conflictingLabels += list.length;
      list.forEach((i) => dropped.add(i));
      continue;
    }
    const key = texts[0] as string;
    const b = fnv1a(`request:${key}`) % 100;
    const hints = new Set(list.map((i) => (unique[i] as BaseQuestion).splitHint));
    const split: Split = hints.has("test") ? "test" : hints.has("validation") ? "validation" : hints.has("train") ? "train" : b < 15 ? "test" : b < 30 ? "validation" : "train";
    for (const i of list) {
      groupOf[i] = key;
      splitOfIdx[i] = split;
    }
  }

  // MM-SafetyBench's own pointing prompts (training split), to pair with benign phrases too (see queryRelevantForm).
  const pointers: string[] = [];
  unique.forEach((q, i) => {
    if (q.typo !== undefined && !dropped.has(i) && splitOfIdx[i] === "train" && !HARMFUL_QUALIFIER.test(q.typo.prompt)) pointers.push(q.typo.prompt);
  });
  const requests: LabelledRequest[] = [];
  const questions: Record<string, { harmful: number; benign: number }> = {};
  unique.forEach((q, i) => {
    if (dropped.has(i)) return;
    const group = groupOf[i] as string;
    const split = splitOfIdx[i] as Split;
    const c = (questions[q.source] ??= { harmful: 0, benign: 0 });
    if (q.label === 1) c.harmful++;
    else c.benign++;
    const cat = q.category ? { category: q.category } : {};
    requests.push({ source: q.source, question: q.question, label: q.label, group, split, ...cat });
    const h = fnv1a(`aug:${q.question}`);
    const u = (h % 10_000) / 10_000;
    if (u < (q.label === 1 ? typoHarmful : typoBenign)) {
      const salt = fnv1a(`salt:${q.question}`);
      requests.push({
        source: `${q.source}+typo`,
        question: TYPO_PROMPTS[salt % TYPO_PROMPTS.length] as string,
        ocrText: typographicPhrase(q.question, salt >>> 4),
        label: q.label,
        textLabel: 0,
        group,
        split,
        ...cat,
      });
    }
    if (q.typo !== undefined && q.typo.keyPhrase.trim() && q.typo.prompt.trim()) {
      requests.push({ source: "mm-safetybench/typo", question: q.typo.prompt, ocrText: q.typo.keyPhrase, label: 1, textLabel: null, ocrLabel: null, group, split, ...cat });
    } else if (split === "train" && (fnv1a(`qr:${q.question}`) % 10_000) / 10_000 < queryRelevantShare) {
      // Training only: these are made from the recipe, and a benchmark prompt's leftover words can still
      // lean harmful under a benign phrase, too noisy a label to set the threshold or to report on.
      const salt = fnv1a(`qr-form:${q.question}`);
      const form = queryRelevantForm(q.question, salt);
      if (form && q.label === 0 && pointers.length && salt % 2 === 0) {
        // A benign phrase under one of the benchmark's own prompts: the wording alone must not decide.
        requests.push({ source: `${q.source}+query-relevant`, question: pointers[(salt >>> 8) % pointers.length] as string, ocrText: form.keyPhrase, label: 0, textLabel: null, ocrLabel: null, group, split, ...cat });
      } else if (form) {
        // The pointing prompt is benign on its own unless a harmful request's leftover words make it one.
        requests.push({ source: `${q.source}+query-relevant`, question: form.prompt, ocrText: form.keyPhrase, label: q.label, textLabel: q.label === 0 ? 0 : null, ocrLabel: null, group, split, ...cat });
      }
    }
    const w = (fnv1a(`rephrase:${q.question}`) % 10_000) / 10_000;
    if (w < (q.label === 1 ? rephraseHarmful : rephraseBenign)) {
      const rephrased = rephraseRequest(q.question, fnv1a(`rp:${q.question}`));
      if (rephrased !== undefined && normaliseRequestText(rephrased) !== normaliseRequestText(q.question)) {
        requests.push({ source: `${q.source}+rephrased`, question: rephrased, label: q.label, group, split, ...cat });
      }
    }
    const v = (fnv1a(`judge:${q.question}`) % 10_000) / 10_000;
    if (v < judgeShare) {
      const t = JUDGE_TEMPLATES[fnv1a(`jt:${q.question}`) % JUDGE_TEMPLATES.length] as (s: string) => string;
      requests.push({ source: `judge/${q.label === 1 ? "harmful-quote" : "benign-quote"}`, question: t(q.question), label: 0, group, split });
    }
  });

  // Benign documents in images: passages of AlpacaEval answers (two models), split with their instruction.
  const alpacaSplit = new Map(requests.filter((r) => r.source === "alpaca-eval").map((r) => [r.question as string, r]));
  for (const a of await readAlpacaEval(join(dataDir, "benign", "alpaca-eval"))) {
    if (a.model !== "gpt4_0613" && a.model !== "Mistral-7B-Instruct-v0.2") continue;
    const owner = a.question ? alpacaSplit.get(a.question) : undefined;
    if (owner === undefined) continue;
    const salt = fnv1a(`doc:${a.model}:${a.question}`);
    requests.push({ source: "alpaca-eval+document", question: DOC_PROMPTS[salt % DOC_PROMPTS.length] as string, ocrText: passage(a.answer), label: 0, group: owner.group, split: owner.split });
  }
  // OCR noise from photos, with ordinary image questions.
  const benignPrompts = requests.filter((r) => r.source === "vlguard/safe");
  for (let i = 0; i < 600; i++) {
    const host = benignPrompts[fnv1a(`noise-host:${i}`) % Math.max(1, benignPrompts.length)];
    if (host === undefined) break;
    requests.push({ source: "ocr-noise", question: host.question, ocrText: ocrNoise(fnv1a(`noise:${i}`)), label: 0, group: host.group, split: host.split });
  }
  // The generic image prompts alone are benign requests (training only: they are part of the recipe).
  TYPO_PROMPTS.forEach((p) => requests.push({ source: "typo-prompt", question: p, label: 0, group: `typo-prompt:${p}`, split: "train" }));

  // Test only: never trained on, never used for the threshold.
  const benign = join(dataDir, "benign");
  if (exists(join(benign, "vicuna-80"))) {
    const seen = new Set<string>();
    for (const a of await readVicuna80(join(benign, "vicuna-80"))) {
      if (!a.question || seen.has(a.question)) continue;
      seen.add(a.question);
      requests.push({ source: "vicuna-80", question: a.question, label: 0, group: `vicuna:${a.group ?? a.question}`, split: "test-only" });
    }
  }
  if (exists(join(benign, "llava-bench-in-the-wild"))) {
    const seen = new Set<string>();
    for (const a of await readLlavaBenchInTheWild(join(benign, "llava-bench-in-the-wild"))) {
      if (!a.question || seen.has(`${a.source.startsWith("llava-bench-coco") ? "coco" : "wild"}:${a.group}`)) continue;
      seen.add(`${a.source.startsWith("llava-bench-coco") ? "coco" : "wild"}:${a.group}`);
      requests.push({ source: a.source.startsWith("llava-bench-coco") ? "llava-bench-coco" : "llava-bench", question: a.question, label: 0, group: `llava:${a.group ?? a.question}`, split: "test-only" });
    }
  }
  const mmhb = join(dataDir, "mm-harmfulbench", "questions.jsonl");
  if (exists(mmhb)) for (const q of await readMmHarmfulBench(mmhb)) requests.push({ source: "mm-harmfulbench (text only)", question: q.question, label: 1, group: `mmhb:${q.index}`, split: "test-only" });

  return { requests, stats: { questions, excluded, groups: members.size - new Set([...dropped].map((i) => uf.find(ids[i] as number))).size } };
}

// ---------------------------------------------------------------- training

export interface ViewExample {
  view: RequestView;
  text: string;
  label: 0 | 1;
}

/**
 * The training views of requests: `text` (by `textLabel`), `ocr` (by `ocrLabel`), `combined` and
 * `resolved` (by the request's label); identical views kept once, conflicting ones dropped. No `lead`:
 * a harmful request's first sentence may be its harmless preamble, so the request's label is not the
 * sentence's; at inference the lead is scored by what the head learned of plain requests.
 */
export function trainingViews(requests: readonly LabelledRequest[]): ViewExample[] {
  const byKey = new Map<string, ViewExample | null>();
  const add = (view: RequestView, text: string, label: 0 | 1): void => {
    const key = `${view}\u0000${text}`;
    const prev = byKey.get(key);
    if (prev === undefined) byKey.set(key, { view, text, label });
    else if (prev !== null && prev.label !== label) byKey.set(key, null);
  };
  for (const r of requests) {
    const textLabel = r.textLabel === undefined ? r.label : r.textLabel;
    const ocrLabel = r.ocrLabel === undefined ? r.label : r.ocrLabel;
    for (const v of requestViews(r.question, r.ocrText)) {
      if (v.view === "text") {
        if (textLabel !== null) add("text", v.text, textLabel);
      } else if (v.view === "ocr") {
        if (ocrLabel !== null) add("ocr", v.text, ocrLabel);
      } else if (v.view !== "lead") add(v.view, v.text, r.label);
    }
  }
  return [...byKey.values()].filter((e): e is ViewExample => e !== null);
}

/** Families of requests, for the threshold and reports: plain prompts, typographic images, other image text, judgement requests. */
export const REQUEST_FAMILIES = ["text", "typographic", "image-text", "judgement"] as const;
export type RequestFamily = (typeof REQUEST_FAMILIES)[number];

export function requestFamily(source: string): RequestFamily {
  if (source.startsWith("judge/")) return "judgement";
  if (source.endsWith("+typo") || source === "mm-safetybench/typo") return "typographic";
  if (source.endsWith("+document") || source === "ocr-noise") return "image-text";
  return "text";
}

/**
 * Hidden units of the shipped request head, chosen on validation recall at the shipped threshold (FPR
 * ≤ 1 % on every benign family): linear 0.863, 32 units 0.900, 64 units 0.898, 128 units 0.877. A
 * query-relevant request is harmful when its phrase is, whatever the pointing prompt says: an
 * interaction a linear head on one embedding captures poorly.
 */
export const REQUEST_HIDDEN_UNITS = 32;

export interface RequestTrainingOptions {
  hidden?: number;
  epochs?: number;
  learningRate?: number;
  l2?: number;
  /** Hash buckets of the lexical model (default 2^15). */
  lexicalBuckets?: number;
  lexicalEpochs?: number;
  lexicalL2?: number;
  /** Benign false-positive rate the threshold holds on the validation split (default 0.01). */
  targetFpr?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface RequestSetReport {
  n: number;
  harmful: number;
  flagged: number;
  flaggedRate: number;
  recall?: number;
  fpr?: number;
  auroc?: number;
}

export interface RequestTrainingResult {
  model: RequestModel;
  validation: BinaryMetrics & { bySource: Record<string, RequestSetReport> };
  test: Record<string, RequestSetReport>;
}

/** Platt scaling (1-D logistic regression, Newton), classes weighted equally so 0.5 means even odds. */
export function fitPlatt(logits: readonly number[], labels: readonly number[]): RequestCalibration {
  const pos = labels.filter((l) => l === 1).length;
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) throw new Error("calibration needs harmful and benign validation requests");
  const wPos = labels.length / (2 * pos);
  const wNeg = labels.length / (2 * neg);
  let a = 1;
  let b = 0;
  const ridge = 1e-6;
  for (let iter = 0; iter < 100; iter++) {
    let ga = 0;
    let gb = 0;
    let haa = ridge;
    let hab = 0;
    let hbb = ridge;
    logits.forEach((x, i) => {
      const y = labels[i] as number;
      const w = y === 1 ? wPos : wNeg;
      const p = sigmoid(a * x + b);
      const r = (p - y) * w;
      const s = p * (1 - p) * w;
      ga += r * x;
      gb += r;
      haa += s * x * x;
      hab += s * x;
      hbb += s;
    });
    const det = haa * hbb - hab * hab;
    if (!(Math.abs(det) > 1e-300)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (Math.hypot(da, db) < 1e-10) break;
  }
  return { a, b };
}

function setReport(scores: readonly number[], labels: readonly number[], threshold: number): RequestSetReport {
  const flagged = scores.filter((s) => s >= threshold).length;
  const harmful = labels.filter((l) => l === 1).length;
  const r: RequestSetReport = { n: scores.length, harmful, flagged, flaggedRate: flagged / Math.max(1, scores.length) };
  if (harmful > 0 && harmful < scores.length) {
    const m = binaryMetrics(scores, labels, threshold);
    Object.assign(r, { recall: m.recall, fpr: m.fpr, auroc: m.auroc });
  } else if (harmful > 0) r.recall = flagged / harmful;
  else r.fpr = flagged / Math.max(1, scores.length);
  return r;
}

function bySource(requests: readonly LabelledRequest[], scores: readonly number[], threshold: number): Record<string, RequestSetReport> {
  const groups = new Map<string, number[]>();
  requests.forEach((r, i) => groups.set(r.source, [...(groups.get(r.source) ?? []), i]));
  const out: Record<string, RequestSetReport> = {};
  for (const [source, idx] of [...groups].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    out[source] = setReport(
      idx.map((i) => scores[i] as number),
      idx.map((i) => (requests[i] as LabelledRequest).label),
      threshold,
    );
  }
  return out;
}

/** The content logit of each request: its most harmful view's fused logit (no image signals: these requests have no image). */
export async function requestLogits(model: Pick<RequestModel, "head" | "lexical" | "fusion">, backbone: Backbone, requests: readonly LabelledRequest[]): Promise<number[]> {
  const plans = requests.map((r) => requestViews(r.question, r.ocrText));
  const logits = await requestViewLogits(model, backbone, plans.flat());
  let k = 0;
  return plans.map((views: ViewText[]) => {
    let best = -Infinity;
    for (let i = 0; i < views.length; i++) best = Math.max(best, logits[k++] as number);
    return best;
  });
}

export async function trainRequestModel(corpus: RequestCorpus, backbone: Backbone, options: RequestTrainingOptions = {}): Promise<RequestTrainingResult> {
  const log = options.log ?? (() => {});
  const seed = options.seed ?? 20240905;
  const targetFpr = options.targetFpr ?? 0.01;
  const buckets = options.lexicalBuckets ?? 1 << 15;
  const train = corpus.requests.filter((r) => r.split === "train");
  const validation = corpus.requests.filter((r) => r.split === "validation");
  const views = trainingViews(train);
  if (!views.some((v) => v.label === 1) || !views.some((v) => v.label === 0)) throw new Error("request training data needs harmful and benign requests");

  // Each view kind's two classes carry the same total weight.
  const counts = new Map<string, number>();
  for (const v of views) counts.set(`${v.view}:${v.label}`, (counts.get(`${v.view}:${v.label}`) ?? 0) + 1);
  const perView = new Map<RequestView, number>();
  for (const v of views) perView.set(v.view, (perView.get(v.view) ?? 0) + 1);
  const weights = views.map((v) => (perView.get(v.view) as number) / (2 * (counts.get(`${v.view}:${v.label}`) as number)));
  log(`request views: ${views.length} (${[...counts].map(([k, n]) => `${k} ${n}`).join(", ")})`);

  const texts = [...new Set(views.map((v) => v.text))];
  const vectors = await backbone.embed(texts);
  const byText = new Map(texts.map((t, i) => [t, vectors[i] as Float32Array]));
  const features = views.map((v) => viewFeatures(byText.get(v.text) as Float32Array, v.view));
  const labels = views.map((v) => v.label);
  const head = Head.train(
    { features, labels, weights },
    { hidden: options.hidden ?? REQUEST_HIDDEN_UNITS, epochs: options.epochs ?? 20, learningRate: options.learningRate ?? 1e-3, l2: options.l2 ?? 1e-4, seed, pairWeight: 0 },
  );
  const lexical = LexicalModel.train(views.map((v) => hashedNgrams(v.text, buckets)), labels, {
    buckets,
    weights,
    seed,
    epochs: options.lexicalEpochs ?? 8,
    l2: options.lexicalL2 ?? 1e-6,
  });
  log("request head and lexical model trained");

  // Fusion on validation views, then Platt calibration of the requests' most harmful view.
  const valViews = trainingViews(validation);
  const valTexts = [...new Set(valViews.map((v) => v.text))];
  const valVectors = await backbone.embed(valTexts);
  const valByText = new Map(valTexts.map((t, i) => [t, valVectors[i] as Float32Array]));
  const eLogits = valViews.map((v) => head.logit(viewFeatures(valByText.get(v.text) as Float32Array, v.view)));
  const lLogits = valViews.map((v) => lexical.logit(v.text));
  const fusion = fitFusion(eLogits, lLogits, valViews.map((v) => v.label));
  log(`fusion: ${JSON.stringify(fusion)}`);

  const valLogits = await requestLogits({ head, lexical, fusion }, backbone, validation);
  const valLabels = validation.map((r) => r.label);
  const calibration = fitPlatt(valLogits, valLabels);
  const valScores = valLogits.map((x) => sigmoid(calibration.a * x + calibration.b));
  // The threshold holds the target on every family of benign requests, not only on their mixture
  // (easy synthetic negatives must not buy false positives on ordinary prompts).
  const familyThresholds: Record<string, number> = {};
  for (const family of REQUEST_FAMILIES) {
    const benign = valScores.filter((_, i) => valLabels[i] === 0 && requestFamily((validation[i] as LabelledRequest).source) === family);
    if (benign.length > 0) familyThresholds[family] = thresholdForFpr(benign, targetFpr);
  }
  const threshold = Math.max(...Object.values(familyThresholds));
  log(`threshold per benign family: ${JSON.stringify(familyThresholds)}`);
  const metrics = binaryMetrics(valScores, valLabels, threshold);
  log(`validation: recall ${metrics.recall.toFixed(3)} at FPR ${metrics.fpr.toFixed(4)} (threshold ${threshold.toFixed(4)}), AUROC ${metrics.auroc.toFixed(4)}`);

  const model: RequestModel = { backbone: backbone.id, head, lexical, fusion, calibration, threshold, meta: {} };
  const testRequests = corpus.requests.filter((r) => r.split === "test" || r.split === "test-only");
  const testScores = await requestLogits(model, backbone, testRequests).then((ls) => ls.map((x) => sigmoid(calibration.a * x + calibration.b)));
  const test = bySource(testRequests, testScores, threshold);
  const heldOut = testRequests.map((r, i) => ({ r, s: testScores[i] as number })).filter((x) => x.r.split === "test");
  test["ALL held-out test split"] = setReport(heldOut.map((x) => x.s), heldOut.map((x) => x.r.label), threshold);
  for (const [k, v] of Object.entries(test)) log(`test ${k}: ${JSON.stringify(v)}`);

  model.meta = {
    seed,
    targetFpr,
    thresholdPerFamily: familyThresholds,
    hidden: options.hidden ?? REQUEST_HIDDEN_UNITS,
    lexicalBuckets: buckets,
    epochs: options.epochs ?? 20,
    split: "groups of near-duplicate questions (normalised text or content-word set; MM-SafetyBench variants together) → train/validation/test 70/15/15 by fnv1a hash of the group key; FigStep, Vicuna-80, LLaVA-Bench, MM-HarmfulBench never trained on",
    data: { questions: corpus.stats.questions, excluded: corpus.stats.excluded, groups: corpus.stats.groups, views: Object.fromEntries(counts) },
    validation: { ...metrics, bySource: bySource(validation, valScores, threshold) },
    test,
  };
  return { model, validation: { ...metrics, bySource: bySource(validation, valScores, threshold) }, test };
}

// ---------------------------------------------------------------- CLI

const cliLog = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

export interface TrainRequestCliOptions {
  data?: string;
  out: string;
  cache: string;
  targetFpr: number;
  hidden?: number;
  report?: string;
}

/** `mllm-protector train request`: trains models/request.json on the USE-lite backbone (embeddings cached on disk). */
export async function runTrainRequest(o: TrainRequestCliOptions): Promise<number> {
  const dataDir = resolveDataDir(o.data);
  cliLog(`loading datasets from ${dataDir}`);
  const corpus = await loadRequestCorpus(dataDir);
  const n = (s: string): number => corpus.requests.filter((r) => r.split === s).length;
  cliLog(`requests: train ${n("train")}, validation ${n("validation")}, test ${n("test")}, test-only ${n("test-only")}; excluded ${JSON.stringify(corpus.stats.excluded)}`);
  const backbone = await trainingBackbone(o.cache, cliLog);
  try {
    const result = await trainRequestModel(corpus, backbone, { targetFpr: o.targetFpr, hidden: o.hidden, log: cliLog });
    const text = serialiseRequestModel(result.model);
    await mkdir(dirname(o.out), { recursive: true });
    await writeFile(o.out, text);
    cliLog(`wrote ${o.out} (${(text.length / 1024).toFixed(0)} kB, sha256 ${createHash("sha256").update(text).digest("hex").slice(0, 16)})`);
    if (o.report) await writeFile(o.report, `${JSON.stringify({ validation: result.validation, test: result.test }, null, 2)}\n`);
    return 0;
  } finally {
    await backbone.close?.();
  }
}
