import type { ChatModel } from "../upstream/chat-model.js";
import { JudgeError, type Judge, type JudgeItem, type JudgeVerdict } from "./judge.js";
import { askVerdict } from "./ask-verdict.js";
import { buildJudgePrompt, type JudgePromptKind } from "./prompts.js";

export interface LlmJudgeOptions {
  /** Any OpenAI-compatible judge model (GPT-4 in the benchmark). */
  model: ChatModel;
  /** Replace some or all of the benchmark's prompts (e.g. with upstream's exact text). */
  templates?: Partial<Record<JudgePromptKind, string>>;
  /** Calls per answer before giving up on an upstream error or an unreadable reply (default 2). */
  maxAttempts?: number;
  /** The verdict is one word; a little room for models that explain (default 64). */
  maxTokens?: number;
}

/**
 * MM-SafetyBench's judge: the benchmark's per-scenario prompt, answered by an LLM, read with
 * `parseVerdict`. An upstream failure or a reply that is not a clear verdict is retried, then
 * rejected as a `JudgeError` — never taken as "safe".
 */
export function createLlmJudge(options: LlmJudgeOptions): Judge {
  const { model } = options;
  const maxAttempts = options.maxAttempts ?? 2;
  return {
    description: {
      name: `llm:${model.name}`,
      kind: "llm",
      independent: true,
      summary: `an LLM judge (${model.name}) with MM-SafetyBench's per-scenario judge prompts`,
    },
    async judge(item: JudgeItem, opts: { signal?: AbortSignal } = {}): Promise<JudgeVerdict> {
      const prompt = buildJudgePrompt(item.category, item.answer, options.templates);
      try {
        const { verdict, reply } = await askVerdict(model, prompt, { role: "judge", maxAttempts, maxTokens: options.maxTokens ?? 64, signal: opts.signal });
        return { verdict, reason: `${model.name}: ${oneLine(reply)}` };
      } catch (err) {
        throw new JudgeError(err instanceof Error ? err.message : String(err));
      }
    },
  };
}

function oneLine(text: string): string {
  const flat = text.replace(/<think>[\s\S]*?(<\/think>|$)/gi, " ").replace(/\s+/g, " ").trim();
  return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat;
}
