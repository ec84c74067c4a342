/**
 * mllm-protector: MLLM-Protector (Pi et al., EMNLP 2024) as a library.
 * input → MLLM → harm detector → (detoxifier chain) → verified output.
 */

// The pipeline and its shared types.
export { createProtector, type ProtectorOptions } from "./protector.js";
export { createDefaultProtector, loadDefaultModels, type DefaultDetectorOptions, type DefaultProtectorOptions } from "./defaults.js";
export * from "./types.js";
export { POLICY_NAMES, type PolicyName, hasProfessionalDisclaimer, declines } from "./policies.js";

// Harm detector (part 1) and its backbones.
export type { HarmDetector } from "./detector/harm-detector.js";
export type { Categorizer, CategoryVerdict } from "./detector/categorizer.js";
export { EmbeddedDetector, createEmbeddedDetector, type EmbeddedDetectorOptions } from "./detector/embedded.js";
export { loadDetectorModel, type DetectorModel } from "./detector/model-file.js";
export type { Backbone } from "./detector/backbones/backbone.js";
export { createUseLiteBackbone, type UseLiteBackbone, type UseLiteOptions } from "./detector/backbones/use-lite.js";
export { createTransformersBackbone, type TransformersBackbone, type TransformersBackboneOptions } from "./detector/backbones/transformers.js";

// Detoxifiers (part 2): one interface, a backend per file.
export { type Detoxifier, type DetoxInput, type DetoxOutput, DETOX_PROMPT_TEMPLATE, REFUSAL_TEXT, detoxPrompt } from "./detoxifier/detoxifier.js";
export { CandidateRejectedError, NotApplicableError } from "./detoxifier/errors.js";
export { createLlmDetoxifier, type LlmDetoxifierOptions } from "./detoxifier/llm.js";
export { createSelfRewriteDetoxifier } from "./detoxifier/self-rewrite.js";
export { createGgufDetoxifier, type GgufDetoxifierOptions } from "./detoxifier/gguf.js";
export { createCategoryRepair } from "./detoxifier/category-repair.js";
export { createRedaction, type RedactionOptions } from "./detoxifier/redact.js";
export { createRefusal } from "./detoxifier/refusal.js";

// Generative models over OpenAI-compatible HTTP.
export type { ChatContentPart, ChatMessage, ChatModel, ChatRequest } from "./upstream/chat-model.js";
export { createOpenAICompatibleModel, type OpenAICompatibleOptions } from "./upstream/openai-compatible.js";
export { UpstreamError, isUpstreamError, type UpstreamErrorKind } from "./upstream/errors.js";

// The request side: request check and image signals.
export type { RequestChecker, RequestInput, RequestVerdict } from "./request/request-checker.js";
export { createEmbeddedRequestChecker, type EmbeddedRequestCheckerOptions } from "./request/embedded.js";
export { createLlmConfirmedRequestChecker, type LlmConfirmedRequestCheckerOptions, REQUEST_CONFIRMATION_PROMPT } from "./request/llm-confirmed.js";
export { createImageContext, type ImageContext, type ImageContextProvider } from "./request/image-context.js";
export { createImageSignals, type ImageSignals, type ImageSignalsOptions, type ImageSignalResult } from "./image/signals.js";
export { ImageError, isImageError } from "./image/errors.js";

// Plug-and-play adapters.
export { createProxyApp, type ProxyApp, type ProxyOptions } from "./adapters/proxy/server.js";
export { startProxyServer, type ProxyServer } from "./adapters/proxy/listen.js";
export { protectOpenAI, type ProtectOpenAIOptions, type ProtectedOpenAI } from "./adapters/openai.js";
export { protectorMiddleware, type ProtectorMiddlewareOptions } from "./adapters/ai-sdk.js";

// Judges for benchmarks.
export type { Judge, JudgeItem, JudgeVerdict } from "./judge/judge.js";
export { createLlmJudge, type LlmJudgeOptions } from "./judge/llm-judge.js";
export { createDetectorJudge } from "./judge/detector-judge.js";
