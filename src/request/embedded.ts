import { z } from "zod";
import type { Backbone } from "../detector/backbones/backbone.js";
import { sigmoid } from "../detector/head.js";
import { fuse } from "../detector/model-file.js";
import { ImageError } from "../image/errors.js";
import { type ImageSignalResult, type ImageSignals, type ImageSignalsOptions, createImageSignals } from "../image/signals.js";
import { loadRequestModel, type RequestModel } from "./model-file.js";
import {
  type RequestChecker,
  type RequestInput,
  type RequestVerdict,
  type RequestView,
  type SignalPriors,
  type ViewText,
  VIEW_SLOT_COUNT,
  combineEvidence,
  pointsAtPhrase,
  requestViews,
  resolvePriors,
  viewFeatures,
} from "./request-checker.js";

export interface EmbeddedRequestCheckerOptions {
  /** A trained request model file (default: `models/request.json`). */
  modelPath?: string;
  /** An already loaded model (takes precedence over `modelPath`). */
  model?: RequestModel;
  /** The frozen backbone (e.g. shared with the detector); default USE-lite on ONNX Runtime. Must match the model's backbone id. */
  backbone?: Backbone;
  /** Close the backbone in `close()` (default: only when the checker created it). */
  closeBackbone?: boolean;
  /**
   * Override the calibrated threshold shipped with the model. It moves the bar for what the request's
   * words score; image evidence that flags on its own at the model's threshold still flags.
   */
  threshold?: number;
  /** Evidence each image signal adds on its own (default `DEFAULT_SIGNAL_PRIORS`). */
  priors?: SignalPriors;
  /** An image path to use (shared with the answer side, tests); it is not closed by `close()`. */
  imageSignals?: Pick<ImageSignals, "analyze">;
  /** Options for the image path the checker creates on its first image (OCR + explicit classifier by default). */
  image?: ImageSignalsOptions;
}

const imageRefSchema = z.union([z.string(), z.object({ url: z.string() }), z.instanceof(Uint8Array)]);
const inputSchema = z.object({
  question: z.string().optional(),
  image: imageRefSchema.optional(),
  imageAnalysis: z.looseObject({ fired: z.array(z.string()), ocrText: z.string().optional() }).optional(),
  imageText: z.string().optional(),
});

/**
 * The embedded request check: the frozen sentence encoder embeds each view of the request (prompt, image
 * text, both), a trained head scores each view, Platt scaling turns the most harmful view's logit into a
 * probability, and image signals add their priors (see request-checker.ts).
 */
export class EmbeddedRequestChecker implements RequestChecker {
  readonly name = "embedded";
  readonly threshold: number;
  private readonly priors: Required<SignalPriors>;
  private ownImage: ImageSignals | undefined;
  private closed = false;

  constructor(
    private readonly model: RequestModel,
    private readonly backbone: Backbone,
    private readonly options: Omit<EmbeddedRequestCheckerOptions, "model" | "backbone" | "modelPath"> = {},
  ) {
    if (backbone.id !== model.backbone) throw new Error(`request model was trained on backbone "${model.backbone}" but got "${backbone.id}"`);
    if (model.head.inputDim !== backbone.dim + VIEW_SLOT_COUNT) throw new Error("request model does not match the backbone's dimension");
    const threshold = options.threshold ?? model.threshold;
    if (!(threshold >= 0 && threshold <= 1)) throw new RangeError(`threshold must be within 0..1, got ${threshold}`);
    this.threshold = threshold;
    this.priors = resolvePriors(options.priors);
  }

  async check(input: RequestInput): Promise<RequestVerdict> {
    const [verdict] = await this.checkBatch([input]);
    return verdict as RequestVerdict;
  }

