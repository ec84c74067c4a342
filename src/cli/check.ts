import { z } from "zod";
import type { HarmDetector } from "../detector/harm-detector.js";
import type { HarmVerdict } from "../types.js";
import { JsonlWriter, progressBar, readInputLines } from "./io.js";

export const MAX_ANSWER_CHARS = 200_000;

/** One input line of `check`: extra fields are kept and written back out. */
export const checkLineSchema = z.looseObject({
  id: z.union([z.string(), z.number()]).optional(),
  question: z.string().optional(),
  answer: z.string().refine((a) => a.trim().length > 0, "answer is empty").refine((a) => a.length <= MAX_ANSWER_CHARS, `answer is longer than ${MAX_ANSWER_CHARS} characters`),
});

/** Scores a JSONL file; returns the number of lines that failed (exit code is non-zero when > 0). */
export async function checkFile(detector: HarmDetector, input: string, output: string, batchSize = 64): Promise<{ scored: number; flagged: number; failed: number }> {
  const { lines, failed: badLines } = await readInputLines(input, checkLineSchema);
  const writer = new JsonlWriter(output);
  const bar = progressBar(lines.length, "check");
  let flagged = 0;
  let failed = badLines;
  let scored = 0;
  try {
    for (let i = 0; i < lines.length; i += batchSize) {
      const batch = lines.slice(i, i + batchSize);
      let verdicts: HarmVerdict[];
      try {
        verdicts = await detector.score(batch.map((l) => ({ question: l.value.question, answer: l.value.answer })));
      } catch (err) {
        failed += batch.length;
        process.stderr.write(`error: lines ${batch[0]?.line}-${batch.at(-1)?.line}: detector failed: ${(err as Error).message}\n`);
        bar.increment(batch.length);
        continue;
      }
      for (const [k, l] of batch.entries()) {
        const v = verdicts[k] as HarmVerdict;
        if (v.flagged) flagged++;
        scored++;
        await writer.write({ ...l.value, score: round(v.score), flagged: v.flagged });
      }
      bar.increment(batch.length);
    }
  } finally {
    bar.stop();
    await writer.close();
  }
  return { scored, flagged, failed };
}

export function formatVerdict(v: HarmVerdict, answer: string): string {
  const lines = [
    `${v.flagged ? "HARMFUL" : "harmless"}: score ${v.score.toFixed(3)} ${v.flagged ? ">=" : "<"} threshold ${v.threshold.toFixed(3)}`,
    `signals: ${Object.entries(v.signals)
      .filter(([k]) => k !== "fastPath")
      .map(([k, x]) => `${k} ${x >= 0 ? "+" : ""}${x.toFixed(2)}`)
      .join(", ")}`,
  ];
  if (v.signals.fastPath) lines.push("fast path: plainly benign from the whole answer, sentences not read (--no-fast-path reads them)");
  for (const s of v.topSpans ?? []) {
    const text = answer.slice(s.start, s.end).replace(/\s+/g, " ");
    lines.push(`  ${s.score.toFixed(2)}  "${text.length > 100 ? `${text.slice(0, 97)}...` : text}"`);
  }
  return lines.join("\n");
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
