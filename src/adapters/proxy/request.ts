/**
 * Validation of `POST /v1/chat/completions` bodies at the edge. Only what the proxy relies on, and
 * the mistakes an upstream would otherwise answer unclearly, are checked; the body is then forwarded
 * byte-for-byte, unknown fields included.
 */
import { z } from "zod";
import { lastUserTurn, type MessageLike } from "../openai-shape.js";
import type { ImageRef } from "../../types.js";
import { sniffSignature } from "../../image/load.js";
import { MAX_IMAGE_URL_CHARS } from "../settings.js";
import { invalidRequest, ProxyError } from "./errors.js";

const PART_TYPES = "text, image_url, input_audio or file";

const textPart = z.looseObject({ type: z.literal("text"), text: z.string() });
const imagePart = z.looseObject({
  type: z.literal("image_url"),
  image_url: z.looseObject({ url: z.string().min(1), detail: z.enum(["auto", "low", "high"]).optional() }),
});
const audioPart = z.looseObject({ type: z.literal("input_audio"), input_audio: z.looseObject({ data: z.string(), format: z.string() }) });
const filePart = z.looseObject({ type: z.literal("file"), file: z.looseObject({}) });
const refusalPart = z.looseObject({ type: z.literal("refusal"), refusal: z.string() });

const partOf = <T extends readonly [z.core.$ZodTypeDiscriminable, ...z.core.$ZodTypeDiscriminable[]]>(options: T, expected: string) =>
  z.discriminatedUnion("type", options, { error: (iss) => (iss.code === "invalid_union" ? `content part type must be ${expected}` : undefined) });

const userContent = z.union([z.string(), z.array(partOf([textPart, imagePart, audioPart, filePart], PART_TYPES)).min(1, "content parts must not be empty")], {
  error: "content must be a string or an array of content parts",
});
const textContent = z.union([z.string(), z.array(partOf([textPart], "text")).min(1, "content parts must not be empty")], {
  error: "content must be a string or an array of text parts",
});
const assistantContent = z.union([z.string(), z.null(), z.array(partOf([textPart, refusalPart], "text or refusal"))], {
  error: "content must be a string, null or an array of text/refusal parts",
});

const ROLES = ["system", "developer", "user", "assistant", "tool", "function"] as const;
const message = z.discriminatedUnion(
  "role",
  [
    z.looseObject({ role: z.literal("system"), content: textContent }),
    z.looseObject({ role: z.literal("developer"), content: textContent }),
    z.looseObject({ role: z.literal("user"), content: userContent }),
    z.looseObject({ role: z.literal("assistant"), content: assistantContent.optional(), tool_calls: z.array(z.looseObject({})).optional() }),
    z.looseObject({ role: z.literal("tool"), content: textContent, tool_call_id: z.string() }),
    z.looseObject({ role: z.literal("function"), content: z.string().nullable(), name: z.string() }),
  ],
  { error: (iss) => (iss.code === "invalid_union" ? `role must be one of ${ROLES.join(", ")}` : undefined) },
);

const chatRequest = z.looseObject({
  model: z.string({ error: (iss) => (iss.input === undefined ? "model is required" : "model must be a string") }).min(1, "model must not be empty"),
  messages: z.array(message, { error: (iss) => (iss.input === undefined ? "messages is required" : "messages must be an array of messages") }).min(1, "messages must not be empty"),
  stream: z.boolean({ error: "stream must be a boolean" }).nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  tools: z.array(z.looseObject({ type: z.string() })).nullish(),
});

export interface ChatRequestLimits {
  maxImageBytes: number;
  maxImages: number;
}

/** A validated request: what the proxy needs from it. The raw body is what gets forwarded. */
export interface ParsedChatRequest {
  stream: boolean;
  /** Choices requested (`n`). */
  n: number;
  model: string;
  question?: string;
  image?: ImageRef;
}

