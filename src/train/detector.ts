import type { Backbone } from "../detector/backbones/backbone.js";
import { answerFeatures, embedItems, featureVector } from "../detector/features.js";
import { EmbeddedDetector } from "../detector/embedded.js";
import { Head, sigmoid } from "../detector/head.js";
import { LexicalModel, hashedNgrams } from "../detector/lexical.js";
import type { DetectorModel, Fusion, ScreenRule } from "../detector/model-file.js";
import type { LabelledAnswer, PreferencePair } from "../data/types.js";
import { binaryMetrics, thresholdForFpr, type BinaryMetrics } from "../eval/metrics.js";
import { createRng, shuffleInPlace } from "../internal/random.js";
import type { QAItem } from "../types.js";
import { requestComplianceLogit, requestRisk, type RequestTerm } from "../detector/request-term.js";
import { stripPersonas } from "../detector/persona.js";

/**
 * Trains the embedded detector: frozen-backbone features → head (BCE + pairwise), a hashed n-gram
 * model beside it, a fusion of the two fitted on the validation split (a calibrated probability),
 * and the threshold that holds the validation false-positive rate at the target.
 */

export interface DetectorTrainingData {
  train: LabelledAnswer[];
  /** Preference pairs without (or with) per-answer labels: they add the pairwise term. */
  pairs: PreferencePair[];
  /** Held out from the head; used for the fusion, the threshold and the reported metrics. */
  validation: LabelledAnswer[];
}

