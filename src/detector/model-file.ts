import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { decodeF32, encodeF32 } from "../internal/f32-codec.js";
import { Head } from "./head.js";
import { LexicalModel, lexicalWeightsSchema } from "./lexical.js";
import type { RequestTerm } from "./request-term.js";

/**
 * The trained detector as one JSON file: the embedding head, the lexical model, the fusion that
 * turns their two logits into a calibrated probability, the request × compliance term, the decline
 * head, and the threshold chosen on validation.
 */

/** A head's weights as stored in model files: Float32 arrays base64-encoded. */
export const encodedHeadSchema = z.object({
  inputDim: z.number().int().positive(),
  hidden: z.number().int().nonnegative(),
  mean: z.string(),
  std: z.string(),
  params: z.string(),
});
export type EncodedHead = z.infer<typeof encodedHeadSchema>;

const componentSchema = z.object({ mean: z.number().finite(), std: z.number().positive(), weight: z.number().finite() });
export const fusionSchema = z.object({
  /** z-scoring of each component logit (on the validation split) before the weighted sum. */
  embedding: componentSchema,
  lexical: componentSchema,
  bias: z.number().finite(),
});
export type Fusion = z.infer<typeof fusionSchema>;

export function encodeHead(head: Head): EncodedHead {
  const h = head.toJSON();
  return { inputDim: h.inputDim, hidden: h.hidden, mean: encodeF32(h.mean), std: encodeF32(h.std), params: encodeF32(h.params) };
}

export function decodeHead(h: EncodedHead): Head {
  return new Head({ inputDim: h.inputDim, hidden: h.hidden, mean: Array.from(decodeF32(h.mean)), std: Array.from(decodeF32(h.std)), params: Array.from(decodeF32(h.params)) });
}

/** Platt scaling: P = sigmoid(a · logit + b), fitted on a validation split. */
export const plattSchema = z.object({ a: z.number().finite(), b: z.number().finite() });

const requestTermSchema = z.object({
  request: z.object({ head: encodedHeadSchema, lexical: lexicalWeightsSchema, fusion: fusionSchema, calibration: plattSchema }),
  compliance: encodedHeadSchema,
  /** Platt scaling of the term's logit into P(harmful), fitted on validation. */
  calibration: plattSchema,
});

/**
 * The fast path: most answers are plainly benign, and the span vectors (most of the encoder's work on
 * a long answer) only matter near the threshold. An answer is first scored from its whole-answer and
 * question vectors; it keeps that score, spans unread, when the score is below `skipBelow` and its
 * question's request risk is below `maxRequestRisk`. Chosen on validation so that no answer the full
 * detector flags is skipped, with a margin (see the model card).
 */
const screenRuleSchema = z.object({
  skipBelow: z.number().min(0).max(1),
  maxRequestRisk: z.number().min(0).max(1),
});

export const detectorModelSchema = z.object({
  format: z.literal("mllm-protector/detector@1"),
  backbone: z.string(),
  maxSpans: z.number().int().positive(),
  head: encodedHeadSchema,
  lexical: lexicalWeightsSchema,
  fusion: fusionSchema,
  /** The request × compliance term: the request check's text head (frozen copy) and the compliance head. */
  requestTerm: requestTermSchema.optional(),
  /** P(the answer declines: refuses or deflects) from the answer alone; feeds the harmful-request policy. */
  declines: encodedHeadSchema.optional(),
  threshold: z.number().min(0).max(1),
  /**
   * Content scores below this count as benign words: the harmful-request policy does not refuse such an
   * answer on the request check's word alone. The 90th percentile of the content score of validation
   * answers to benign requests.
   */
  contentFloor: z.number().min(0).max(1).optional(),
  screen: screenRuleSchema.optional(),
  /** How the threshold was chosen and what was measured; free-form, for the model card. */
  meta: z.record(z.string(), z.unknown()),
});
export type DetectorModelFile = z.infer<typeof detectorModelSchema>;
export type ScreenRule = z.infer<typeof screenRuleSchema>;

export interface DetectorModel {
  backbone: string;
  maxSpans: number;
  head: Head;
  lexical: LexicalModel;
  fusion: Fusion;
  requestTerm?: RequestTerm;
  declines?: Head;
  threshold: number;
  contentFloor?: number;
  screen?: ScreenRule;
  meta: Record<string, unknown>;
}

/** The head shipped in the package (trained by `mllm-protector train detector`). */
export const DEFAULT_DETECTOR_MODEL_PATH = fileURLToPath(new URL("../../models/detector.json", import.meta.url));

export async function loadDetectorModel(path = DEFAULT_DETECTOR_MODEL_PATH): Promise<DetectorModel> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read detector model ${path}: ${(err as Error).message}`);
  }
  const parsed = detectorModelSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`detector model ${path} is malformed: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  const f = parsed.data;
  return {
    backbone: f.backbone,
    maxSpans: f.maxSpans,
    head: decodeHead(f.head),
    lexical: new LexicalModel(f.lexical),
    fusion: f.fusion,
    ...(f.requestTerm
      ? {
          requestTerm: {
            request: { ...f.requestTerm.request, head: decodeHead(f.requestTerm.request.head), lexical: new LexicalModel(f.requestTerm.request.lexical) },
            compliance: decodeHead(f.requestTerm.compliance),
            calibration: f.requestTerm.calibration,
          },
        }
      : {}),
    ...(f.declines ? { declines: decodeHead(f.declines) } : {}),
    threshold: f.threshold,
    ...(f.contentFloor !== undefined ? { contentFloor: f.contentFloor } : {}),
    ...(f.screen ? { screen: f.screen } : {}),
    meta: f.meta,
  };
}

export function serialiseDetectorModel(model: DetectorModel): string {
  const file: DetectorModelFile = {
    format: "mllm-protector/detector@1",
    backbone: model.backbone,
    maxSpans: model.maxSpans,
    head: encodeHead(model.head),
    lexical: model.lexical.toJSON(),
    fusion: model.fusion,
    ...(model.requestTerm
      ? {
          requestTerm: {
            request: { ...model.requestTerm.request, head: encodeHead(model.requestTerm.request.head), lexical: model.requestTerm.request.lexical.toJSON() },
            compliance: encodeHead(model.requestTerm.compliance),
            calibration: model.requestTerm.calibration,
          },
        }
      : {}),
    ...(model.declines ? { declines: encodeHead(model.declines) } : {}),
    threshold: model.threshold,
    ...(model.contentFloor !== undefined ? { contentFloor: model.contentFloor } : {}),
    ...(model.screen ? { screen: model.screen } : {}),
    meta: model.meta,
  };
  return `${JSON.stringify(file, null, 1)}\n`;
}

/** The two content logits → calibrated P(harmful content). */
export function fuse(fusion: Fusion, embeddingLogit: number, lexicalLogit: number): { logit: number; signals: Record<string, number> } {
  const e = ((embeddingLogit - fusion.embedding.mean) / fusion.embedding.std) * fusion.embedding.weight;
  const l = ((lexicalLogit - fusion.lexical.mean) / fusion.lexical.std) * fusion.lexical.weight;
  return { logit: fusion.bias + e + l, signals: { embedding: e, lexical: l } };
}