/** Parse and check a raw body; throws a 400 `ProxyError` naming the field. */
export function parseChatRequest(raw: string, limits: ChatRequestLimits): ParsedChatRequest {
  if (raw.trim().length === 0) throw invalidRequest("the request body is empty; expected a JSON object");
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw invalidRequest(`the request body is not valid JSON (${err instanceof Error ? err.message : "parse error"})`, null, "invalid_json");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw invalidRequest("the request body must be a JSON object");
  const parsed = chatRequest.safeParse(json);
  if (!parsed.success) {
    const issue = deepest(parsed.error.issues);
    const param = paramOf(issue.path);
    throw invalidRequest(`${param || "body"}: ${issue.message}`, param || null);
  }
  const messages = parsed.data.messages as MessageLike[];
  checkImages(messages, limits);
  return { stream: parsed.data.stream === true, n: parsed.data.n ?? 1, model: parsed.data.model, ...lastUserTurn(messages) };
}

function checkImages(messages: readonly MessageLike[], limits: ChatRequestLimits): void {
  let count = 0;
  messages.forEach((m, i) => {
    if (!Array.isArray(m.content)) return;
    m.content.forEach((p, j) => {
      if (p.type !== "image_url") return;
      const url = p.image_url?.url ?? "";
      const param = `messages[${i}].content[${j}].image_url.url`;
      if (++count > limits.maxImages) throw invalidRequest(`too many images: at most ${limits.maxImages} per request`, param, "too_many_images");
      if (/^data:/i.test(url)) {
        const m = /^data:(image\/[a-z0-9.+-]+);base64,/i.exec(url);
        if (!m) throw invalidRequest(`${param}: a data: URL must be data:image/<type>;base64,<data>`, param, "invalid_image_url");
        const data = url.slice(m[0].length);
        const bytes = Math.floor((data.length * 3) / 4);
        if (bytes > limits.maxImageBytes) throw new ProxyError(413, `${param}: the image is about ${bytes} bytes; the limit is ${limits.maxImageBytes}`, "invalid_request_error", "image_too_large", param);
        if (data.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(data)) throw invalidRequest(`${param}: the data: URL is not valid base64`, param, "invalid_image_url");
        // Bytes no image format starts with would only reach the upstream and then fail the check: say so now.
        if (sniffSignature(Buffer.from(data.slice(0, 16), "base64")) === undefined) {
          throw invalidRequest(`${param}: the data: URL does not hold an image (expected JPEG, PNG, WebP, GIF, TIFF or HEIF/AVIF bytes)`, param, "invalid_image_url");
        }
        return;
      }
      let parsed: URL | null = null;
      try {
        parsed = new URL(url);
      } catch {
        parsed = null;
      }
      if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
        throw invalidRequest(`${param}: an image must be an http(s) URL or a data:image/...;base64 URL`, param, "invalid_image_url");
      }
      if (url.length > MAX_IMAGE_URL_CHARS) throw invalidRequest(`${param}: the URL is longer than ${MAX_IMAGE_URL_CHARS} characters`, param, "invalid_image_url");
    });
  });
}

/** Union errors nest the useful message; take the issue with the longest path. */
function deepest(issues: readonly z.core.$ZodIssue[]): { path: PropertyKey[]; message: string } {
  let best: { path: PropertyKey[]; message: string } = { path: [], message: "invalid request" };
  const visit = (list: readonly z.core.$ZodIssue[], prefix: PropertyKey[]): void => {
    for (const issue of list) {
      const path = [...prefix, ...issue.path];
      if (path.length > best.path.length || best.path.length === 0) best = { path, message: issue.message };
      if (issue.code === "invalid_union") for (const branch of issue.errors) visit(branch, path);
    }
  };
  visit(issues, []);
  return best;
}

/** `["messages", 0, "content"]` → `messages[0].content`. */
function paramOf(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i > 0 ? "." : ""}${String(p)}`)).join("");
}
