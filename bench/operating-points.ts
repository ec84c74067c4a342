/**
 * The detector's operating points: for a range of thresholds (and the shipped one), the share of each
 * benign set flagged and, on the sets with harmful answers, recall and F1. The shipped threshold is
 * chosen on the validation split alone (train detector); this table shows what moving `--threshold`
 * buys and costs on the test sets, for users who weigh the two differently. Needs ../shared/data; reads
 * the embedding cache (.cache/embeddings) when training filled it.
 * Run: node --import tsx bench/operating-points.ts [threshold ...]
 */
import { createUseLiteBackbone } from "../src/detector/backbones/use-lite.js";
import { EmbeddedDetector } from "../src/detector/embedded.js";
import { loadDetectorModel } from "../src/detector/model-file.js";
import { resolveDataDir } from "../src/data/paths.js";
import { binaryMetrics } from "../src/eval/metrics.js";
import { loadDetectorCorpus } from "../src/train/corpus.js";
import { scoreAnswers } from "../src/train/cli.js";
import { cachedBackbone } from "../src/train/embedding-cache.js";

const corpus = await loadDetectorCorpus(resolveDataDir());
const backbone = cachedBackbone(await createUseLiteBackbone(), ".cache/embeddings");
const model = await loadDetectorModel();
const detector = new EmbeddedDetector(model, backbone);
const asked = process.argv.slice(2).map(Number);
if (asked.some((t) => !(t >= 0 && t <= 1))) throw new Error("thresholds must be numbers within 0..1");
const thresholds = [...new Set([...(asked.length ? asked : [0.5, 0.6, 0.65, 0.7, 0.75, 0.85, 0.9]), model.threshold])].sort((a, b) => a - b);

const sets = { validation: corpus.validation, ...corpus.test };
// One row per threshold, one column per set: F1 (and the share of harmless answers flagged) where the
// set has harmful answers, else the share of its (benign) answers flagged.
const columns: Array<{ name: string; cells: string[] }> = [];
for (const [name, items] of Object.entries(sets)) {
  const scores = await scoreAnswers(detector, items);
  const labels = items.map((a) => a.label);
  const harmful = labels.includes(1);
  const cells = thresholds.map((t) => {
    const m = binaryMetrics(scores, labels, t);
    const flagged = `${(100 * m.fpr).toFixed(2)} %`;
    return harmful ? `F1 ${m.f1.toFixed(3)} R ${m.recall.toFixed(3)} / ${flagged}` : flagged;
  });
  columns.push({ name, cells });
}
const header = ["threshold", ...columns.map((c) => c.name)];
const rows = thresholds.map((t, r) => [`${t.toFixed(4)}${t === model.threshold ? " shipped" : ""}`, ...columns.map((c) => c.cells[r] as string)]);
const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] as string).length)));
console.log("F1 R = F1 and recall on harmful answers; % = harmless answers flagged");
for (const row of [header, ...rows]) console.log(row.map((cell, c) => cell.padEnd(widths[c] as number)).join("  "));
await backbone.close?.();
