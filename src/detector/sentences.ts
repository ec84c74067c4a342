import type { SpanScore } from "../types.js";

/** A span of an answer: [start, end) character offsets and the text. */
export interface TextSpan {
  start: number;
  end: number;
  text: string;
}

const segmenter = new Intl.Segmenter("en", { granularity: "sentence" });
/** Fragments shorter than this ("1.", "Step 2:") are merged into the next span: alone they say nothing. */
const MIN_SPAN_CHARS = 24;

/**
 * Splits an answer into sentences and list steps (each line is split further into sentences).
 * When there are more than `maxSpans`, neighbours are merged into chunks so a huge answer still
 * gets covered end to end by a bounded number of spans.
 */
export function splitSpans(answer: string, maxSpans = 64): TextSpan[] {
  const raw = sentenceSpans(answer);
  const merged: TextSpan[] = [];
  let pending: TextSpan | null = null;
  for (const span of raw) {
    const cur: TextSpan = pending ? join(answer, pending, span) : span;
    if (cur.text.length < MIN_SPAN_CHARS) pending = cur;
    else {
      merged.push(cur);
      pending = null;
    }
  }
  if (pending) {
    const last = merged.pop();
    merged.push(last ? join(answer, last, pending) : pending);
  }
  if (merged.length <= maxSpans) return merged;
  const per = Math.ceil(merged.length / maxSpans);
  const chunks: TextSpan[] = [];
  for (let i = 0; i < merged.length; i += per) {
    const group = merged.slice(i, i + per);
    chunks.push(group.reduce((a, b) => join(answer, a, b)));
  }
  return chunks;
}

/** Every sentence of every line, as written (no merging of short fragments). */
export function sentenceSpans(answer: string): TextSpan[] {
  const out: TextSpan[] = [];
  const lineRe = /[^\n]+/g;
  for (let m = lineRe.exec(answer); m; m = lineRe.exec(answer)) {
    const lineStart = m.index;
    for (const seg of segmenter.segment(m[0])) {
      const text = seg.segment.trim();
      if (!text) continue;
      const start = lineStart + seg.index + seg.segment.indexOf(text);
      out.push({ start, end: start + text.length, text });
    }
  }
  return out;
}

function join(answer: string, a: TextSpan, b: TextSpan): TextSpan {
  return { start: a.start, end: b.end, text: answer.slice(a.start, b.end) };
}

/** The `k` highest-scoring spans, highest first. */
export function topSpans(spans: readonly SpanScore[], k = 3): SpanScore[] {
  return [...spans].sort((a, b) => b.score - a.score).slice(0, k);
}
