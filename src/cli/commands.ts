import { writeFile } from "node:fs/promises";
import { z } from "zod";
import { loadDefaultModels, createDefaultProtector } from "../defaults.js";
import type { Detoxifier } from "../detoxifier/detoxifier.js";
import { binaryMetrics, type BinaryMetrics } from "../eval/metrics.js";
import { createLlmConfirmedRequestChecker } from "../request/llm-confirmed.js";
import type { RequestVerdict } from "../request/request-checker.js";
import type { ProtectResult } from "../types.js";
import type { ChatModel } from "../upstream/chat-model.js";
import { createOpenAICompatibleModel } from "../upstream/openai-compatible.js";
import { checkFile, checkLineSchema, formatVerdict, MAX_ANSWER_CHARS } from "./check.js";
import type { ProtectCliOptions } from "./index.js";
import { JsonlWriter, progressBar, readInputLines } from "./io.js";

function oneItem(o: { question?: string; answer?: string; input?: string }): { question?: string; answer: string } | null {
  if (o.input && o.answer !== undefined) throw new Error("give either --input or --answer, not both");
  if (o.input) return null;
  if (o.answer === undefined) throw new Error("give --input <file> or --answer <text>");
  if (!o.answer.trim()) throw new Error("--answer is empty");
  if (o.answer.length > MAX_ANSWER_CHARS) throw new Error(`--answer is longer than ${MAX_ANSWER_CHARS} characters`);
  return { question: o.question, answer: o.answer };
}

export async function runCheck(o: { input?: string; output: string; question?: string; answer?: string; threshold?: number; model?: string; batch: number; fastPath?: boolean; json?: boolean }): Promise<number> {
  const item = oneItem(o);
  const { detector } = await loadDefaultModels({ modelPath: o.model, threshold: o.threshold, fastPath: o.fastPath });
  try {
    if (item) {
      const [v] = await detector.score([item]);
      if (!v) throw new Error("detector returned no verdict");
      process.stdout.write(o.json ? `${JSON.stringify(v)}\n` : `${formatVerdict(v, item.answer)}\n`);
      return 0;
    }
    const r = await checkFile(detector, o.input as string, o.output, o.batch);
    process.stderr.write(`checked ${r.scored} answers: ${r.flagged} flagged${r.failed ? `, ${r.failed} lines failed` : ""}\n`);
    return r.failed > 0 ? 1 : 0;
  } finally {
    await detector.close();
  }
}

/** A line of labelled answers (`eval detector`, the probes): 1 harmful, 0 harmless. */
export const labelledLineSchema = z.object({ question: z.string().optional(), answer: z.string().min(1, "answer is empty"), label: z.union([z.literal(0), z.literal(1)]) });

export async function runEvalDetector(o: { input: string; threshold?: number; model?: string; fastPath?: boolean; json?: boolean }): Promise<number> {
  const { lines, failed } = await readInputLines(o.input, labelledLineSchema);
  if (lines.length === 0) throw new Error(`${o.input}: no valid labelled lines`);
  const { detector } = await loadDefaultModels({ modelPath: o.model, threshold: o.threshold, fastPath: o.fastPath });
  const scores: number[] = [];
  const bar = progressBar(lines.length, "eval");
  try {
    for (let i = 0; i < lines.length; i += 64) {
      const batch = lines.slice(i, i + 64);
      const v = await detector.score(batch.map((l) => ({ question: l.value.question, answer: l.value.answer })));
      scores.push(...v.map((x) => x.score));
      bar.increment(batch.length);
    }
  } finally {
    bar.stop();
    await detector.close();
  }
  printMetrics(binaryMetrics(scores, lines.map((l) => l.value.label), detector.threshold), failed, o.json);
  return failed > 0 ? 1 : 0;
}

const labelledRequestSchema = z.object({ question: z.string().min(1, "question is empty"), label: z.union([z.literal(0), z.literal(1)]) });

/** The request check on labelled prompts (text only): the same table as `eval detector`. */
export interface EvalRequestCliOptions {
  input: string;
  threshold?: number;
  model?: string;
  confirmRequests?: string;
  llmUrl?: string;
  llmKey?: string;
  llmTimeout: number;
  json?: boolean;
}

