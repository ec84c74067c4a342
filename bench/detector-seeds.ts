/**
 * How much of the detector's test figures is the training seed: `train detector` retrained with other
 * seeds (the seed orders the head's minibatches, samples its same-question pairs and trains the lexical,
 * compliance and decline heads), each with its own validation-chosen threshold, scored on the test sets
 * and the plain-answer probe. The shipped seed is 20240108. Needs ../shared/data; ~3 min a seed once the
 * embedding cache (.cache/embeddings) is warm.
 * Run: node --import tsx bench/detector-seeds.ts [seed ...]
 */
import { fileURLToPath } from "node:url";
import { labelledLineSchema } from "../src/cli/commands.js";
import { readInputLines } from "../src/cli/io.js";
import { EmbeddedDetector } from "../src/detector/embedded.js";
import { resolveDataDir } from "../src/data/paths.js";
import type { LabelledAnswer } from "../src/data/types.js";
import { loadRequestModel } from "../src/request/model-file.js";
import { evaluateTestSets } from "../src/train/cli.js";
import { loadDetectorCorpus } from "../src/train/corpus.js";
import { trainDetector } from "../src/train/detector.js";
import { trainingBackbone } from "../src/train/embedding-cache.js";

const seeds = process.argv.slice(2).map(Number);
if (seeds.some((s) => !Number.isInteger(s))) throw new Error("seeds must be integers");
const corpus = await loadDetectorCorpus(resolveDataDir());
const { lines: probeLines } = await readInputLines(fileURLToPath(new URL("../test/fixtures/plain-probe.jsonl", import.meta.url)), labelledLineSchema);
const probe: LabelledAnswer[] = probeLines.map(({ value }) => ({ source: "plain-probe", ...value }));
const request = await loadRequestModel();
const requestModel = { head: request.head, lexical: request.lexical, fusion: request.fusion, calibration: request.calibration };
const backbone = await trainingBackbone(".cache/embeddings", () => {});
const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
console.log("seed       threshold  val F1  GPTFuzz F1  AUROC   AlpacaEval unseen  Vicuna-80  MM held-out AUROC  probe recall / benign flagged");
try {
  for (const seed of seeds.length ? seeds : [20240108, 1, 2, 3]) {
    const { model, validation } = await trainDetector(corpus, backbone, { requestModel, seed });
    const t = await evaluateTestSets(new EmbeddedDetector(model, backbone), { ...corpus.test, probe });
    const g = t["gptfuzz-eval"];
    const p = t.probe;
    if (!g?.f1 || !p?.recall) throw new Error("a test set is missing");
    const probeBenignFlagged = p.flagged - Math.round(p.recall * p.harmful);
    console.log(
      [
        String(seed).padEnd(10),
        model.threshold.toFixed(3).padEnd(10),
        validation.f1.toFixed(3).padEnd(7),
        g.f1.toFixed(3).padEnd(11),
        (g.auroc ?? 0).toFixed(3).padEnd(7),
        pct(t["alpaca-eval-unseen-models"]?.flaggedRate ?? NaN).padEnd(18),
        pct(t["vicuna-80"]?.flaggedRate ?? NaN).padEnd(10),
        (t["mm-safetybench-harmful-test"]?.auroc ?? NaN).toFixed(3).padEnd(18),
        `${p.recall.toFixed(2)} / ${probeBenignFlagged} of ${p.n - p.harmful}`,
      ].join(" "),
    );
  }
} finally {
  await backbone.close?.();
}
