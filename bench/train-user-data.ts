/**
 * What training on your own data costs: `train detector` without and with a PKU-SafeRLHF file of N rows
 * (default 6,000), each in a child process, printing wall time and peak RSS. The rows are hh-rlhf
 * harmless-base pairs in PKU-SafeRLHF's format (first human turn → prompt; chosen → safe, rejected → unsafe),
 * each answer prefixed with a per-run tag so that the embedding cache, which ../shared's texts warm, has
 * never seen them: the difference between the two runs is the price of N new rows. Needs ../shared/data
 * and, to be quick, a warm cache (run `train detector` once). Writes only under the OS temp folder.
 * Run: node --import tsx bench/train-user-data.ts [rows]
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveDataDir } from "../src/data/paths.js";

const rows = Number(process.argv[2] ?? 6000);
if (!Number.isInteger(rows) || rows < 1) throw new Error("rows must be a positive integer");
const dataDir = resolveDataDir();
const dir = await mkdtemp(join(tmpdir(), "bench-user-data-"));
const tag = randomBytes(4).toString("hex");

// hh-rlhf dialogues → PKU-SafeRLHF rows (the human's first turn, the two final assistant replies).
const dialogues = (await readFile(join(dataDir, "hh-rlhf-harmless", "test.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { chosen: string; rejected: string });
const firstHuman = (d: string): string => d.split("\n\nAssistant:")[0]?.replace(/^\s*Human:\s*/, "").trim() ?? "";
const lastReply = (d: string): string => d.slice(d.lastIndexOf("\n\nAssistant:") + "\n\nAssistant:".length).trim();
const lines: string[] = [];
for (let i = 0; lines.length < rows; i++) {
  const d = dialogues[i % dialogues.length] as { chosen: string; rejected: string };
  const copy = Math.floor(i / dialogues.length);
  const prefix = `Response ${tag}${copy ? `-${copy}` : ""}: `;
  const [safe, unsafe] = [lastReply(d.chosen), lastReply(d.rejected)];
  if (!safe || !unsafe || safe === unsafe) continue;
  lines.push(JSON.stringify({ prompt: firstHuman(d.chosen), response_0: prefix + safe, response_1: prefix + unsafe, is_response_0_safe: true, is_response_1_safe: false, safer_response_id: 0 }));
}
const pku = join(dir, "pku.jsonl");
await writeFile(pku, `${lines.join("\n")}\n`);

/** One `train detector` run in a child process: wall seconds and peak RSS. */
function train(extra: string[]): { seconds: number; peakRssMb: number } {
  // --eval leaves no script path in argv, so the CLI gets a name in its place.
  const reportRss = "process.on('exit', () => process.stderr.write(`peak-rss-kb ${process.resourceUsage().maxRSS}\\n`));";
  const started = performance.now();
  const run = spawnSync(process.execPath, ["--import", "tsx", "--eval", `${reportRss} await import('./src/cli/index.ts');`, "--", "mllm-protector", "train", "detector", "--out", join(dir, "model.json"), ...extra], {
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`train detector failed:\n${run.stderr}`);
  const kb = Number(/peak-rss-kb (\d+)/.exec(run.stderr)?.[1] ?? Number.NaN);
  // What the run read and how many texts it had to embed.
  for (const line of run.stderr.split("\n")) if (/ train \d+, validation|embedded \d+\/\d+ new texts/.test(line)) console.log(`  ${line.replace(/, test sets:.*/, "")}`);
  return { seconds, peakRssMb: kb / 1024 };
}

try {
  const base = train([]);
  const withRows = train(["--pku", pku]);
  const extra = withRows.seconds - base.seconds;
  console.log(`train detector, ../shared only:        ${base.seconds.toFixed(0)} s, peak RSS ${base.peakRssMb.toFixed(0)} MB`);
  console.log(`… plus ${lines.length} PKU-SafeRLHF rows (${2 * lines.length} answers): ${withRows.seconds.toFixed(0)} s, peak RSS ${withRows.peakRssMb.toFixed(0)} MB`);
  console.log(`price of the new rows: ${extra.toFixed(0)} s, ${((1000 * extra) / lines.length).toFixed(0)} s per 1,000 rows`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
