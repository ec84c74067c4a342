/**
 * What the detector's fast path takes and whether it changes a flag: on each of the detector's
 * validation and test sets, the share of answers scored from their whole-answer vector alone, and the
 * flags that differ from the full analysis (fast path off); then the same for the harmful test answers
 * hidden behind a long benign preamble (the whole-answer vector reads only the first 128 pieces, so
 * this is the case the fast path could get wrong); and, on sets with both labels, AUROC with and without
 * it (it keeps flags, but moves scores below the threshold). Needs ../shared/data; reads the embedding cache
 * (.cache/embeddings) when training filled it. Run: node --import tsx bench/fast-path.ts
 */
import { createUseLiteBackbone } from "../src/detector/backbones/use-lite.js";
import { EmbeddedDetector } from "../src/detector/embedded.js";
import { loadDetectorModel } from "../src/detector/model-file.js";
import { resolveDataDir } from "../src/data/paths.js";
import { auroc } from "../src/eval/metrics.js";
import { loadDetectorCorpus } from "../src/train/corpus.js";
import { cachedBackbone } from "../src/train/embedding-cache.js";

const corpus = await loadDetectorCorpus(resolveDataDir());
const backbone = cachedBackbone(await createUseLiteBackbone(), ".cache/embeddings");
const model = await loadDetectorModel();
const full = new EmbeddedDetector(model, backbone, { fastPath: false });
const fast = new EmbeddedDetector(model, backbone);
console.log(`fast path: skipBelow ${model.screen?.skipBelow.toFixed(4) ?? "none"}, request risk below ${model.screen?.maxRequestRisk ?? "-"}`);
const preamble =
  "Kyoto is at its best in spring and autumn, when the maples and cherry trees turn the hills red and pink. Spend the first day in Higashiyama: walk from Kiyomizu-dera down the old lanes of Sannenzaka and Ninenzaka to Gion, stopping for matcha and sweets along the way. On the second day, take an early train to Arashiyama for the bamboo grove before the crowds arrive, then visit Tenryu-ji and its garden. Reserve the third day for Fushimi Inari, starting at dawn, and finish with dinner in Pontocho along the river.\n\n";
const padded = (items: typeof corpus.validation, question: "own" | "none") =>
  items.filter((a) => a.label === 1).map((a) => ({ ...a, ...(question === "none" ? { question: undefined } : {}), answer: preamble + a.answer }));
const sets = {
  validation: corpus.validation,
  ...corpus.test,
  "gptfuzz-eval harmful, padded": padded(corpus.test["gptfuzz-eval"] ?? [], "own"),
  "mm-safetybench harmful, padded": padded(corpus.test["mm-safetybench-harmful-test"] ?? [], "own"),
  "… and no question": padded(corpus.test["mm-safetybench-harmful-test"] ?? [], "none"),
};
for (const [name, items] of Object.entries(sets)) {
  let taken = 0;
  let lost = 0;
  let gained = 0;
  const [fullScores, fastScores]: [number[], number[]] = [[], []];
  for (let i = 0; i < items.length; i += 256) {
    const part = items.slice(i, i + 256).map((a) => ({ question: a.question, answer: a.answer }));
    const [a, b] = [await full.score(part), await fast.score(part)];
    part.forEach((_, k) => {
      if (b[k]?.signals.fastPath) taken++;
      if (a[k]?.flagged && !b[k]?.flagged) lost++;
      if (!a[k]?.flagged && b[k]?.flagged) gained++;
    });
    fullScores.push(...a.map((v) => v.score));
    fastScores.push(...b.map((v) => v.score));
  }
  const labels = items.map((a) => a.label);
  const ranked = labels.includes(0) && labels.includes(1) ? `  AUROC ${auroc(fastScores, labels).toFixed(3)} (off: ${auroc(fullScores, labels).toFixed(3)})` : "";
  console.log(`${name.padEnd(30)} n ${String(items.length).padStart(5)}  fast path ${((100 * taken) / items.length).toFixed(0).padStart(3)} %  flags lost ${lost}, gained ${gained}${ranked}`);
}
await backbone.close?.();
