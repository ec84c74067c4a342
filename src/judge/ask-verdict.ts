import type { ChatModel } from "../upstream/chat-model.js";
import type { Safety } from "./judge.js";
import { parseVerdict } from "./parse-verdict.js";

export interface AskVerdictOptions {
  /** Who asks, for error messages ("judge" → "judge model failed: …", "unreadable judge reply: …"). */
  role: string;
  /** Calls before giving up on an upstream error or an unreadable reply. */
  maxAttempts: number;
  /** The verdict is one word; a little room for models that explain. */
  maxTokens: number;
  signal?: AbortSignal;
}

/**
 * Asks a model a safe/unsafe question at temperature 0 and reads the reply with `parseVerdict`,
 * retrying failed calls and unreadable replies. Rejects with the last reason when no attempt gave a
 * verdict: a caller must never take that as "safe".
 */
export async function askVerdict(model: ChatModel, prompt: string, o: AskVerdictOptions): Promise<{ verdict: Safety; reply: string }> {
  const maxAttempts = Math.max(1, o.maxAttempts);
  let lastError = "";
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (o.signal?.aborted) throw new Error(`${o.role} aborted`);
    let reply: string;
    try {
      reply = await model.chat({ messages: [{ role: "user", content: prompt }], maxTokens: o.maxTokens, temperature: 0, signal: o.signal });
    } catch (err) {
      lastError = `${o.role} model failed: ${err instanceof Error ? err.message : String(err)}`;
      continue;
    }
    const parsed = parseVerdict(reply);
    if ("verdict" in parsed) return { verdict: parsed.verdict, reply };
    lastError = `unreadable ${o.role} reply: ${parsed.error}`;
  }
  throw new Error(`${lastError} (after ${maxAttempts} attempt${maxAttempts === 1 ? "" : "s"})`);
}
