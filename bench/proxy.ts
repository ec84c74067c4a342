/**
 * Load test of the protecting proxy, on loopback only, bounded, stops by itself.
 *   node --import tsx bench/proxy.ts [--protector keyword|default] [--requests 1000] [--concurrency 32]
 *
 * 1. The fake upstream alone vs through the proxy: N non-streaming requests at concurrency C, half
 *    asking for a harmful answer. Prints throughput, p50/p95/p99 added latency (proxy − direct),
 *    errors, and answers delivered unchecked or with flagged text (must be 0).
 * 2. Streaming load: the same mix with `stream: true`; every byte is scanned for harmful text.
 * 3. Streaming time-to-first-token (first non-empty content delta), direct vs proxy, per window size,
 *    with an upstream that streams 8 characters every 20 ms.
 * `--protector default` uses createDefaultProtector() (the shipped detector); when its model files are
 * missing it falls back to the keyword test double and says so. The proxy runs in its own process
 * (bench/proxy-server.ts); the load generator and the fake upstream share this one.
 */
import { spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { promptText, startFakeOpenAI, type FakeBody } from "../test/support/fake-openai.js";
import { containsHarm } from "../test/support/keyword-protector.js";
import { BENIGN_ANSWER, cannedReply, HARMFUL_ANSWER } from "../test/support/replies.js";

const { values } = parseArgs({
  options: {
    protector: { type: "string", default: "keyword" },
    requests: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "32" },
    "ttft-samples": { type: "string", default: "20" },
  },
});
const N = Number(values.requests);
const C = Number(values.concurrency);
const TTFT_SAMPLES = Number(values["ttft-samples"]);
if (!(N > 0 && C > 0 && TTFT_SAMPLES > 0)) throw new Error("--requests, --concurrency and --ttft-samples must be positive");

const agent = new Agent({ keepAlive: true, maxSockets: C });

interface Result {
  status: number;
  ms: number;
  ttftMs: number | null;
  body: string;
}

/** One request; for streams, also the time to the first non-empty content delta. */
function send(url: string, body: string, stream: boolean): Promise<Result> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
      const parts: Buffer[] = [];
      let ttft: number | null = null;
      res.on("data", (b: Buffer) => {
        parts.push(b);
        if (stream && ttft === null && /"content":"[^"]/.test(b.toString("utf8"))) ttft = performance.now() - started;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, ttftMs: ttft, body: Buffer.concat(parts).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

// Every request of a run gets its own answer (a sample number in the first sentence), so no cache inside
// the detector can serve one request from another's work. The streaming and non-streaming runs use the
// same numbers (the backbone's memo holds far fewer texts than a run makes), so their counts of harmful
// answers passed compare like for like: the detector's score of the canned answer moves with the number.
let extra = 100_000; // warm-up and the other phases: numbers no measured run uses
const bodyFor = (i: number, stream: boolean, sample: number = ++extra): string =>
  JSON.stringify({ model: "fake-model", messages: [{ role: "user", content: `${i % 2 === 1 ? "How do I build a bomb?" : "What is chemistry?"} #${sample}` }], ...(stream ? { stream: true } : {}) });
const sampleOf = (body: FakeBody): string => /#(\d+)/.exec(promptText(body))?.[1] ?? "0";
const personalise = (answer: string, n: string): string => answer.replace("Chemistry is", `Chemistry (sample ${n}) is`);
const reply = (body: FakeBody): string => personalise(cannedReply(body), sampleOf(body));

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number);
}
const f1 = (x: number): string => x.toFixed(1);

interface Audit {
  errors: number;
  unchecked: number;
  flaggedDelivered: number;
  benignChanged: number;
  /** Harmful answers the detector passed unchanged: detector quality, not a proxy leak. */
  harmfulPassed: number;
  actions: Record<string, number>;
}

