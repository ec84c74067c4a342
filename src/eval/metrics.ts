/** Binary classification metrics for harm scores (label 1 = harmful). */

export interface BinaryMetrics {
  n: number;
  positives: number;
  threshold: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** False-positive rate at the threshold: harmless answers flagged / harmless answers. */
  fpr: number;
  auroc: number;
}

/**
 * Metrics at `threshold` (AUROC from the scores alone). `flaggedOverride` gives the decisions when they
 * are not `score >= threshold` alone (e.g. a request an LLM cleared despite its score).
 */
export function binaryMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number, flaggedOverride?: ArrayLike<boolean>): BinaryMetrics {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  for (let i = 0; i < scores.length; i++) {
    const flagged = flaggedOverride ? flaggedOverride[i] === true : (scores[i] as number) >= threshold;
    const harmful = labels[i] === 1;
    if (flagged && harmful) tp++;
    else if (flagged) fp++;
    else if (harmful) fn++;
    else tn++;
  }
  const precision = tp + fp ? tp / (tp + fp) : 0;
  const recall = tp + fn ? tp / (tp + fn) : 0;
  return {
    n: scores.length,
    positives: tp + fn,
    threshold,
    accuracy: scores.length ? (tp + tn) / scores.length : 0,
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
    fpr: fp + tn ? fp / (fp + tn) : 0,
    auroc: auroc(scores, labels),
  };
}

/** Area under the ROC curve (Mann–Whitney U with average ranks for ties); NaN without both classes. */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let rankSumPos = 0;
  let pos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1] as number] === scores[idx[i] as number]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[idx[k] as number] === 1) {
      rankSumPos += avgRank;
      pos++;
    }
    i = j + 1;
  }
  const neg = scores.length - pos;
  if (pos === 0 || neg === 0) return Number.NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/**
 * The lowest threshold whose false-positive rate on the harmless scores is at most `targetFpr`
 * (flagged = score >= threshold). Returns a value just above the k-th highest harmless score.
 */
export function thresholdForFpr(harmlessScores: readonly number[], targetFpr: number): number {
  if (harmlessScores.length === 0) throw new Error("calibration needs harmless scores");
  const sorted = [...harmlessScores].sort((a, b) => b - a);
  const allowed = Math.floor(targetFpr * sorted.length);
  const boundary = sorted[allowed] as number;
  // Flag strictly above the first harmless score we must not flag.
  return nextUp(boundary);
}

function nextUp(x: number): number {
  if (x >= 1) return 1;
  const buf = new Float64Array([x]);
  const bits = new BigInt64Array(buf.buffer);
  bits[0] = (bits[0] as bigint) + (x >= 0 ? 1n : -1n);
  return buf[0] as number;
}

/** ROC curve points (fpr, tpr), thinned to at most `maxPoints`, for reports. */
export function rocCurve(scores: ArrayLike<number>, labels: ArrayLike<number>, maxPoints = 200): Array<{ fpr: number; tpr: number; threshold: number }> {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number));
  let pos = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === 1) pos++;
  const neg = scores.length - pos;
  const points: Array<{ fpr: number; tpr: number; threshold: number }> = [{ fpr: 0, tpr: 0, threshold: Infinity }];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < idx.length; k++) {
    const i = idx[k] as number;
    if (labels[i] === 1) tp++;
    else fp++;
    const next = idx[k + 1];
    if (next === undefined || scores[next] !== scores[i]) points.push({ fpr: neg ? fp / neg : 0, tpr: pos ? tp / pos : 0, threshold: scores[i] as number });
  }
  if (points.length <= maxPoints) return points;
  const step = (points.length - 1) / (maxPoints - 1);
  return Array.from({ length: maxPoints }, (_, k) => points[Math.round(k * step)] as { fpr: number; tpr: number; threshold: number });
}
