import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { isMmSafetyBenchTiny, MM_SAFETYBENCH_INPUT_TYPES, readMmSafetyBenchTinyIds, type MmSafetyBenchInputType } from "../data/mm-safetybench.js";
import { resolveDataDir } from "../data/paths.js";
import { createDefaultProtector } from "../defaults.js";
import { formatBenchSummary } from "../eval/asr.js";
import { benignStats, evaluateBenign, loadBenignSets, type BenignSetStats } from "../eval/benign.js";
import { readAnswerFile, createMllmAnswerSource, type AnswerSource } from "../eval/mm-safetybench-answers.js";
import { runMmSafetyBench } from "../eval/mm-safetybench.js";
import type { RocInput } from "../eval/report/build.js";
import { createDetectorJudge } from "../judge/detector-judge.js";
import type { Judge } from "../judge/judge.js";
import { createLlmJudge } from "../judge/llm-judge.js";
import { hasAnswerPlaceholder, JUDGE_PROMPT_KINDS, type JudgePromptKind } from "../judge/prompts.js";
import type { Protector } from "../types.js";
import { createOpenAICompatibleModel } from "../upstream/openai-compatible.js";
import { progressBar, readInputLines } from "./io.js";

/** `mllm-protector bench mm-safetybench`: the benchmark harness from the command line. */

export interface BenchMmSafetyBenchCliOptions {
  questions?: string;
  data?: string;
  mllmUrl?: string;
  mllmModel?: string;
  mllmKey?: string;
  maxTokens: number;
  answers?: string;
  judge?: string;
  judgeUrl?: string;
  judgeModel?: string;
  judgeKey?: string;
  judgePrompts?: string;
  timeout: number;
  scenarios?: string;
  types?: string;
  sdImages?: string;
  limit?: number;
  tiny?: boolean | string;
  out: string;
  report?: string;
  roc?: string;
  rocName?: string;
  benign?: boolean;
  concurrency: number;
  threshold?: number;
  detectorModel?: string;
  requestThreshold?: number;
  policies: boolean;
  json?: boolean;
}

function parseTypes(list: string | undefined): MmSafetyBenchInputType[] | undefined {
  if (!list) return undefined;
  return list.split(",").map((t) => {
    const type = t.trim().toUpperCase();
    if (!(MM_SAFETYBENCH_INPUT_TYPES as readonly string[]).includes(type)) throw new Error(`--types: unknown input type "${t}" (use ${MM_SAFETYBENCH_INPUT_TYPES.join(", ")})`);
    return type as MmSafetyBenchInputType;
  });
}

const templatesSchema = z.strictObject(Object.fromEntries(JUDGE_PROMPT_KINDS.map((k) => [k, z.string().min(1).optional()])) as Record<JudgePromptKind, z.ZodOptional<z.ZodString>>);

async function readTemplates(path: string): Promise<Partial<Record<JudgePromptKind, string>>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new Error(`--judge-prompts ${path}: ${(err as Error).message}`);
  }
  const t = templatesSchema.safeParse(json);
  if (!t.success || Object.keys(t.data).length === 0) throw new Error(`--judge-prompts ${path}: expected an object with some of the keys ${JUDGE_PROMPT_KINDS.join(", ")}, each a template string`);
  const templates: Partial<Record<JudgePromptKind, string>> = {};
  for (const [k, v] of Object.entries(t.data) as Array<[JudgePromptKind, string | undefined]>) {
    if (v === undefined) continue;
    if (!hasAnswerPlaceholder(v)) throw new Error(`--judge-prompts ${path}: the "${k}" template has no {answer} (or {prediction}) placeholder`);
    templates[k] = v;
  }
  return templates;
}

async function answerSourceFor(o: BenchMmSafetyBenchCliOptions): Promise<{ source: AnswerSource; problems: string[] }> {
  if (o.answers && (o.mllmUrl || o.mllmModel)) throw new Error("give either --answers or --mllm-url/--mllm-model, not both");
  if (o.answers) {
    const file = await readAnswerFile(o.answers);
    if (file.count === 0) throw new Error(`${o.answers}: no answers read${file.problems.length ? ` (${file.problems[0]})` : ""}`);
    return { source: file.source, problems: file.problems };
  }
  if (!o.mllmUrl || !o.mllmModel) throw new Error("give the answers: --answers <file|dir>, or a live MLLM with --mllm-url and --mllm-model");
  const model = createOpenAICompatibleModel({ baseURL: o.mllmUrl, model: o.mllmModel, apiKey: o.mllmKey ?? process.env.OPENAI_API_KEY, timeoutMs: o.timeout });
  return { source: createMllmAnswerSource(model, { maxTokens: o.maxTokens }), problems: [] };
}

/** The judge options, checked before any model is loaded: "llm" or "detector". */
function judgeKind(o: BenchMmSafetyBenchCliOptions): "llm" | "detector" {
  const wantsLlm = o.judgeUrl !== undefined || o.judgeModel !== undefined;
  if (o.judge !== undefined && o.judge !== "detector") throw new Error(`--judge: only "detector" is a named judge; give --judge-url and --judge-model for an LLM judge`);
  if (o.judge === "detector" && wantsLlm) throw new Error("give either --judge detector or --judge-url/--judge-model, not both");
  if (wantsLlm && (!o.judgeUrl || !o.judgeModel)) throw new Error("an LLM judge needs both --judge-url and --judge-model");
  if (!wantsLlm && o.judgePrompts) throw new Error("--judge-prompts needs an LLM judge (--judge-url, --judge-model)");
  return wantsLlm ? "llm" : "detector";
}

