/**
 * The request check before the MLLM is called (`--refuse-harmful-requests`): a request the check flags
 * is answered with the refusal at once, in OpenAI's shape, and never reaches the upstream.
 */
import { randomUUID } from "node:crypto";
import type { Protector, RequestRisk } from "../../types.js";
import type { ProtectorInfo } from "../guard.js";
import type { ParsedChatRequest } from "./request.js";

/** The request's risk, or a flagged stand-in when the check fails and the proxy fails closed; null to go on. */
export async function preflight(protector: Protector, req: ParsedChatRequest, onError: "refuse" | "pass"): Promise<{ risk: RequestRisk | null; failed: boolean }> {
  try {
    const risk = await protector.checkRequest({ question: req.question, image: req.image });
    return { risk: risk?.flagged ? risk : null, failed: false };
  } catch {
    return onError === "refuse" ? { risk: { score: Number.NaN, flagged: true, threshold: Number.NaN, signals: [] }, failed: true } : { risk: null, failed: true };
  }
}

function info(risk: RequestRisk, failed: boolean): ProtectorInfo & { request: Pick<RequestRisk, "signals" | "confirmation"> & { score: number | null } } {
  return {
    action: "refused",
    flagged: true,
    score: null,
    category: null,
    ...(failed ? { trigger: "check-failed" as const, error: "check_failed" as const } : { trigger: "request-refused" as const }),
    request: { score: Number.isNaN(risk.score) ? null : risk.score, signals: risk.signals, ...(risk.confirmation ? { confirmation: risk.confirmation } : {}) },
  };
}

/** A chat completion (or SSE stream of chunks) that refuses, with the request check's verdict on each choice. */
export function refusalResponse(req: ParsedChatRequest, refusal: string, risk: RequestRisk, failed: boolean): Response {
  const id = `chatcmpl-protector-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const choices = Array.from({ length: req.n }, (_, index) => index);
  if (!req.stream) {
    return Response.json({
      id,
      object: "chat.completion",
      created,
      model: req.model,
      choices: choices.map((index) => ({ index, message: { role: "assistant", content: refusal }, logprobs: null, finish_reason: "stop", protector: info(risk, failed) })),
      usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    });
  }
  const chunk = (delta: object, finish: string | null, extra: object = {}): string =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: req.model, choices: choices.map((index) => ({ index, delta, logprobs: null, finish_reason: finish, ...extra })) })}\n\n`;
  const body = `${chunk({ role: "assistant", content: refusal }, null)}${chunk({}, "stop", { protector: info(risk, failed) })}data: [DONE]\n\n`;
  return new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" } });
}
