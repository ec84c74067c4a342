/**
 * Detector speed: answers/s in batches, p50/p95 latency of one answer scored alone, peak RSS,
 * for short (~50 tokens) and long (~300 tokens) answers, and how many took the fast path. Run:
 * node --import tsx bench/detector.ts [count] [--workers N] [--no-fast-path]
 * (USE-lite's worker threads: default one per core, 0 runs the model on the main thread; the inputs are
 * benign AlpacaEval answers, so most take the fast path: --no-fast-path gives the cost of reading every span).
 */
import { performance } from "node:perf_hooks";
import { createUseLiteBackbone } from "../src/detector/backbones/use-lite.js";
import { loadDefaultModels } from "../src/defaults.js";
import { benchTexts, peakRssMb, percentile } from "./texts.js";

const args = process.argv.slice(2);
const workersAt = args.indexOf("--workers");
const workers = workersAt >= 0 ? Number(args[workersAt + 1]) : undefined;
const count = Number(args.find((a, i) => /^\d+$/.test(a) && i !== workersAt + 1) ?? 256);
const fastPath = !args.includes("--no-fast-path");
const t0 = performance.now();
const { detector } = await loadDefaultModels({ backbone: await createUseLiteBackbone({ workers }), fastPath });
const loadMs = performance.now() - t0;
const texts = await benchTexts(count);
const fresh = await benchTexts(64, count);
await detector.score(texts.short.slice(0, 8)); // warm-up

const rows: string[] = [];
for (const [name, items] of Object.entries(texts)) {
  const start = performance.now();
  let fast = 0;
  for (let i = 0; i < items.length; i += 64) fast += (await detector.score(items.slice(i, i + 64))).filter((v) => v.signals.fastPath).length;
  const batchPerSec = items.length / ((performance.now() - start) / 1000);
  // Latency on answers the batch phase never saw: the embedding memo must not serve them.
  const lat: number[] = [];
  for (const item of fresh[name as keyof typeof fresh].slice(0, 64)) {
    const s = performance.now();
    await detector.score([item]);
    lat.push(performance.now() - s);
  }
  rows.push(`${name.padEnd(6)} (${items.length} answers, ~${Math.round(items[0]!.answer.length / 4)} tokens): ${batchPerSec.toFixed(1)} answers/s batched (${Math.round((100 * fast) / items.length)} % on the fast path); one at a time p50 ${percentile(lat, 50).toFixed(1)} ms, p95 ${percentile(lat, 95).toFixed(1)} ms`);
}
console.log(`USE-lite int8, ${workers ?? "default"} workers, fast path ${fastPath ? "on" : "off"}; model load ${loadMs.toFixed(0)} ms`);
for (const r of rows) console.log(r);
console.log(`peak RSS ${peakRssMb().toFixed(0)} MB`);
await detector.close();