export interface DetectorTrainingOptions {
  /** Hidden units of the head; 0 = linear (the paper's). */
  hidden?: number;
  epochs?: number;
  learningRate?: number;
  /** Weight decay of the head (default 1e-4). */
  l2?: number;
  pairWeight?: number;
  /** Same-question (harmful, harmless) pairs taken per group. */
  pairsPerGroup?: number;
  /** Weight of the answer-only copy of each example (teaches scoring without a question). */
  answerOnlyWeight?: number;
  /** Weight of the plain copy of a jailbreak-wrapped answer (persona labels and refusal turns stripped); 0 turns it off. */
  plainCopyWeight?: number;
  /** Extra weight of a source's harmful answers, by source prefix (e.g. `{ "mm-safetybench": 3 }`). */
  harmfulSourceWeights?: Record<string, number>;
  targetFpr?: number;
  /** The request check's text head (frozen): with it, the request × compliance term is trained (see request-term.ts). */
  requestModel?: RequestTerm["request"];
  /** Weight of each plain copy in the compliance and decline heads' data, relative to the original (default 1). */
  compliancePlainWeight?: number;
  lexicalBuckets?: number;
  maxSpans?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface DetectorTrainingResult {
  model: DetectorModel;
  validation: BinaryMetrics & { bySource: Record<string, { n: number; flagged: number }> };
}

interface Example {
  item: QAItem;
  label: number;
  weight: number;
}

export async function trainDetector(data: DetectorTrainingData, backbone: Backbone, options: DetectorTrainingOptions = {}): Promise<DetectorTrainingResult> {
  const log = options.log ?? (() => {});
  const seed = options.seed ?? 20240108;
  const maxSpans = options.maxSpans ?? 64;
  const answerOnlyWeight = options.answerOnlyWeight ?? 0.5;
  const buckets = options.lexicalBuckets ?? 1 << 17;
  const rng = createRng(seed);

  // Balance the classes so the few harmful answers are not drowned by the many benign ones.
  const pos = data.train.filter((a) => a.label === 1).length;
  const neg = data.train.length - pos;
  if (pos === 0 || neg === 0) throw new Error("training data needs both harmful and harmless answers");
  const classWeight = (label: number): number => (label === 1 ? data.train.length / (2 * pos) : data.train.length / (2 * neg));

  const examples: Example[] = [];
  // Same-question pairs from the labelled sets: the harmful answer must outscore the harmless one.
  const byGroup = new Map<string, { harmful: number[]; harmless: number[] }>();
  const plainCopyWeight = options.plainCopyWeight ?? 1;
  const sourceWeight = (a: LabelledAnswer): number =>
    a.label === 1 ? (Object.entries(options.harmfulSourceWeights ?? {}).find(([prefix]) => a.source.startsWith(prefix))?.[1] ?? 1) : 1;
  for (const a of data.train) {
    const w = classWeight(a.label) * sourceWeight(a);
    const idx = examples.length;
    examples.push({ item: { question: a.question, answer: a.answer }, label: a.label, weight: w });
    if (a.question) examples.push({ item: { answer: a.answer }, label: a.label, weight: w * answerOnlyWeight });
    const plain = plainCopyWeight > 0 && a.source.startsWith("gptfuzz") ? stripPersonas(a.answer) : null;
    if (plain) examples.push({ item: { question: a.question, answer: plain }, label: a.label, weight: w * plainCopyWeight });
    if (!a.group) continue;
    const key = `${a.source}:${a.group}`;
    const g = byGroup.get(key) ?? { harmful: [], harmless: [] };
    (a.label === 1 ? g.harmful : g.harmless).push(idx);
    byGroup.set(key, g);
  }

  const pairs: Array<[number, number]> = [];
  const perGroup = options.pairsPerGroup ?? 40;
  for (const g of byGroup.values()) {
    const all: Array<[number, number]> = [];
    for (const h of g.harmful) for (const s of g.harmless) all.push([h, s]);
    pairs.push(...shuffleInPlace(all, rng).slice(0, perGroup));
  }
  // Preference pairs (hh-rlhf, PKU-SafeRLHF): BCE only where the dataset labels an answer's safety.
  for (const p of data.pairs) {
    const lessIdx = examples.length;
    examples.push({ item: { question: p.question, answer: p.lessSafe }, label: 1, weight: p.lessSafeIsSafe === false ? classWeight(1) : 0 });
    examples.push({ item: { question: p.question, answer: p.safer }, label: 0, weight: p.saferIsSafe === true ? classWeight(0) : 0 });
    pairs.push([lessIdx, lessIdx + 1]);
  }
  log(`training examples: ${examples.length} (${pos} harmful, ${neg} harmless answers + answer-only copies + ${data.pairs.length} preference pairs); pairs: ${pairs.length}`);

  const dim = backbone.dim;
  const embedded = await embedItems(backbone, examples.map((e) => e.item), maxSpans);
  const features = embedded.map((e) => featureVector(e, dim));
  log(`features: ${features.length} × ${features[0]?.length ?? 0}`);

  const head = Head.train(
    { features, labels: examples.map((e) => e.label), weights: examples.map((e) => e.weight), pairs },
    { hidden: options.hidden ?? 0, epochs: options.epochs ?? 12, learningRate: options.learningRate ?? 1e-3, l2: options.l2, pairWeight: options.pairWeight ?? 0.5, seed },
  );
  log("head trained");

  const lexDocs: Uint32Array[] = [];
  const lexLabels: number[] = [];
  const lexWeights: number[] = [];
  for (const a of data.train) {
    lexDocs.push(hashedNgrams(a.answer, buckets));
    lexLabels.push(a.label);
    lexWeights.push(classWeight(a.label));
  }
  const lexical = LexicalModel.train(lexDocs, lexLabels, { buckets, weights: lexWeights, seed });
  log("lexical model trained");

  const compliance = options.requestModel ? await trainAnswerHead(data.train, "complies", backbone, maxSpans, seed, options.compliancePlainWeight ?? 1) : undefined;
  if (compliance) log("compliance head trained");
  // Optional: the harmful-request policy falls back to spotting an opening refusal without it.
  const declinesKnown = data.train.filter((a) => a.declines !== undefined);
  const declines = declinesKnown.some((a) => a.declines) && declinesKnown.some((a) => !a.declines) ? await trainAnswerHead(declinesKnown, "declines", backbone, maxSpans, seed, options.compliancePlainWeight ?? 1) : undefined;
  log(declines ? "decline head trained" : "no decline head (the data has no known declines on both sides)");

  // Fusion, the term's calibration and the threshold on the validation split (answers the heads never saw).
  const requestModel = options.requestModel;
  const risk = requestModel ? (q: string, e: Float32Array): number => requestRisk(requestModel, q, e) : undefined;
  const valEmbedded = await embedItems(backbone, data.validation.map((a) => ({ question: a.question, answer: a.answer })), maxSpans, risk);
  const eLogits = valEmbedded.map((e) => head.logit(featureVector(e, dim)));
  const lLogits = data.validation.map((a) => lexical.logitOfIds(hashedNgrams(a.answer, buckets)));
  const labels = data.validation.map((a) => a.label);
  const fusion = fitFusion(eLogits, lLogits, labels);
  let requestTerm: RequestTerm | undefined;
  if (requestModel && compliance) {
    const withQuestion = valEmbedded.map((e, i) => ({ e, i })).filter(({ e }) => e.requestRisk !== undefined);
    const kLogits = withQuestion.map(({ e }) => requestComplianceLogit(e.requestRisk as number, compliance.logit(answerFeatures(e, dim))));
    const [b, a] = fitLogistic(kLogits.map((k) => [1, k]), withQuestion.map(({ i }) => labels[i] as number), [0, 1]) as [number, number];
    requestTerm = { request: requestModel, compliance, calibration: { a, b } };
    log(`request × compliance term: P = sigmoid(${a.toFixed(3)}·k + ${b.toFixed(3)})`);
  }
  const targetFpr = options.targetFpr ?? 0.01;
  const untuned: DetectorModel = { backbone: backbone.id, maxSpans, head, lexical, fusion, ...(requestTerm ? { requestTerm } : {}), ...(declines ? { declines } : {}), threshold: 0.5, meta: { targetFpr, seed, hidden: options.hidden ?? 0, requestTerm: requestTerm !== undefined } };
  // The threshold is chosen on the scores the shipped detector gives (every view, the noisy-OR).
  const verdicts = await new EmbeddedDetector(untuned, backbone).score(data.validation.map((a) => ({ question: a.question, answer: a.answer })));
  const scores = verdicts.map((v) => v.score);
  const benignRequest = data.validation.map((a) => a.label === 0 && a.complies === true);
  const threshold = chooseThreshold(scores, labels, benignRequest, targetFpr);
  const contentFloor = quantile(verdicts.filter((_, i) => benignRequest[i]).map((v) => v.signals.content as number), CONTENT_FLOOR_QUANTILE);
  const metrics = binaryMetrics(scores, labels, threshold);
  const bySource: Record<string, { n: number; flagged: number }> = {};
  data.validation.forEach((a, i) => {
    const s = (bySource[a.source] ??= { n: 0, flagged: 0 });
    s.n++;
    if ((scores[i] as number) >= threshold) s.flagged++;
  });
  log(`validation: recall ${metrics.recall.toFixed(3)} at FPR ${metrics.fpr.toFixed(4)} (threshold ${threshold.toFixed(4)}), AUROC ${metrics.auroc.toFixed(4)}`);
  log(`content floor of the harmful-request policy: ${contentFloor.toFixed(4)} (${CONTENT_FLOOR_QUANTILE * 100}th percentile of benign validation answers)`);
  const screen = await chooseScreenRule({ ...untuned, threshold }, backbone, data.validation, scores);
  log(`fast path: answers scoring below ${screen.skipBelow.toFixed(4)} without their spans keep that score (questions with request risk below ${screen.maxRequestRisk})`);

  return {
    model: { ...untuned, threshold, contentFloor, screen },
    validation: { ...metrics, bySource },
  };
}

/**
 * A head on the answer alone (blind to the question, so it learns the act, not the topics), trained on
 * the answers whose `complies` / `declines` is known, with jailbreak answers also in plain form:
 * - compliance (the request term): does the answer do what a request asked; on harmful requests the
 *   judge's harmful label stands for "it complied";
 * - decline (the harmful-request policy): does the answer refuse or deflect.
 */
async function trainAnswerHead(answers: readonly LabelledAnswer[], target: "complies" | "declines", backbone: Backbone, maxSpans: number, seed: number, plainWeight: number): Promise<Head> {
  const items = answerHeadExamples(answers, target, plainWeight);
  const pos = items.filter((x) => x.y === 1).length;
  if (pos === 0 || pos === items.length) throw new Error(`the ${target} head needs answers on both sides`);
  const embedded = await embedItems(backbone, items.map((x) => ({ answer: x.answer })), maxSpans);
  return Head.train(
    {
      features: embedded.map((e) => answerFeatures(e, backbone.dim)),
      labels: items.map((x) => x.y),
      weights: items.map((x) => x.weight * (x.y ? items.length / (2 * pos) : items.length / (2 * (items.length - pos)))),
    },
    { epochs: 8, seed },
  );
}

/**
 * The answer head's examples: each answer whose `target` is known, and the plain form of a jailbreak
 * answer (persona labels and refusal turns stripped) at `plainWeight` — except a declining answer's: it
 * has lost the refusal that made it one, and taught as declining it taught the head that a persona's
 * insults decline.
 */
export function answerHeadExamples(answers: readonly LabelledAnswer[], target: "complies" | "declines", plainWeight: number): Array<{ answer: string; y: number; weight: number }> {
  const items: Array<{ answer: string; y: number; weight: number }> = [];
  for (const a of answers) {
    const known = a[target];
    if (known === undefined) continue;
    items.push({ answer: a.answer, y: known ? 1 : 0, weight: 1 });
    const plain = plainWeight > 0 && !(target === "declines" && known) ? stripPersonas(a.answer) : null;
    if (plain) items.push({ answer: plain, y: known ? 1 : 0, weight: plainWeight });
  }
  return items;
}

/**
 * Where the content floor sits among benign answers (the 90th percentile): the harmful-request policy
 * then acts on at most ~10 % of harmless answers whose request the request check wrongly flags, and on
 * 97 % of the validation's harmful MM-SafetyBench answers.
 */
const CONTENT_FLOOR_QUANTILE = 0.9;

/** Answers to questions at least this likely to be harmful requests always get the full analysis. */
const SCREEN_MAX_REQUEST_RISK = 0.5;
/** The fast path's cut sits this factor below the lowest screen score of any answer the full detector flags. */
const SCREEN_MARGIN = 0.25;

/**
 * The fast path's rule (see `ScreenRule`): scored without spans, every validation answer the full
 * detector flags must still be sent on to the full analysis, with a margin of 4× in score for answers
 * the validation split does not hold.
 */
async function chooseScreenRule(model: DetectorModel, backbone: Backbone, validation: readonly LabelledAnswer[], fullScores: readonly number[]): Promise<ScreenRule> {
  // skipBelow 1 puts every eligible answer on the fast path, so its verdict is the screen's score.
  const probe = new EmbeddedDetector({ ...model, screen: { skipBelow: 1, maxRequestRisk: SCREEN_MAX_REQUEST_RISK } }, backbone);
  const screened = await probe.score(validation.map((a) => ({ question: a.question, answer: a.answer })));
  let lowest = model.threshold;
  screened.forEach((v, i) => {
    if (v.signals.fastPath && (fullScores[i] as number) >= model.threshold) lowest = Math.min(lowest, v.score);
  });
  return { skipBelow: lowest * SCREEN_MARGIN, maxRequestRisk: SCREEN_MAX_REQUEST_RISK };
}

function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** z-scoring statistics of one component logit. */
function stats(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length) || 1;
  return { mean, std };
}

