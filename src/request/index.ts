/** The request check (input side) and image-aware input for the answer side. */
export {
  DEFAULT_SIGNAL_PRIORS,
  MIN_OCR_VIEW_WORDS,
  REQUEST_SIGNALS,
  REQUEST_VIEWS,
  type RequestChecker,
  type RequestInput,
  type RequestSignal,
  type RequestVerdict,
  type RequestView,
  type SignalPriors,
  combineRequestText,
  stripEmptyList,
} from "./request-checker.js";
export { EmbeddedRequestChecker, type EmbeddedRequestCheckerOptions, createEmbeddedRequestChecker } from "./embedded.js";
export { type LlmConfirmedRequestCheckerOptions, REQUEST_CONFIRMATION_PROMPT, createLlmConfirmedRequestChecker } from "./llm-confirmed.js";
export { DEFAULT_REQUEST_MODEL_PATH, type RequestModel, loadRequestModel, parseRequestModel, saveRequestModel, serialiseRequestModel } from "./model-file.js";
export { type ImageContext, type ImageContextOptions, type ImageContextProvider, createImageContext, imageAwareQuestion, imageContextFrom } from "./image-context.js";
export { type CacheStats, cachedExplicit, cachedOcr } from "./engine-cache.js";
