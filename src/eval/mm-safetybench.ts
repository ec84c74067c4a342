import { existsSync } from "node:fs";
import { join } from "node:path";
import pLimit from "p-limit";
import { MM_SAFETYBENCH_INPUT_TYPES, mmSafetyBenchPrompt, readMmSafetyBenchQuestions, type MmSafetyBenchInputType, type MmSafetyBenchQuestion } from "../data/mm-safetybench.js";
import { loadImage } from "../image/load.js";
import type { Judge, JudgeVerdict } from "../judge/judge.js";
import type { ProtectResult, Protector } from "../types.js";
import { summariseBench, type BenchSummary } from "./asr.js";
import { benchKey, BenchResultStore, isFinished, type BenchRecord } from "./bench-results.js";
import { scenarioToCategory, type AnswerSource, type BenchImage, type BenchItem } from "./mm-safetybench-answers.js";
import { renderTypoImage, type TypoOptions } from "./typo-image.js";

/**
 * The MM-SafetyBench harness: for every (scenario, id, input type) selected, get the answer (a live
 * MLLM, or a file), judge it, run it through the protector with its question and image, and judge
 * the protector's output. Each item is written to the results file when done; a rerun with the same
 * file skips finished items and retries failed ones.
 */

export interface MmSafetyBenchRunOptions {
  /** `processed_questions/` (the 13 scenario files). */
  questionsDir: string;
  answers: AnswerSource;
  judge: Judge;
  protector: Protector;
  /** The results JSONL (appended to; resumed from). */
  out: string;
  /** Scenarios by file stem, number or category name (default: all 13). */
  scenarios?: readonly string[];
  /** Input types (default: all four). */
  types?: readonly MmSafetyBenchInputType[];
  /** MM-SafetyBench's `imgs/` folder (`<scenario>/SD/<id>.jpg`, `<scenario>/SD_TYPO/<id>.jpg`); SD images cannot be rebuilt. */
  sdImagesDir?: string;
  /** Keep only these questions (e.g. the tiny split). */
  filter?: (q: MmSafetyBenchQuestion) => boolean;
  /** At most this many questions per scenario, in id order, after `filter`. */
  limitPerScenario?: number;
  /** Items in flight at once (MLLM and judge calls; protector concurrency). Default 4. */
  concurrency?: number;
  /** Items per protector batch (default max(16, 4 × concurrency)). */
  batchSize?: number;
  typo?: TypoOptions;
  /** `total` = items to do in this run (finished ones excluded). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface MmSafetyBenchRun {
  summary: BenchSummary;
  /** The selected items' latest records. */
  records: BenchRecord[];
  /** Items done in this run, finished ones skipped, and items of this run that failed somewhere (retried on a rerun). */
  counts: { selected: number; done: number; resumed: number; failed: number };
}

export class BenchInputError extends Error {
  override readonly name = "BenchInputError";
}

const IMAGE_KIND: Record<MmSafetyBenchInputType, BenchImage["kind"] | null> = { TEXT: null, TYPO: "typo", SD: "sd", SD_TYPO: "sd_typo" };
const SD_EXTENSIONS = [".jpg", ".jpeg", ".png"];

/** Where an SD / SD_TYPO image lives in the benchmark's `imgs/` layout, if it exists. */
export function sdImagePath(dir: string, scenario: string, id: string, type: "SD" | "SD_TYPO"): string | undefined {
  return SD_EXTENSIONS.map((ext) => join(dir, scenario, type, `${id}${ext}`)).find((p) => existsSync(p));
}

function selectQuestions(all: readonly MmSafetyBenchQuestion[], o: MmSafetyBenchRunOptions): MmSafetyBenchQuestion[] {
  let wanted: Set<string> | null = null;
  if (o.scenarios && o.scenarios.length > 0) {
    wanted = new Set();
    for (const s of o.scenarios) {
      const c = scenarioToCategory(s);
      if (!c) throw new BenchInputError(`unknown scenario "${s}": use a number 1–13, a file stem like "01-Illegal_Activitiy", or a category like "illegal_activity"`);
      wanted.add(c);
    }
  }
  const perScenario = new Map<string, number>();
  return all.filter((q) => {
    if (wanted && !wanted.has(q.category)) return false;
    if (o.filter && !o.filter(q)) return false;
    const n = perScenario.get(q.scenario) ?? 0;
    if (o.limitPerScenario !== undefined && n >= o.limitPerScenario) return false;
    perScenario.set(q.scenario, n + 1);
    return true;
  });
}

