import type { HarmVerdict, QAItem, SpanScore } from "../types.js";
import type { Backbone } from "./backbones/backbone.js";
import type { HarmDetector, ScoreOptions } from "./harm-detector.js";
import { answerFeatures, embedItems, featureDim, featureVector, spanItem, withSpans, type EmbeddedItem } from "./features.js";
import { eitherHarmful, requestRisk, requestTermProbability } from "./request-term.js";
import { sigmoid } from "./head.js";
import { fuse, loadDetectorModel, type DetectorModel } from "./model-file.js";
import { hashedNgrams } from "./lexical.js";
import { jailbreakContent } from "./persona.js";
import { withoutDisclaimers } from "./disclaimers.js";
import { topSpans } from "./sentences.js";

export interface EmbeddedDetectorOptions {
  /** A trained detector model file (default: the one shipped in `models/`). */
  modelPath?: string;
  /** An already loaded model (takes precedence over `modelPath`). */
  model?: DetectorModel;
  /** The frozen backbone; default USE-lite on ONNX Runtime. Must match the model's backbone id. */
  backbone?: Backbone;
  /** Override the calibrated threshold shipped with the model. */
  threshold?: number;
  /** How many top spans to report per flagged answer. */
  explainSpans?: number;
  /**
   * Use the model's fast path (default true when the model has one): a plainly benign answer is scored
   * without its span vectors. `false` reads every span of every answer (slower; see the model card).
   */
  fastPath?: boolean;
}

/**
 * The default harm detector: frozen sentence-encoder features of (question, answer) + a trained head,
 * fused with a hashed n-gram model into one calibrated probability (see models/MODEL_CARD.md).
 */
export class EmbeddedDetector implements HarmDetector {
  readonly name = "embedded";
  readonly threshold: number;
  readonly contentFloor: number | undefined;
  private readonly explainSpans: number;
  private readonly fastPath: boolean;

  constructor(
    private readonly model: DetectorModel,
    private readonly backbone: Backbone,
    options: { threshold?: number; explainSpans?: number; fastPath?: boolean } = {},
  ) {
    if (backbone.id !== model.backbone) {
      throw new Error(`detector model was trained on backbone "${model.backbone}" but got "${backbone.id}"`);
    }
    if (model.head.inputDim !== featureDim(backbone.dim)) throw new Error("detector model does not match the backbone's dimension");
    const threshold = options.threshold ?? model.threshold;
    if (!(threshold >= 0 && threshold <= 1)) throw new Error(`threshold must be within 0..1, got ${threshold}`);
    this.threshold = threshold;
    this.contentFloor = model.contentFloor;
    this.explainSpans = options.explainSpans ?? 3;
    this.fastPath = options.fastPath ?? true;
  }

  /**
   * A dual-response jailbreak answer ("[GPT]: I'm sorry… [DAN]: Sure, here is…") is harmful when
   * what its persona says is, and a disclaimer does not make what follows it harmless: such answers are
   * also scored in plain form (persona labels, refusal turns and disclaimer sentences removed), the
   * higher score counts, and they decline only if the plain form declines too.
   */
  async score(items: readonly QAItem[], options: ScoreOptions = {}): Promise<HarmVerdict[]> {
    // A second reading of answers whose surface can hide their content: a dual-response jailbreak's
    // persona part, and the answer without its disclaimers (disclaimers.ts).
    const persona = items.map((item) => jailbreakContent(item.answer));
    const bare = items.map((item, i) => withoutDisclaimers(persona[i] ?? item.answer));
    const plain = items.map((_, i) => bare[i] ?? persona[i] ?? null);
    const views = plain.flatMap((text, i) => (text === null ? [] : [{ question: (items[i] as QAItem).question, answer: text }]));
    const all = [...items, ...views];
    const rule = this.fastPath && !options.thorough ? this.model.screen : undefined;
    let embedded = await this.embed(all, rule ? 0 : this.model.maxSpans);
    // The fast path: plainly benign answers keep the score of their whole-answer and question vectors;
    // the rest (and every answer with a plain form, and the plain forms) get their spans read.
    const screened = items.map((item, i) => {
      const e = embedded[i] as EmbeddedItem;
      if (rule === undefined || plain[i] !== null || (e.requestRisk ?? 0) >= rule.maxRequestRisk) return null;
      const verdict = this.scoreEmbedded(e, item.answer);
      return verdict.score < rule.skipBelow ? verdict : null;
    });
    const fast = screened.map((v) => v !== null);
    if (rule) {
      const todo = all.map((_, k) => k).filter((k) => k >= items.length || !fast[k]);
      const spanned = await withSpans(this.backbone, todo.map((k) => embedded[k] as EmbeddedItem), todo.map((k) => (all[k] as QAItem).answer), this.model.maxSpans);
      embedded = [...embedded];
      todo.forEach((k, j) => (embedded[k] = spanned[j] as EmbeddedItem));
    }
    let next = items.length;
    return items.map((item, i) => {
      const quick = screened[i];
      if (quick) {
        // Without spans the decline head reads too little to report; `fastPath` marks the shortcut.
        const { declines: _unread, ...kept } = quick.signals;
        return { score: quick.score, flagged: quick.score >= this.threshold, threshold: this.threshold, signals: { ...kept, fastPath: 1 } };
      }
      const e = embedded[i] as EmbeddedItem;
      let { score, signals } = this.scoreEmbedded(e, item.answer);
      const text = plain[i];
      if (text) {
        const view = this.scoreEmbedded(embedded[next++] as EmbeddedItem, text);
        signals = {
          ...signals,
          ...(persona[i] !== null ? { jailbreakContent: view.score } : {}),
          ...(bare[i] !== null ? { withoutDisclaimers: view.score } : {}),
          content: Math.max(signals.content as number, view.signals.content as number),
        };
        // It declines only if every voice does: the persona's part counts too.
        if (signals.declines !== undefined && view.signals.declines !== undefined) signals.declines = Math.min(signals.declines, view.signals.declines);
        score = Math.max(score, view.score);
      }
      const flagged = score >= this.threshold;
      const verdict: HarmVerdict = { score, flagged, threshold: this.threshold, signals };
      if (flagged && e.spans.length > 1) verdict.topSpans = topSpans(this.spanScores(e), this.explainSpans);
      return verdict;
    });
  }