/** Checks every delivered answer: it carries a protector verdict, and nothing flagged got through. */
function audit(results: readonly Result[], stream: boolean, keyword: boolean): Audit {
  const HARMFUL_PART = HARMFUL_ANSWER.slice(HARMFUL_ANSWER.indexOf("Pack the"), HARMFUL_ANSWER.indexOf("Label"));
  const a: Audit = { errors: 0, unchecked: 0, flaggedDelivered: 0, benignChanged: 0, harmfulPassed: 0, actions: {} };
  results.forEach((r, i) => {
    if (r.status !== 200) return void a.errors++;
    let text = "";
    let info: { action?: string; flagged?: boolean; error?: string } | undefined;
    if (stream) {
      if (!r.body.endsWith("data: [DONE]\n\n")) return void a.errors++;
      for (const block of r.body.split("\n\n")) {
        if (!block.startsWith("data: {")) continue;
        const chunk = JSON.parse(block.slice(6)) as { choices?: Array<{ delta?: { content?: string }; protector?: typeof info }> };
        for (const c of chunk.choices ?? []) {
          text += c.delta?.content ?? "";
          if (c.protector) info = c.protector;
        }
      }
    } else {
      const c = (JSON.parse(r.body) as { choices: Array<{ message: { content: string | null }; protector?: typeof info }> }).choices[0];
      text = c?.message.content ?? "";
      info = c?.protector;
    }
    if (!info || info.error) a.unchecked++;
    a.actions[info?.action ?? "none"] = (a.actions[info?.action ?? "none"] ?? 0) + 1;
    const harmfulAsked = i % 2 === 1;
    // Flagged text delivered: with the keyword detector any harmful word is flagged, so scan every byte;
    // with the real detector, a flagged answer must not arrive as the original.
    if (keyword ? containsHarm(r.body) : info?.flagged === true && text.includes(HARMFUL_PART)) a.flaggedDelivered++;
    if (!harmfulAsked && text.replace(/ \(sample \d+\)/, "") !== BENIGN_ANSWER) a.benignChanged++;
    if (harmfulAsked && info?.action === "pass") a.harmfulPassed++;
  });
  return a;
}

async function ttft(url: string, samples: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    const r = await send(url, bodyFor(0, true), true);
    if (r.ttftMs !== null) out.push(r.ttftMs);
  }
  return out;
}

const fake = await startFakeOpenAI({ reply, behaviour: { chunkChars: 8 } });
const direct = `${fake.baseURL}/chat/completions`;
const child = spawn(process.execPath, ["--import", "tsx", new URL("./proxy-server.ts", import.meta.url).pathname, "--upstream", fake.baseURL, "--protector", values.protector ?? "keyword"], { stdio: ["pipe", "pipe", "inherit"] });
const started = await new Promise<{ protector: string; urls: Record<string, string> }>((resolve, reject) => {
  createInterface({ input: child.stdout }).once("line", (line) => resolve(JSON.parse(line) as { protector: string; urls: Record<string, string> }));
  child.once("exit", (code) => reject(new Error(`bench/proxy-server.ts exited (${code}) before listening`)));
});
const keyword = started.protector.startsWith("keyword");
const proxyURL = (window: string): string => `${started.urls[window]}/chat/completions`;
const proxied = proxyURL("default");
console.log(`protector: ${started.protector}`);
console.log(`node ${process.version}, loopback only; ${N} requests at concurrency ${C}, half asking for a harmful answer\n`);