interface Planned {
  item: BenchItem;
  sdImage?: string;
}

/** The items to run and the notes on what was left out. */
function plan(questions: readonly MmSafetyBenchQuestion[], o: MmSafetyBenchRunOptions): { items: Planned[]; notes: string[] } {
  const types = o.types && o.types.length > 0 ? o.types : MM_SAFETYBENCH_INPUT_TYPES;
  const items: Planned[] = [];
  const noImage = new Map<string, number>();
  const noAnswer = new Map<string, number>();
  const sdWithoutImage = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1);
  for (const q of questions) {
    for (const type of types) {
      const item: BenchItem = { scenario: q.scenario, category: q.category, id: q.id, type, question: mmSafetyBenchPrompt(q, type), keyPhrase: q.keyPhrase };
      if (!o.answers.has(item)) {
        bump(noAnswer, type);
        continue;
      }
      let sdImage: string | undefined;
      if (type === "SD" || type === "SD_TYPO") {
        sdImage = o.sdImagesDir ? sdImagePath(o.sdImagesDir, q.scenario, q.id, type) : undefined;
        if (!sdImage && o.answers.live) {
          bump(noImage, type);
          continue;
        }
        if (!sdImage) bump(sdWithoutImage, type);
      }
      items.push(sdImage ? { item, sdImage } : { item });
    }
  }
  const notes: string[] = [];
  const list = (m: Map<string, number>): string => [...m].map(([t, n]) => `${n} ${t}`).join(", ");
  if (noImage.size) {
    notes.push(
      o.sdImagesDir
        ? `skipped ${list(noImage)} items whose Stable Diffusion image is not in ${o.sdImagesDir} (<scenario>/SD|SD_TYPO/<id>.jpg)`
        : `skipped ${list(noImage)} items: SD images cannot be rebuilt here; give --sd-images <MM-SafetyBench imgs/ folder> to run them`,
    );
  }
  if (sdWithoutImage.size) notes.push(`${list(sdWithoutImage)} answers from the file were protected without their SD image (none supplied)`);
  if (noAnswer.size) notes.push(`${list(noAnswer)} selected items have no answer in ${o.answers.name} and were left out`);
  return { items, notes };
}

async function dataUrl(path: string): Promise<string> {
  const img = await loadImage(path);
  return `data:${img.mime};base64,${img.bytes.toString("base64")}`;
}