  async scoreSpans(item: QAItem): Promise<SpanScore[]> {
    const [e] = await this.embed([item]);
    return e ? this.spanScores(e) : [];
  }

  async close(): Promise<void> {
    await this.backbone.close?.();
  }

  private embed(items: readonly QAItem[], maxSpans = this.model.maxSpans): Promise<EmbeddedItem[]> {
    const term = this.model.requestTerm;
    return embedItems(this.backbone, items, maxSpans, term ? (q, e) => requestRisk(term.request, q, e) : undefined);
  }

  /**
   * P(harmful content) from the head and the lexical model, joined (noisy-OR) with the request ×
   * compliance term when there is a question. Signals: the two z-weighted content logits, P(harmful
   * content) alone as `content`, and the term's probability as `requestCompliance`.
   */
  private scoreEmbedded(e: EmbeddedItem, answer: string): { score: number; signals: Record<string, number> } {
    const embeddingLogit = this.model.head.logit(featureVector(e, this.backbone.dim));
    const lexicalLogit = this.model.lexical.logitOfIds(hashedNgrams(answer, this.model.lexical.buckets));
    const fused = fuse(this.model.fusion, embeddingLogit, lexicalLogit);
    const { logit } = fused;
    const signals: Record<string, number> = { ...fused.signals, content: sigmoid(logit) };
    const term = this.model.requestTerm;
    const needsAnswerFeatures = this.model.declines || (term && e.requestRisk !== undefined);
    const answerOnly = needsAnswerFeatures ? answerFeatures(e, this.backbone.dim) : null;
    // P(the answer declines) is reported, not scored: the harmful-request policy reads it.
    if (this.model.declines && answerOnly) signals.declines = sigmoid(this.model.declines.logit(answerOnly));
    if (!term || e.requestRisk === undefined || !answerOnly) return { score: sigmoid(logit), signals };
    const requestCompliance = requestTermProbability(term, e.requestRisk, term.compliance.logit(answerOnly));
    return { score: eitherHarmful(sigmoid(logit), requestCompliance), signals: { ...signals, requestCompliance } };
  }

  private spanScores(e: EmbeddedItem): SpanScore[] {
    return e.spans.map((span, i) => ({ start: span.start, end: span.end, score: this.scoreEmbedded(spanItem(e, i), span.text).score }));
  }
}

/** Loads the model and the backbone (once) and returns the detector. */
export async function createEmbeddedDetector(options: EmbeddedDetectorOptions = {}): Promise<EmbeddedDetector> {
  const model = options.model ?? (await loadDetectorModel(options.modelPath));
  const backbone = options.backbone ?? (await defaultBackbone());
  return new EmbeddedDetector(model, backbone, options);
}

async function defaultBackbone(): Promise<Backbone> {
  const { createUseLiteBackbone } = await import("./backbones/use-lite.js");
  return createUseLiteBackbone();
}