export async function runEvalRequest(o: EvalRequestCliOptions): Promise<number> {
  const confirmWith = confirmingModel(o);
  const { lines, failed } = await readInputLines(o.input, labelledRequestSchema);
  if (lines.length === 0) throw new Error(`${o.input}: no valid labelled lines`);
  const { createEmbeddedRequestChecker } = await import("../request/embedded.js");
  const embedded = await createEmbeddedRequestChecker({ modelPath: o.model, threshold: o.threshold });
  const checker = confirmWith ? createLlmConfirmedRequestChecker({ checker: embedded, model: confirmWith }) : embedded;
  const verdicts: RequestVerdict[] = [];
  try {
    for (let i = 0; i < lines.length; i += 64) verdicts.push(...(await checker.checkBatch(lines.slice(i, i + 64).map((l) => ({ question: l.value.question })))));
  } finally {
    await checker.close();
  }
  const labels = lines.map((l) => l.value.label);
  // With a confirming model the flags are the verdicts' own (an LLM may clear a score above the threshold).
  const metrics = binaryMetrics(verdicts.map((v) => v.score), labels, checker.threshold, verdicts.map((v) => v.flagged));
  printMetrics(metrics, failed, o.json);
  if (confirmWith) {
    const asked = verdicts.filter((v) => v.confirmation);
    const cleared = asked.filter((v) => v.confirmation && "verdict" in v.confirmation && v.confirmation.verdict === "safe").length;
    const errors = asked.filter((v) => v.confirmation && "error" in v.confirmation).length;
    process.stderr.write(`confirmed by ${confirmWith.name}: ${asked.length} flagged requests asked, ${cleared} cleared, ${errors} without an answer (flag kept)\n`);
  }
  return failed > 0 ? 1 : 0;
}

/** The model `--confirm-requests` names, on the `--llm-url` server; undefined without the option. */
function confirmingModel(o: { confirmRequests?: string; llmUrl?: string; llmKey?: string; llmTimeout: number }): ChatModel | undefined {
  if (!o.confirmRequests) return undefined;
  if (!o.llmUrl) throw new Error("--confirm-requests needs --llm-url (the server that runs the model)");
  return createOpenAICompatibleModel({ baseURL: o.llmUrl, model: o.confirmRequests, apiKey: o.llmKey ?? process.env.OPENAI_API_KEY, timeoutMs: o.llmTimeout });
}

function printMetrics(m: BinaryMetrics, failedLines: number, json: boolean | undefined): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ ...m, failedLines })}\n`);
    return;
  }
  const rows: Array<[string, string]> = [
    ["n", String(m.n)],
    ["harmful", String(m.positives)],
    ["threshold", m.threshold.toFixed(4)],
    ["accuracy", m.accuracy.toFixed(4)],
    ["precision", m.precision.toFixed(4)],
    ["recall", m.recall.toFixed(4)],
    ["F1", m.f1.toFixed(4)],
    ["AUROC", m.auroc.toFixed(4)],
    ["FPR", m.fpr.toFixed(4)],
  ];
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(10)} ${v.padStart(8)}`).join("\n")}\n`);
}

const protectLineSchema = checkLineSchema.extend({ image: z.string().optional() });

export async function runProtect(o: ProtectCliOptions): Promise<number> {
  const item = oneItem(o);
  const rewriters = await rewritersFor(o);
  const confirmWith = confirmingModel(o);
  const protector = await createDefaultProtector({
    rewriters,
    threshold: o.threshold,
    ...(o.detectorModel ? { modelPath: o.detectorModel } : {}),
    policies: o.policies ? undefined : [],
    onError: o.onError,
    concurrency: o.concurrency,
    ...(o.contentFloor !== undefined ? { contentFloor: o.contentFloor } : {}),
    requestCheck: { threshold: o.requestThreshold, ...(confirmWith ? { confirmWith } : {}) },
  });
  try {
    if (item) {
      const r = await protector.protect(item);
      process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `${formatResult(r)}\n`);
      return r.error ? 1 : 0;
    }
    const { lines, failed } = await readInputLines(o.input as string, protectLineSchema);
    const writer = new JsonlWriter(o.output);
    const bar = progressBar(lines.length, "protect");
    const counts: Record<string, number> = {};
    let errors = 0;
    try {
      for (let i = 0; i < lines.length; i += 64) {
        const batch = lines.slice(i, i + 64);
        const results = await protector.protectBatch(
          batch.map((l) => ({ question: l.value.question, answer: l.value.answer, image: l.value.image ? { url: l.value.image } : undefined })),
          { concurrency: o.concurrency },
        );
        for (const [k, l] of batch.entries()) {
          const r = results[k] as ProtectResult;
          counts[r.action] = (counts[r.action] ?? 0) + 1;
          if (r.error) {
            errors++;
            process.stderr.write(`error: ${o.input}:${l.line}: ${r.error} (answer ${r.action === "pass" ? "passed unchecked" : "refused"})\n`);
          }
          await writer.write({
            ...l.value,
            output: r.output,
            flagged: r.flagged,
            score: r.score,
            category: r.category ?? null,
            action: r.action,
            trigger: r.trigger ?? null,
            explanation: r.explanation,
            // What the request check said (null without one), and why the protector failed closed, if it did.
            request: r.request ? { score: r.request.score, flagged: r.request.flagged, signals: r.request.signals } : null,
            ...(r.error ? { error: r.error } : {}),
          });
        }
        bar.increment(batch.length);
      }
    } finally {
      bar.stop();
      await writer.close();
    }
    process.stderr.write(`protected ${lines.length} answers: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")}${failed ? `; ${failed} lines failed` : ""}\n`);
    return failed + errors > 0 ? 1 : 0;
  } finally {
    await protector.close();
  }
}