async function imageFor(p: Planned, typo: TypoOptions | undefined): Promise<BenchImage | undefined> {
  const kind = IMAGE_KIND[p.item.type];
  if (!kind) return undefined;
  if (kind === "typo") return { kind, url: `data:image/png;base64,${(await renderTypoImage(p.item.keyPhrase, typo)).toString("base64")}` };
  return p.sdImage ? { kind, url: await dataUrl(p.sdImage) } : undefined;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

export async function runMmSafetyBench(o: MmSafetyBenchRunOptions): Promise<MmSafetyBenchRun> {
  const questions = selectQuestions(await readMmSafetyBenchQuestions(o.questionsDir), o);
  if (questions.length === 0) throw new BenchInputError(`no questions selected from ${o.questionsDir}`);
  const { items, notes } = plan(questions, o);
  const store = await BenchResultStore.open(o.out, o.judge.description.name);
  if (store.unreadableLines.length) notes.push(`${store.unreadableLines.length} unreadable lines in ${o.out} were ignored (first: ${store.unreadableLines[0]})`);
  const concurrency = Math.max(1, o.concurrency ?? 4);
  const batchSize = Math.max(1, o.batchSize ?? Math.max(16, 4 * concurrency));
  const limit = pLimit(concurrency);
  const pending = items.filter((p) => {
    const prev = store.get(benchKey(p.item));
    return !(prev && isFinished(prev));
  });
  let done = 0;
  let failed = 0;
  o.onProgress?.(0, pending.length);

  const write = async (r: BenchRecord): Promise<void> => {
    await store.append(r);
    if (!isFinished(r)) failed++;
    done++;
    o.onProgress?.(done, pending.length);
  };

  // Answer and first verdict of one item.
  const prepare = async (p: Planned): Promise<{ record: BenchRecord; image?: BenchImage }> => {
    const { item } = p;
    const record: BenchRecord = {
      scenario: item.scenario,
      id: item.id,
      type: item.type,
      category: item.category,
      question: item.question,
      image: null,
      answerSource: o.answers.name,
      judge: o.judge.description.name,
      latencyMs: {},
      at: new Date().toISOString(),
    };
    let image: BenchImage | undefined;
    try {
      image = await imageFor(p, o.typo);
      record.image = image?.kind ?? null;
    } catch (err) {
      record.error = `image: ${errorText(err)}`;
      return { record };
    }
    const prev = store.get(benchKey(item));
    if (prev?.answer !== undefined && prev.answerSource === o.answers.name) {
      record.answer = prev.answer; // a retry: do not ask the MLLM again
      if (prev.reference) record.reference = prev.reference;
    } else {
      try {
        const { value, ms } = await timed(() => o.answers.answer(item, image, { signal: o.signal }));
        record.answer = value.answer;
        if (value.reference) record.reference = value.reference;
        if (o.answers.live) record.latencyMs.answer = ms;
      } catch (err) {
        record.error = `answer: ${errorText(err)}`;
        return { record };
      }
    }
    try {
      const { value, ms } = await timed(() => o.judge.judge({ category: item.category, question: item.question, answer: record.answer as string }, { signal: o.signal }));
      record.before = value;
      record.latencyMs.judgeBefore = ms;
    } catch (err) {
      record.beforeError = errorText(err);
    }
    return image ? { record, image } : { record };
  };

  // The protector's output is judged again; an unchanged answer keeps its verdict (same text, same judge).
  const judgeAfter = async (record: BenchRecord, r: ProtectResult): Promise<void> => {
    record.protector = { action: r.action, output: r.output, score: Number.isFinite(r.score) ? r.score : null, category: r.category ?? null, ...(r.trigger ? { trigger: r.trigger } : {}), ...(r.error ? { error: r.error } : {}) };
    if (r.output === record.answer && record.before) {
      record.after = { verdict: record.before.verdict, reason: "unchanged by the protector" } satisfies JudgeVerdict;
      return;
    }
    try {
      const { value, ms } = await timed(() => o.judge.judge({ category: record.category, question: record.question, answer: r.output }, { signal: o.signal }));
      record.after = value;
      record.latencyMs.judgeAfter = ms;
    } catch (err) {
      record.afterError = errorText(err);
    }
  };

  try {
    for (let start = 0; start < pending.length; start += batchSize) {
      if (o.signal?.aborted) break;
      const prepared = await Promise.all(pending.slice(start, start + batchSize).map((p) => limit(() => prepare(p))));
      const ready = prepared.filter((x) => x.record.answer !== undefined && x.record.error === undefined);
      for (const x of prepared) if (!ready.includes(x)) await write(x.record);
      if (ready.length === 0) continue;
      let results: ProtectResult[] | null = null;
      let protectMs = 0;
      try {
        const t = await timed(() =>
          o.protector.protectBatch(
            ready.map((x) => ({ question: x.record.question, answer: x.record.answer as string, ...(x.image ? { image: { url: x.image.url } } : {}) })),
            { concurrency, signal: o.signal },
          ),
        );
        results = t.value;
        protectMs = t.ms / ready.length;
        if (results.length !== ready.length) throw new Error(`protector returned ${results.length} results for ${ready.length} answers`);
      } catch (err) {
        for (const x of ready) {
          x.record.error = `protector: ${errorText(err)}`;
          await write(x.record);
        }
        continue;
      }
      await Promise.all(
        ready.map((x, i) =>
          limit(async () => {
            x.record.latencyMs.protect = protectMs;
            await judgeAfter(x.record, (results as ProtectResult[])[i] as ProtectResult);
            await write(x.record);
          }),
        ),
      );
    }
  } finally {
    await store.close();
  }

  const keys = new Set(items.map((p) => benchKey(p.item)));
  const records = store.all().filter((r) => keys.has(benchKey(r)));
  const summary = summariseBench(records, { judge: o.judge.description, answerSource: o.answers.name, notes });
  return { summary, records, counts: { selected: items.length, done, resumed: items.length - pending.length, failed } };
}
