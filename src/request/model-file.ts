import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import type { Head } from "../detector/head.js";
import { LexicalModel, lexicalWeightsSchema } from "../detector/lexical.js";
import { decodeHead, encodeHead, encodedHeadSchema, fusionSchema, plattSchema, type Fusion } from "../detector/model-file.js";
import { REQUEST_VIEWS } from "./request-checker.js";

/**
 * The trained request check as one JSON file: the view head over the frozen backbone's embedding
 * (+ a one-hot of the view kind), a hashed word n-gram model beside it, the fusion of their two logits
 * per view (fitted on validation views), the Platt calibration of the most harmful view's fused logit,
 * and the threshold chosen on the validation split. `meta` records the data, split, seed and metrics.
 */

const calibrationSchema = plattSchema;
export type RequestCalibration = z.infer<typeof calibrationSchema>;

export const requestModelSchema = z.object({
  format: z.literal("mllm-protector/request@1"),
  backbone: z.string().min(1),
  views: z.array(z.string()),
  head: encodedHeadSchema,
  lexical: lexicalWeightsSchema,
  fusion: fusionSchema,
  calibration: calibrationSchema,
  threshold: z.number().min(0).max(1),
  meta: z.record(z.string(), z.unknown()),
});
export type RequestModelFile = z.infer<typeof requestModelSchema>;

export interface RequestModel {
  backbone: string;
  head: Head;
  lexical: LexicalModel;
  fusion: Fusion;
  calibration: RequestCalibration;
  threshold: number;
  meta: Record<string, unknown>;
}

/** The request model shipped in the package (trained by `mllm-protector train request`). */
export const DEFAULT_REQUEST_MODEL_PATH = fileURLToPath(new URL("../../models/request.json", import.meta.url));

export function parseRequestModel(raw: unknown, where = "request model"): RequestModel {
  const parsed = requestModelSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${where} is malformed: ${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid"}`);
  }
  const f = parsed.data;
  if (f.views.join() !== REQUEST_VIEWS.join()) throw new Error(`${where} was trained with views [${f.views.join(", ")}], this version has [${REQUEST_VIEWS.join(", ")}]`);
  let head: Head;
  let lexical: LexicalModel;
  try {
    lexical = new LexicalModel(f.lexical);
    head = decodeHead(f.head);
  } catch (err) {
    throw new Error(`${where} is malformed: ${(err as Error).message}`);
  }
  return { backbone: f.backbone, head, lexical, fusion: f.fusion, calibration: f.calibration, threshold: f.threshold, meta: f.meta };
}

export async function loadRequestModel(path = DEFAULT_REQUEST_MODEL_PATH): Promise<RequestModel> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read request model ${path}: ${(err as Error).message}`);
  }
  return parseRequestModel(raw, `request model ${path}`);
}

export function serialiseRequestModel(model: RequestModel): string {
  const file: RequestModelFile = {
    format: "mllm-protector/request@1",
    backbone: model.backbone,
    views: [...REQUEST_VIEWS],
    head: encodeHead(model.head),
    lexical: model.lexical.toJSON(),
    fusion: model.fusion,
    calibration: model.calibration,
    threshold: model.threshold,
    meta: model.meta,
  };
  return `${JSON.stringify(file, null, 1)}\n`;
}