function judgeFor(o: BenchMmSafetyBenchCliOptions, templates: Partial<Record<JudgePromptKind, string>> | undefined, protector: Protector, err: (text: string) => void): Judge {
  if (judgeKind(o) === "llm" && o.judgeUrl && o.judgeModel) {
    const model = createOpenAICompatibleModel({ baseURL: o.judgeUrl, model: o.judgeModel, apiKey: o.judgeKey ?? process.env.OPENAI_API_KEY, timeoutMs: o.timeout });
    return createLlmJudge({ model, templates });
  }
  err("note: no judge model given, so the protector's own detector judges; the ASR is not from an independent judge (see --judge-url/--judge-model)\n");
  return createDetectorJudge({ detector: { name: "embedded", score: (items) => Promise.all(items.map((i) => protector.screen(i))) } });
}

async function readRoc(path: string, name: string | undefined, threshold: number | undefined): Promise<{ roc: RocInput; failed: number }> {
  const { lines, failed } = await readInputLines(path, z.object({ score: z.number().min(0).max(1), label: z.union([z.literal(0), z.literal(1)]) }));
  if (lines.length === 0) throw new Error(`--roc ${path}: no lines with {score, label}`);
  return { roc: { name: name ?? path, scores: lines.map((l) => l.value.score), labels: lines.map((l) => l.value.label), threshold }, failed };
}

/** What the command needs from outside; tests pass a protector double and capture the output. */
export interface BenchDeps {
  /** Default: the shipped protector (`createDefaultProtector`). */
  protector?: Protector;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

export async function runBenchMmSafetyBench(o: BenchMmSafetyBenchCliOptions, deps: BenchDeps = {}): Promise<number> {
  const out = deps.stdout ?? ((t: string) => void process.stdout.write(t));
  const err = deps.stderr ?? ((t: string) => void process.stderr.write(t));
  const dataDir = resolveDataDir(o.data);
  const questionsDir = o.questions ?? join(dataDir, "mm-safetybench", "processed_questions");
  const types = parseTypes(o.types);
  const scenarios = o.scenarios?.split(",").map((s) => s.trim()).filter(Boolean);
  judgeKind(o);
  const templates = o.judgePrompts ? await readTemplates(o.judgePrompts) : undefined;
  const { source, problems } = await answerSourceFor(o);
  for (const p of problems.slice(0, 20)) err(`error: ${p}\n`);
  if (problems.length > 20) err(`error: … ${problems.length - 20} more problems in ${o.answers}\n`);
  let filter: Parameters<typeof runMmSafetyBench>[0]["filter"];
  if (o.tiny) {
    const tiny = await readMmSafetyBenchTinyIds(typeof o.tiny === "string" ? o.tiny : join(dirname(questionsDir), "TinyVersion_ID_List.json"));
    filter = (q) => isMmSafetyBenchTiny(tiny, q);
  }
  const roc = o.roc ? await readRoc(o.roc, o.rocName, o.threshold) : undefined;

  const protector = deps.protector ?? (await createDefaultProtector({ modelPath: o.detectorModel, threshold: o.threshold, requestCheck: { threshold: o.requestThreshold }, policies: o.policies ? undefined : [], concurrency: o.concurrency }));
  const stop = new AbortController();
  const onSigint = (): void => {
    err("\ninterrupted: finishing the items in flight; rerun the same command to resume\n");
    stop.abort(new Error("interrupted"));
  };
  process.once("SIGINT", onSigint);
  const bars: { bench?: ReturnType<typeof progressBar>; benign?: ReturnType<typeof progressBar> } = {};
  try {
    const judge = judgeFor(o, templates, protector, err);
    const run = await runMmSafetyBench({
      questionsDir,
      answers: source,
      judge,
      protector,
      out: o.out,
      scenarios,
      types,
      sdImagesDir: o.sdImages,
      filter,
      limitPerScenario: o.limit,
      concurrency: o.concurrency,
      signal: stop.signal,
      onProgress: (done, total) => {
        bars.bench ??= progressBar(total, "mm-safetybench");
        bars.bench.update(done);
      },
    });
    bars.bench?.stop();
    await judge.close?.();
    err(`${run.counts.done} items done, ${run.counts.resumed} already finished in ${o.out}${run.counts.failed ? `, ${run.counts.failed} failed (rerun to retry)` : ""}\n`);

    let benign: Record<string, BenignSetStats> | undefined;
    if (o.benign) {
      const sets = await loadBenignSets(dataDir);
      benign = await evaluateBenign(protector, sets, (done, total) => {
        bars.benign ??= progressBar(total, "benign");
        bars.benign.update(done);
      });
      bars.benign?.stop();
      // MM-SafetyBench answers the judge called safe are benign too: did the protector leave them alone?
      const safe = run.records.flatMap((r) => (r.before?.verdict === "safe" && r.protector && r.answer !== undefined ? [{ action: r.protector.action, output: r.protector.output, original: r.answer, trigger: r.protector.trigger }] : []));
      if (safe.length) benign["mm-safetybench (judged safe)"] = benignStats(safe);
    }

    if (o.report) {
      const { writeReport } = await import("../eval/report/build.js");
      const written = await writeReport(o.report, { bench: run.summary, benign, roc: roc?.roc });
      err(`wrote ${written.htmlPath} and ${written.jsonPath}\n`);
    }
    out(o.json ? `${JSON.stringify({ ...run.summary, benign: benign ?? null })}\n` : `${formatBenchSummary(run.summary)}\n`);
    const judgeErrors = run.summary.overall.before.errors + run.summary.overall.after.errors;
    return run.counts.failed + run.summary.failed + judgeErrors + problems.length + (roc?.failed ?? 0) > 0 || stop.signal.aborted ? 1 : 0;
  } finally {
    process.off("SIGINT", onSigint);
    bars.bench?.stop();
    bars.benign?.stop();
    await protector.close();
  }
}