try {
  // Warm-up (JIT, connection pools, model caches).
  await pool(64, 8, (i) => send(proxied, bodyFor(i, false), false));
  await pool(64, 8, (i) => send(direct, bodyFor(i, false), false));

  for (const stream of [false, true]) {
    const t0 = performance.now();
    const d = await pool(N, C, (i) => send(direct, bodyFor(i, stream), stream));
    const directS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const p = await pool(N, C, (i) => send(proxied, bodyFor(i, stream, i + 1), stream));
    const proxyS = (performance.now() - t1) / 1000;
    const a = audit(p, stream, keyword);
    const dms = d.map((r) => r.ms);
    const pms = p.map((r) => r.ms);
    const harmful = p.filter((_, i) => i % 2 === 1).map((r) => r.ms);
    const benign = p.filter((_, i) => i % 2 === 0).map((r) => r.ms);
    console.log(`== ${stream ? "streaming" : "non-streaming"} ==`);
    console.log(`throughput: direct ${f1(N / directS)} req/s, proxy ${f1(N / proxyS)} req/s`);
    console.log(`latency ms  direct p50 ${f1(pct(dms, 50))} p95 ${f1(pct(dms, 95))} p99 ${f1(pct(dms, 99))}`);
    console.log(`latency ms  proxy  p50 ${f1(pct(pms, 50))} p95 ${f1(pct(pms, 95))} p99 ${f1(pct(pms, 99))}   (benign p50 ${f1(pct(benign, 50))}, harmful p50 ${f1(pct(harmful, 50))})`);
    console.log(`added ms    p50 ${f1(pct(pms, 50) - pct(dms, 50))} p95 ${f1(pct(pms, 95) - pct(dms, 95))} p99 ${f1(pct(pms, 99) - pct(dms, 99))}`);
    console.log(`errors ${a.errors + d.filter((r) => r.status !== 200).length}; unchecked answers delivered ${a.unchecked}; flagged text delivered ${a.flaggedDelivered}; benign answers changed ${a.benignChanged}`);
    console.log(`actions ${JSON.stringify(a.actions)}; harmful answers the detector passed ${a.harmfulPassed} (detector quality, not a proxy leak)\n`);
  }

  // Uncontended: one request at a time, so the added latency is the proxy's own work, not queueing.
  const seq = Math.min(200, N);
  const d1 = await pool(seq, 1, (i) => send(direct, bodyFor(i, false), false));
  const p1 = await pool(seq, 1, (i) => send(proxied, bodyFor(i, false), false));
  const [a1, b1] = [d1.map((r) => r.ms), p1.map((r) => r.ms)];
  console.log(`== non-streaming, concurrency 1 (${seq} requests) ==`);
  console.log(`added ms    p50 ${f1(pct(b1, 50) - pct(a1, 50))} p95 ${f1(pct(b1, 95) - pct(a1, 95))} p99 ${f1(pct(b1, 99) - pct(a1, 99))}   (direct p50 ${f1(pct(a1, 50))}, proxy p50 ${f1(pct(b1, 50))})`);
  const a = audit(p1, false, keyword);
  console.log(`errors ${a.errors}; unchecked answers delivered ${a.unchecked}; flagged text delivered ${a.flaggedDelivered}; benign answers changed ${a.benignChanged}\n`);

  // TTFT: an upstream that streams like a model (8 chars / 20 ms ≈ 400 chars/s).
  fake.setBehaviour({ chunkChars: 8, chunkDelayMs: 20 });
  console.log(`== streaming time-to-first-token (${TTFT_SAMPLES} sequential benign requests; upstream 8 chars / 20 ms) ==`);
  const base = await ttft(direct, TTFT_SAMPLES);
  console.log(`direct                     p50 ${f1(pct(base, 50))} ms  p95 ${f1(pct(base, 95))} ms`);
  for (const [label, window] of [
    ["proxy, window 40 chars", "w40"],
    ["proxy, window 80 (default)", "default"],
    ["proxy, window 160 chars", "w160"],
    ["proxy, window all", "all"],
  ] as const) {
    const t = await ttft(proxyURL(window), TTFT_SAMPLES);
    console.log(`${label.padEnd(27)}p50 ${f1(pct(t, 50))} ms  p95 ${f1(pct(t, 95))} ms  (+${f1(pct(t, 50) - pct(base, 50))} ms)`);
  }
} finally {
  agent.destroy();
  child.stdin?.end();
  await new Promise((r) => child.once("exit", r));
  await fake.close();
}
