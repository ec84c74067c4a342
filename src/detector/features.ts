import type { QAItem } from "../types.js";
import type { Backbone } from "./backbones/backbone.js";
import { promptLead } from "../request/request-checker.js";
import { splitSpans, type TextSpan } from "./sentences.js";

/**
 * Frozen-backbone features of a (question, answer) pair, the same at training and inference:
 *   [ e(answer), mean_s e(span), max_s e(span), e(question), e(question) ⊙ e(answer), noQuestion ]
 * The whole-answer vector keeps context; pooled span vectors keep the few harmful sentences of a
 * long answer from being diluted; the question gives the request as context. With no question the
 * question block is zero and `noQuestion` is 1 (training includes answer-only copies, so this is scored correctly).
 */
export interface EmbeddedItem {
  answer: Float32Array;
  question: Float32Array | null;
  spans: TextSpan[];
  spanVectors: Float32Array[];
  /**
   * P(the question is a harmful request), when the detector has a request term and there is a question:
   * the higher of the whole question's and its first sentence's (the request check's `lead` view), so
   * junk appended to a request does not dilute it.
   */
  requestRisk?: number;
}

export function featureDim(dim: number): number {
  return dim * 5 + 1;
}

/**
 * Embeds every distinct text of the batch once (answers, questions, their lead sentences, spans) in one
 * backbone call. `maxSpans` 0 leaves the spans out (the detector's fast path; `withSpans` adds them later).
 */
export async function embedItems(
  backbone: Backbone,
  items: readonly QAItem[],
  maxSpans = 64,
  requestRisk?: (question: string, embedding: Float32Array) => number,
): Promise<EmbeddedItem[]> {
  const index = new Map<string, number>();
  const texts: string[] = [];
  const idOf = (text: string): number => {
    let id = index.get(text);
    if (id === undefined) {
      id = texts.length;
      index.set(text, id);
      texts.push(text);
    }
    return id;
  };
  const plan = items.map((item) => {
    const spans = maxSpans > 0 ? splitSpans(item.answer, maxSpans) : [];
    const question = item.question?.trim() ? item.question : undefined;
    const lead = requestRisk && question !== undefined ? promptLead(question) : undefined;
    return {
      answer: idOf(item.answer),
      question: question === undefined ? -1 : idOf(question),
      lead: lead === undefined ? -1 : idOf(lead),
      spans,
      spanIds: spans.map((s) => idOf(s.text)),
    };
  });
  const vectors = texts.length ? await backbone.embed(texts) : [];
  const vec = (id: number): Float32Array => vectors[id] as Float32Array;
  const riskOf = (risk: (question: string, embedding: Float32Array) => number, question: number, lead: number): number =>
    Math.max(risk(texts[question] as string, vec(question)), lead < 0 ? 0 : risk(texts[lead] as string, vec(lead)));
  return plan.map((p) => ({
    answer: vec(p.answer),
    question: p.question < 0 ? null : vec(p.question),
    spans: p.spans,
    spanVectors: p.spanIds.map(vec),
    ...(requestRisk && p.question >= 0 ? { requestRisk: riskOf(requestRisk, p.question, p.lead) } : {}),
  }));
}

/** The items with their spans embedded (for items embedded with `maxSpans` 0); the other vectors are kept. */
export async function withSpans(backbone: Backbone, embedded: readonly EmbeddedItem[], answers: readonly string[], maxSpans: number): Promise<EmbeddedItem[]> {
  const spans = answers.map((a) => splitSpans(a, maxSpans));
  // A span that is the whole answer (a one-sentence answer) already has its vector.
  const texts = [...new Set(spans.flatMap((s, i) => s.filter((x) => x.text !== answers[i]).map((x) => x.text)))];
  const vectors = new Map<string, Float32Array>();
  if (texts.length) (await backbone.embed(texts)).forEach((v, i) => vectors.set(texts[i] as string, v));
  return embedded.map((e, i) => {
    const s = spans[i] as TextSpan[];
    return { ...e, spans: s, spanVectors: s.map((x) => (x.text === answers[i] ? e.answer : (vectors.get(x.text) as Float32Array))) };
  });
}

/** The feature vector of an embedded item (see the layout above). */
export function featureVector(item: EmbeddedItem, dim: number): Float32Array {
  const out = new Float32Array(featureDim(dim));
  const { answer, question } = item;
  // An empty or unsplittable answer pools as the whole answer.
  const spanVectors = item.spanVectors.length ? item.spanVectors : [answer];
  out.set(answer, 0);
  const meanOff = dim;
  const maxOff = 2 * dim;
  for (let i = 0; i < dim; i++) out[maxOff + i] = -Infinity;
  for (const v of spanVectors) {
    for (let i = 0; i < dim; i++) {
      const x = v[i] as number;
      out[meanOff + i] = (out[meanOff + i] as number) + x / spanVectors.length;
      if (x > (out[maxOff + i] as number)) out[maxOff + i] = x;
    }
  }
  if (question) {
    out.set(question, 3 * dim);
    for (let i = 0; i < dim; i++) out[4 * dim + i] = (question[i] as number) * (answer[i] as number);
  } else {
    out[5 * dim] = 1;
  }
  return out;
}

/** The answer's own part of the features ([e(answer), mean, max]): what the compliance head reads, blind to the question. */
export function answerFeatures(item: EmbeddedItem, dim: number): Float32Array {
  return featureVector(item, dim).slice(0, 3 * dim);
}

/** One span as if it were the whole answer, in the item's question context (for redaction). */
export function spanItem(item: EmbeddedItem, spanIndex: number): EmbeddedItem {
  const v = item.spanVectors[spanIndex];
  if (!v) throw new Error(`span ${spanIndex} out of range`);
  return { answer: v, question: item.question, spans: [], spanVectors: [v], ...(item.requestRisk === undefined ? {} : { requestRisk: item.requestRisk }) };
}