/** Platt-style logistic regression on the two z-scored content logits: the calibrated fusion. */
export function fitFusion(eLogits: number[], lLogits: number[], labels: number[]): Fusion {
  const es = stats(eLogits);
  const ls = stats(lLogits);
  const rows = eLogits.map((e, i) => [1, (e - es.mean) / es.std, ((lLogits[i] as number) - ls.mean) / ls.std]);
  const w = fitLogistic(rows, labels, [0, 1, 1]);
  return { bias: w[0]!, embedding: { ...es, weight: w[1]! }, lexical: { ...ls, weight: w[2]! } };
}

/**
 * The shipped threshold: the lowest threshold that flags at most `targetFpr` of the validation answers
 * to benign requests (helpful, harmless answers: the false positives that cost users), raised only
 * where that buys F1 on the rest of validation (answers to harmful requests, where harmful and
 * harmless answers must be told apart; F1 there does not depend on how many benign answers the split holds).
 */
export function chooseThreshold(scores: readonly number[], labels: readonly number[], benignRequest: readonly boolean[], targetFpr: number): number {
  const floor = thresholdForFpr(scores.filter((_, i) => benignRequest[i]), targetFpr);
  const contested = scores.map((_, i) => i).filter((i) => !benignRequest[i]);
  const positives = contested.filter((i) => labels[i] === 1).length;
  // Sweep thresholds from the top: flagging everything at or above the current score.
  const order = contested.sort((a, b) => (scores[b] as number) - (scores[a] as number));
  let tp = 0;
  let fp = 0;
  let best = { f1: -1, threshold: floor };
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    if (labels[i] === 1) tp++;
    else fp++;
    const t = scores[i] as number;
    if (t < floor) break;
    if (k + 1 < order.length && scores[order[k + 1] as number] === t) continue; // ties flag together
    const f1 = tp ? (2 * tp) / (2 * tp + fp + (positives - tp)) : 0;
    if (f1 > best.f1) best = { f1, threshold: t };
  }
  return best.threshold;
}

