import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { EmbeddedDetector } from "../detector/embedded.js";
import { serialiseDetectorModel } from "../detector/model-file.js";
import { resolveDataDir } from "../data/paths.js";
import { binaryMetrics } from "../eval/metrics.js";
import type { LabelledAnswer } from "../data/types.js";
import type { HarmDetector } from "../detector/harm-detector.js";
import { loadDetectorCorpus } from "./corpus.js";
import { trainDetector } from "./detector.js";
import { trainingBackbone } from "./embedding-cache.js";
import { loadRequestModel } from "../request/model-file.js";
import { trainCategoryHead } from "./categories.js";

const log = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

export interface TestSetReport {
  n: number;
  harmful: number;
  flagged: number;
  flaggedRate: number;
  f1?: number;
  precision?: number;
  recall?: number;
  auroc?: number;
  fpr?: number;
}

/** The detector's score of each answer, in batches of 256 (the sets run to thousands). */
export async function scoreAnswers(detector: HarmDetector, items: readonly LabelledAnswer[]): Promise<number[]> {
  const scores: number[] = [];
  for (let i = 0; i < items.length; i += 256) {
    const v = await detector.score(items.slice(i, i + 256).map((a) => ({ question: a.question, answer: a.answer })));
    scores.push(...v.map((x) => x.score));
  }
  return scores;
}

/** Scores each named test set with the detector and summarises it. */
export async function evaluateTestSets(detector: HarmDetector, sets: Record<string, LabelledAnswer[]>): Promise<Record<string, TestSetReport>> {
  const out: Record<string, TestSetReport> = {};
  for (const [name, items] of Object.entries(sets)) {
    const scores = await scoreAnswers(detector, items);
    const labels = items.map((a) => a.label);
    const m = binaryMetrics(scores, labels, detector.threshold);
    const flagged = scores.filter((s) => s >= detector.threshold).length;
    const r: TestSetReport = { n: items.length, harmful: m.positives, flagged, flaggedRate: flagged / Math.max(1, items.length) };
    if (m.positives > 0 && m.positives < items.length) Object.assign(r, { f1: m.f1, precision: m.precision, recall: m.recall, auroc: m.auroc, fpr: m.fpr });
    else if (m.positives > 0) Object.assign(r, { recall: m.recall });
    out[name] = r;
    log(`test ${name}: ${JSON.stringify(r)}`);
  }
  return out;
}

export async function runTrainDetector(o: {
  data?: string;
  out: string;
  hidden: number;
  targetFpr: number;
  cache: string;
  report?: string;
  /** The request model whose text head joins the detector (the request × compliance term); false: none. */
  requestModel: string | false;
  /** PKU-SafeRLHF / BeaverTails files to train on as well. */
  pku?: string[];
  beavertails?: string[];
}): Promise<number> {
  const dataDir = resolveDataDir(o.data);
  log(`loading datasets from ${dataDir}`);
  const corpus = await loadDetectorCorpus(dataDir, { pku: o.pku ?? [], beaverTails: o.beavertails ?? [] });
  log(`train ${corpus.train.length}, validation ${corpus.validation.length}, pairs ${corpus.pairs.length}, test sets: ${Object.entries(corpus.test).map(([k, v]) => `${k} ${v.length}`).join(", ")}`);
  const request = o.requestModel === false ? undefined : await loadRequestModel(o.requestModel);
  if (request) log(`request × compliance term on, with the request model ${o.requestModel}`);
  const backbone = await trainingBackbone(o.cache, log);
  try {
    if (request && request.backbone !== backbone.id) throw new Error(`the request model was trained on backbone "${request.backbone}", the detector trains on "${backbone.id}"`);
    const requestModel = request ? { head: request.head, lexical: request.lexical, fusion: request.fusion, calibration: request.calibration } : undefined;
    const { model, validation } = await trainDetector(corpus, backbone, { hidden: o.hidden, targetFpr: o.targetFpr, requestModel, log });
    const test = await evaluateTestSets(new EmbeddedDetector(model, backbone), corpus.test);
    model.meta = {
      ...model.meta,
      data: { train: countBySource(corpus.train), validation: countBySource(corpus.validation), preferencePairs: corpus.pairs.length },
      validation,
      test,
    };
    const text = serialiseDetectorModel(model);
    await mkdir(dirname(o.out), { recursive: true });
    await writeFile(o.out, text);
    log(`wrote ${o.out} (sha256 ${createHash("sha256").update(text).digest("hex").slice(0, 16)})`);
    if (o.report) await writeFile(o.report, `${JSON.stringify({ validation, test }, null, 2)}\n`);
    return 0;
  } finally {
    await backbone.close?.();
  }
}

export async function runTrainCategories(o: { data?: string; out: string; cache: string }): Promise<number> {
  const dataDir = resolveDataDir(o.data);
  const backbone = await trainingBackbone(o.cache, log);
  try {
    const head = await trainCategoryHead(dataDir, backbone, log);
    await mkdir(dirname(o.out), { recursive: true });
    await head.save(o.out);
    log(`wrote ${o.out} (sha256 ${createHash("sha256").update(await readFile(o.out)).digest("hex").slice(0, 16)})`);
    return 0;
  } finally {
    await backbone.close?.();
  }
}

function countBySource(items: readonly LabelledAnswer[]): Record<string, { harmful: number; harmless: number }> {
  const out: Record<string, { harmful: number; harmless: number }> = {};
  for (const a of items) {
    const key = a.source.startsWith("alpaca-eval") ? "alpaca-eval" : a.source;
    const c = (out[key] ??= { harmful: 0, harmless: 0 });
    if (a.label === 1) c.harmful++;
    else c.harmless++;
  }
  return out;
}
