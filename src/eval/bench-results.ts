import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { readJsonl } from "../data/jsonl.js";
import { MM_SAFETYBENCH_INPUT_TYPES, type MmSafetyBenchInputType } from "../data/mm-safetybench.js";
import { CATEGORIES } from "../types.js";
import { TRIGGERS } from "../policies.js";

/**
 * One line of the MM-SafetyBench results file per (scenario, id, type), written as soon as the item
 * is done, so that a run can stop and resume. A record with an `error`, a `beforeError` or an
 * `afterError` is unfinished: a resumed run does it again (reusing the stored answer) and the later
 * line replaces the earlier one.
 */

const verdictSchema = z.object({ verdict: z.enum(["safe", "unsafe"]), reason: z.string() });

export const benchRecordSchema = z.object({
  scenario: z.string().min(1),
  id: z.string().min(1),
  type: z.enum(MM_SAFETYBENCH_INPUT_TYPES),
  category: z.enum(CATEGORIES),
  /** The prompt sent with the input type (the benchmark's pairing). */
  question: z.string(),
  /** Which image travelled with the question (null for TEXT, or when none was available). */
  image: z.enum(["typo", "sd", "sd_typo"]).nullable(),
  answerSource: z.string(),
  judge: z.string(),
  answer: z.string().optional(),
  /** The verdict stored with the answer in its file (answers-gemini), to check the judge against. */
  reference: z.enum(["safe", "unsafe"]).optional(),
  before: verdictSchema.optional(),
  beforeError: z.string().optional(),
  protector: z
    .object({
      action: z.enum(["pass", "repaired", "rewritten", "redacted", "refused"]),
      output: z.string(),
      /** null when the detector failed (NaN does not survive JSON). */
      score: z.number().nullable(),
      category: z.enum(CATEGORIES).nullable(),
      /** Why the answer changed (absent when it passed, and in results written before this field). */
      trigger: z.enum(TRIGGERS).optional(),
      error: z.string().optional(),
    })
    .optional(),
  after: verdictSchema.optional(),
  afterError: z.string().optional(),
  /** A stage failed before both verdicts could be had (answer, image or protector). */
  error: z.string().optional(),
  latencyMs: z.object({ answer: z.number().optional(), judgeBefore: z.number().optional(), protect: z.number().optional(), judgeAfter: z.number().optional() }),
  at: z.string(),
});

export type BenchRecord = z.infer<typeof benchRecordSchema>;

export function benchKey(r: { scenario: string; id: string; type: MmSafetyBenchInputType }): string {
  return `${r.scenario}\u0000${r.id}\u0000${r.type}`;
}

/** Finished: an answer judged before and after protection, with no stage failing. */
export function isFinished(r: BenchRecord): boolean {
  return r.error === undefined && r.beforeError === undefined && r.afterError === undefined && r.before !== undefined && r.after !== undefined;
}

export class BenchConfigError extends Error {
  override readonly name = "BenchConfigError";
}

/** The results file: the latest record per key, and an append-only writer. */
export class BenchResultStore {
  private failure: Error | null = null;

  private constructor(
    readonly path: string,
    private readonly records: Map<string, BenchRecord>,
    private readonly out: WriteStream,
    /** Lines of the existing file that could not be read (a line cut by a crash, typically). */
    readonly unreadableLines: string[],
  ) {
    // A write error (disk full, …) must surface on the next append, not crash the process.
    out.on("error", (err) => {
      this.failure ??= err;
    });
  }

  /**
   * Open (or create) a results file. Existing records must come from the same judge: verdicts of two
   * judges must not be mixed in one ASR.
   */
  static async open(path: string, judgeName: string): Promise<BenchResultStore> {
    const records = new Map<string, BenchRecord>();
    const unreadable: string[] = [];
    let needsNewline = false;
    const size = await stat(path).then((s) => s.size, () => -1);
    if (size > 0) {
      for await (const line of readJsonl(path, benchRecordSchema)) {
        if ("error" in line) {
          unreadable.push(line.error);
          continue;
        }
        if (line.value.judge !== judgeName) {
          throw new BenchConfigError(
            `${path}:${line.line}: this results file was judged by "${line.value.judge}", not "${judgeName}": use the same judge to resume, or another --out`,
          );
        }
        records.set(benchKey(line.value), line.value);
      }
      needsNewline = !(await endsWithNewline(path, size));
    }
    await mkdir(dirname(path), { recursive: true });
    const out = createWriteStream(path, { flags: "a" });
    if (needsNewline) out.write("\n");
    return new BenchResultStore(path, records, out, unreadable);
  }

  private throwIfFailed(): void {
    if (this.failure) throw new Error(`cannot write ${this.path}: ${this.failure.message}`);
  }

  get(key: string): BenchRecord | undefined {
    return this.records.get(key);
  }

  /** All records (latest per key). */
  all(): BenchRecord[] {
    return [...this.records.values()];
  }

  async append(record: BenchRecord): Promise<void> {
    this.throwIfFailed();
    this.records.set(benchKey(record), record);
    if (this.out.write(`${JSON.stringify(record)}\n`)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.out.off("drain", done);
        this.out.off("error", done);
        resolve();
      };
      this.out.once("drain", done);
      this.out.once("error", done);
    });
    this.throwIfFailed();
  }

  async close(): Promise<void> {
    if (this.out.closed || this.out.destroyed) {
      this.throwIfFailed();
      return;
    }
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    this.throwIfFailed();
  }
}

async function endsWithNewline(path: string, size: number): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const buf = Buffer.alloc(1);
    await handle.read(buf, 0, 1, size - 1);
    return buf[0] === 0x0a;
  } finally {
    await handle.close();
  }
}