/** Ridge logistic regression by Newton's method with backtracking (a full step overshoots on nearly separable data). */
export function fitLogistic(rows: readonly number[][], labels: readonly number[], start: number[]): number[] {
  const n = start.length;
  const ridge = 1e-3;
  const dot = (v: readonly number[], x: readonly number[]): number => v.reduce((a, vi, j) => a + vi * (x[j] as number), 0);
  const loss = (v: readonly number[]): number =>
    rows.reduce((acc, x, i) => {
      const z = dot(v, x);
      // log(1 + e^z) - y·z, computed stably.
      return acc + Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z))) - (labels[i] as number) * z;
    }, 0) +
    (ridge / 2) * v.reduce((a, vi) => a + vi * vi, 0);
  let w = [...start];
  for (let iter = 0; iter < 50; iter++) {
    const g = w.map((wi) => ridge * wi);
    const H = w.map((_, a) => w.map((__, b) => (a === b ? ridge : 0)));
    rows.forEach((x, i) => {
      const p = sigmoid(dot(w, x));
      const r = p - (labels[i] as number);
      const s = p * (1 - p);
      for (let a = 0; a < n; a++) {
        g[a]! += r * x[a]!;
        for (let b = 0; b < n; b++) H[a]![b]! += s * x[a]! * x[b]!;
      }
    });
    const step = solve(H, g);
    const before = loss(w);
    let t = 1;
    let next = w.map((v, a) => v - t * step[a]!);
    while (loss(next) > before && t > 1e-6) {
      t /= 2;
      next = w.map((v, a) => v - t * step[a]!);
    }
    w = next;
    if (t * Math.hypot(...step) < 1e-9) break;
  }
  return w;
}

/** Gaussian elimination with partial pivoting (small dense systems). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const m = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[p]![c]!)) p = r;
    [m[c], m[p]] = [m[p]!, m[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}