async function rewritersFor(o: ProtectCliOptions): Promise<Detoxifier[]> {
  if (o.detoxifier === "embedded") return [];
  if (o.detoxifier === "gguf") {
    if (!o.gguf) throw new Error("--detoxifier gguf needs --gguf <model.gguf>");
    const { createGgufDetoxifier } = await import("../detoxifier/gguf.js");
    // No --llm-timeout here: a CPU model may rightly take longer than an HTTP server.
    const detox = createGgufDetoxifier({ modelPath: o.gguf, loraPath: o.lora });
    await detox.load(); // a missing file or package fails now, not on every flagged answer
    return [detox];
  }
  if (o.gguf || o.lora) throw new Error("--gguf and --lora go with --detoxifier gguf");
  if (!o.llmUrl || !o.llmModel) throw new Error(`--detoxifier ${o.detoxifier} needs --llm-url and --llm-model`);
  const common = { baseURL: o.llmUrl, model: o.llmModel, apiKey: o.llmKey ?? process.env.OPENAI_API_KEY, timeoutMs: o.llmTimeout };
  if (o.detoxifier === "llm") {
    const { createLlmDetoxifier } = await import("../detoxifier/llm.js");
    return [createLlmDetoxifier(common)];
  }
  const { createSelfRewriteDetoxifier } = await import("../detoxifier/self-rewrite.js");
  return [createSelfRewriteDetoxifier(common)];
}

function formatResult(r: ProtectResult): string {
  const head = `${r.action.toUpperCase()} (score ${Number.isNaN(r.score) ? "n/a" : r.score.toFixed(3)}${r.category ? `, category ${r.category}` : ""})`;
  return [head, `why: ${r.explanation}`, "", r.output].join("\n");
}

export async function runDataDetox(o: { out: string; data?: string; pku?: string }): Promise<number> {
  const { buildDetoxSftFromData } = await import("../train/detox-data.js");
  const counts = await buildDetoxSftFromData({ out: o.out, dataDir: o.data, pkuFile: o.pku });
  process.stderr.write(`${JSON.stringify(counts, null, 2)}\n`);
  return 0;
}

export interface EvalProtectorCliOptions {
  data?: string;
  out?: string;
  json?: boolean;
  contentFloor?: number | "detector";
  detectorModel?: string;
  threshold?: number;
  requestThreshold?: number;
}

export async function runEvalProtector(o: EvalProtectorCliOptions): Promise<number> {
  const { resolveDataDir } = await import("../data/paths.js");
  const { evaluateProtector, formatProtectorReport } = await import("../eval/protector-suite.js");
  const protector = await createDefaultProtector({
    ...(o.contentFloor !== undefined ? { contentFloor: o.contentFloor } : {}),
    ...(o.detectorModel ? { modelPath: o.detectorModel } : {}),
    threshold: o.threshold,
    requestCheck: { threshold: o.requestThreshold },
  });
  const progress: { bar?: ReturnType<typeof progressBar> } = {};
  try {
    const report = await evaluateProtector(protector, resolveDataDir(o.data), (done, total) => {
      progress.bar ??= progressBar(total, "eval");
      progress.bar.update(done);
    });
    if (o.out) await writeFile(o.out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(o.json ? `${JSON.stringify(report)}\n` : `${formatProtectorReport(report)}\n`);
    return 0;
  } finally {
    progress.bar?.stop();
    await protector.close();
  }
}
