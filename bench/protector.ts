/**
 * Pipeline overhead: protect() on an unflagged answer versus the detector alone on the same answer.
 * The two sides run on separate model instances (separate embedding memos), each answer once per
 * side, so neither is served from the other's work; the overhead is the median of the per-answer
 * differences. Run: node --import tsx bench/protector.ts [count]
 */
import { performance } from "node:perf_hooks";
import { createDefaultProtector, loadDefaultModels } from "../src/defaults.js";
import { benchTexts, percentile } from "./texts.js";

const count = Number(process.argv[2] ?? 100);
const { detector } = await loadDefaultModels();
const protector = await createDefaultProtector();
const { long } = await benchTexts(count);
const detectorMs: number[] = [];
const protectMs: number[] = [];
let unflagged = 0;
const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const s = performance.now();
  const out = await f();
  return [out, performance.now() - s];
};
for (const [i, item] of long.entries()) {
  // Alternate which side runs first, so warm caches and timer drift favour neither.
  let verdictD: Awaited<ReturnType<typeof detector.score>>;
  let r: Awaited<ReturnType<typeof protector.protect>>;
  let d: number;
  let p: number;
  if (i % 2 === 0) {
    [verdictD, d] = await timed(() => detector.score([item]));
    [r, p] = await timed(() => protector.protect(item));
  } else {
    [r, p] = await timed(() => protector.protect(item));
    [verdictD, d] = await timed(() => detector.score([item]));
  }
  const verdict = verdictD[0];
  // Only answers that pass (or only get a policy disclaimer) measure the overhead on the common path.
  if (verdict?.flagged || (r.action !== "pass" && r.action !== "repaired")) continue;
  unflagged++;
  detectorMs.push(d);
  protectMs.push(p);
}
const d50 = percentile(detectorMs, 50);
const p50 = percentile(protectMs, 50);
console.log(`${unflagged} unflagged ~300-token answers (of ${long.length})`);
console.log(`detector alone: p50 ${d50.toFixed(2)} ms, p95 ${percentile(detectorMs, 95).toFixed(2)} ms`);
console.log(`protect():      p50 ${p50.toFixed(2)} ms, p95 ${percentile(protectMs, 95).toFixed(2)} ms`);
// The difference of two ~25 ms medians swings by a few ms on a busy 2-core machine; the median of the
// per-answer differences (same answer, back to back) is the steadier measure.
const paired = percentile(protectMs.map((x, i) => x - (detectorMs[i] as number)), 50);
console.log(`pipeline overhead p50: ${paired.toFixed(2)} ms per answer, paired (difference of the p50s: ${(p50 - d50).toFixed(2)} ms); request check + category head + policy + bookkeeping, reusing the detector's embeddings`);
await Promise.all([detector.close(), protector.close()]);
