import type { Backbone } from "./detector/backbones/backbone.js";
import { sharedBackbone } from "./detector/backbones/shared.js";
import { CategoryHead, DEFAULT_CATEGORY_MODEL_PATH, EmbeddedCategorizer } from "./detector/category-head.js";
import { EmbeddedDetector } from "./detector/embedded.js";
import { loadDetectorModel } from "./detector/model-file.js";
import { createCategoryRepair } from "./detoxifier/category-repair.js";
import type { Detoxifier } from "./detoxifier/detoxifier.js";
import { createRedaction } from "./detoxifier/redact.js";
import type { ImageSignalsOptions } from "./image/signals.js";
import type { PolicyName } from "./policies.js";
import { createEmbeddedRequestChecker } from "./request/embedded.js";
import { createImageContext } from "./request/image-context.js";
import { createLlmConfirmedRequestChecker } from "./request/llm-confirmed.js";
import { createProtector } from "./protector.js";
import type { Protector } from "./types.js";
import type { ChatModel } from "./upstream/chat-model.js";

export interface DefaultDetectorOptions {
  /** Detector model file (default: the shipped `models/detector.json`). */
  modelPath?: string;
  /** Category model file (default: the shipped `models/categories.json`). */
  categoryModelPath?: string;
  threshold?: number;
  /** The detector's fast path for plainly benign answers (default on; see `EmbeddedDetectorOptions.fastPath`). */
  fastPath?: boolean;
  /** A backbone to use instead of USE-lite (must match the models' backbone id). */
  backbone?: Backbone;
}

/** The shipped detector and categorizer on one shared USE-lite backbone (loaded once). */
export async function loadDefaultModels(options: DefaultDetectorOptions = {}): Promise<{ detector: EmbeddedDetector; categorizer: EmbeddedCategorizer; backbone: Backbone }> {
  const base = options.backbone ?? (await (await import("./detector/backbones/use-lite.js")).createUseLiteBackbone());
  const backbone = sharedBackbone(base);
  const [model, head] = await Promise.all([loadDetectorModel(options.modelPath), CategoryHead.load(options.categoryModelPath ?? DEFAULT_CATEGORY_MODEL_PATH)]);
  return {
    detector: new EmbeddedDetector(model, backbone, { threshold: options.threshold, fastPath: options.fastPath }),
    categorizer: new EmbeddedCategorizer(head, backbone),
    backbone,
  };
}

export interface DefaultProtectorOptions extends DefaultDetectorOptions {
  /** Repair strategies between the category repair and the redaction (e.g. an LLM detoxifier). */
  rewriters?: Detoxifier[];
  policies?: readonly PolicyName[];
  onError?: "refuse" | "pass";
  concurrency?: number;
  /** Read request images (OCR + explicit-content signals) with these limits; `false` ignores images. */
  image?: ImageSignalsOptions | false;
  /**
   * The request check (shipped `models/request.json` on the same backbone); `false` turns it off.
   * `confirmWith`: an LLM asked, text only, about each request the check flags; its "safe" clears the
   * flag (see `createLlmConfirmedRequestChecker`).
   */
  requestCheck?: { modelPath?: string; threshold?: number; confirmWith?: ChatModel } | false;
  /** What a flagged request does (see `ProtectorOptions.onHarmfulRequest`). */
  onHarmfulRequest?: "check-answer" | "refuse";
  /** See `ProtectorOptions.contentFloor` (off by default). */
  contentFloor?: number | "detector";
}

/**
 * The protector with the embedded chain: category repair (disclaimer / decline) → [rewriters] →
 * redaction → refusal, every candidate verified by the detector; request images are read (OCR) so
 * the detector sees what a picture asks, and the request check reports the request's own risk.
 */
export async function createDefaultProtector(options: DefaultProtectorOptions = {}): Promise<Protector> {
  const { detector, categorizer, backbone } = await loadDefaultModels(options);
  const check = options.requestCheck === false ? undefined : (options.requestCheck ?? {});
  const embedded = check && (await createEmbeddedRequestChecker({ backbone, closeBackbone: false, modelPath: check.modelPath, threshold: check.threshold }));
  const requestChecker = embedded && check?.confirmWith ? createLlmConfirmedRequestChecker({ checker: embedded, model: check.confirmWith }) : embedded;
  return createProtector({
    detector,
    categorizer,
    detoxifiers: [createCategoryRepair(), ...(options.rewriters ?? []), createRedaction({ detector })],
    policies: options.policies,
    onError: options.onError,
    concurrency: options.concurrency,
    imageContext: options.image === false ? undefined : createImageContext({ image: options.image }),
    requestChecker,
    onHarmfulRequest: options.onHarmfulRequest,
    ...(options.contentFloor !== undefined ? { contentFloor: options.contentFloor } : {}),
  });
}