  async checkBatch(inputs: readonly RequestInput[]): Promise<RequestVerdict[]> {
    if (this.closed) throw new Error("request checker is closed");
    const started = performance.now();
    inputs.forEach((input, i) => {
      const parsed = inputSchema.safeParse(input);
      if (!parsed.success) throw new TypeError(`request ${i}: ${parsed.error.issues[0]?.path.join(".") || "input"}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    });
    // Images one at a time: OCR runs in one reused worker anyway.
    const analyses: Array<{ result: ImageSignalResult; ms: number } | undefined> = [];
    for (const input of inputs) analyses.push(await this.analyse(input));

    const plans = inputs.map((input, i) => {
      const a = analyses[i]?.result;
      const ocrRead = a !== undefined && a.fired.includes("ocr-text");
      return ocrRead || input.imageText === undefined ? requestViews(input.question, a?.ocrText, ocrRead) : requestViews(input.question, input.imageText);
    });
    const contentStarted = performance.now();
    const probabilities = await this.scoreViews(plans.flat());
    const ended = performance.now();
    const contentMs = ended - contentStarted;
    let k = 0;
    return plans.map((views, i) => {
      const perView: Partial<Record<RequestView, number>> = {};
      for (const v of views) perView[v.view] = probabilities[k++] as number;
      const a = analyses[i];
      const unreadPointer = perView.combined === undefined && pointsAtPhrase(inputs[i]?.question);
      const { score, evidence, signals } = combineEvidence({ views: perView, imageFired: a?.result.fired ?? [], unreadPointer }, this.threshold, this.priors);
      const verdict: RequestVerdict = {
        score,
        // The priors were set against the model's own threshold: image evidence that flags a request on its
        // own there (FigStep's empty-list template, an unread pointer) still does at a raised threshold.
        flagged: score >= this.threshold || evidence >= this.model.threshold,
        threshold: this.threshold,
        signals,
        views: perView,
        ms: { image: a?.ms ?? 0, content: contentMs / Math.max(1, inputs.length), total: 0 },
      };
      if (a !== undefined) {
        verdict.ocrText = a.result.ocrText ?? "";
        verdict.image = { fired: a.result.fired, image: a.result.image, ms: a.result.ms };
        if (a.result.explicit !== undefined) verdict.image.explicit = a.result.explicit;
      }
      // One request: the whole call; in a batch: its image plus its share of the content model.
      verdict.ms.total = inputs.length === 1 ? ended - started : verdict.ms.image + verdict.ms.content;
      return verdict;
    });
  }

  /** Calibrated content probabilities of views, in order; every distinct text is embedded once. */
  async scoreViews(views: readonly ViewText[]): Promise<number[]> {
    const { a, b } = this.model.calibration;
    return (await requestViewLogits(this.model, this.backbone, views)).map((x) => sigmoid(a * x + b));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ownImage?.close();
    if (this.options.closeBackbone ?? true) await this.backbone.close?.();
  }

  private async analyse(input: RequestInput): Promise<{ result: ImageSignalResult; ms: number } | undefined> {
    if (input.imageAnalysis !== undefined) return { result: input.imageAnalysis, ms: 0 };
    if (input.image === undefined) return undefined;
    const signals = this.options.imageSignals ?? (this.ownImage ??= createImageSignals(this.options.image));
    const started = performance.now();
    try {
      const result = await signals.analyze(input.image);
      return { result, ms: performance.now() - started };
    } catch (error) {
      if (error instanceof ImageError) throw error;
      throw new ImageError("invalid_ref", `image analysis failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}

/** The fused (embedding head + lexical) logit of each view, before calibration; every distinct text is embedded once. */
export async function requestViewLogits(model: Pick<RequestModel, "head" | "lexical" | "fusion">, backbone: Backbone, views: readonly ViewText[]): Promise<number[]> {
  if (views.length === 0) return [];
  const texts = [...new Set(views.map((v) => v.text))];
  const vectors = await backbone.embed(texts);
  if (vectors.length !== texts.length) throw new Error(`backbone returned ${vectors.length} vectors for ${texts.length} texts`);
  const byText = new Map(texts.map((t, i) => [t, vectors[i] as Float32Array]));
  return views.map((v) => fuse(model.fusion, model.head.logit(viewFeatures(byText.get(v.text) as Float32Array, v.view)), model.lexical.logit(v.text)).logit);
}

/** Loads the model and the backbone (once) and returns the checker. */
export async function createEmbeddedRequestChecker(options: EmbeddedRequestCheckerOptions = {}): Promise<EmbeddedRequestChecker> {
  const model = options.model ?? (await loadRequestModel(options.modelPath));
  let backbone = options.backbone;
  const closeBackbone = options.closeBackbone ?? backbone === undefined;
  if (backbone === undefined) {
    const { createUseLiteBackbone } = await import("../detector/backbones/use-lite.js");
    backbone = await createUseLiteBackbone();
  }
  const { model: _m, backbone: _b, modelPath: _p, ...rest } = options;
  return new EmbeddedRequestChecker(model, backbone, { ...rest, closeBackbone });
}
