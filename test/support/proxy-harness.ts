/**
 * A fake upstream + the protecting proxy on loopback, and a raw HTTP client that records every byte
 * the proxy sends (with arrival times), for the proxy tests and the benchmark.
 */
import { request as httpRequest } from "node:http";
import { startProxyServer, type ListenOptions, type ProxyServer } from "../../src/adapters/proxy/listen.js";
import type { ProxyLogEntry } from "../../src/adapters/proxy/server.js";
import type { Protector } from "../../src/types.js";
import { startFakeOpenAI, type FakeOpenAI, type FakeOpenAIOptions } from "./fake-openai.js";
import { keywordProtector } from "./keyword-protector.js";

export interface Harness {
  fake: FakeOpenAI;
  server: ProxyServer;
  protector: Protector;
  /** The proxy's base URL for OpenAI clients (`…/v1`). */
  baseURL: string;
  logs: ProxyLogEntry[];
  close(): Promise<void>;
}

export async function startHarness(options: { proxy?: Partial<ListenOptions>; fake?: FakeOpenAIOptions; protector?: Protector } = {}): Promise<Harness> {
  const fake = await startFakeOpenAI(options.fake);
  const protector = options.protector ?? keywordProtector();
  const logs: ProxyLogEntry[] = [];
  const server = await startProxyServer(protector, { upstream: fake.baseURL, port: 0, log: (e) => logs.push(e), ...options.proxy });
  return {
    fake,
    server,
    protector,
    baseURL: `${server.url}/v1`,
    logs,
    async close() {
      await server.close();
      await fake.close();
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Every body chunk as it arrived, with ms since the request started. */
  chunks: Array<{ atMs: number; bytes: Buffer }>;
  text: string;
  json(): unknown;
}

/** One HTTP request with no client library in between: exactly the bytes the server sent. */
export function rawRequest(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method ?? (init.body !== undefined ? "POST" : "GET"), headers: { "content-type": "application/json", ...init.headers } }, (res) => {
      const chunks: RawResponse["chunks"] = [];
      res.on("data", (b: Buffer) => chunks.push({ atMs: performance.now() - started, bytes: b }));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks.map((c) => c.bytes)).toString("utf8");
        resolve({
          status: res.statusCode ?? 0,
          headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")])),
          chunks,
          text,
          json: () => JSON.parse(text) as unknown,
        });
      });
    });
    req.on("error", reject);
    if (init.body !== undefined) req.write(init.body);
    req.end();
  });
}

/** POST a chat request (JSON) to the proxy. */
export function postChat(h: Pick<Harness, "baseURL">, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return rawRequest(`${h.baseURL}/chat/completions`, { body: JSON.stringify(body), headers });
}

export interface StreamChunk {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: Array<{ index: number; delta: { role?: string; content?: string }; finish_reason: string | null; protector?: { action: string; flagged: boolean; score: number | null; trigger?: string; stopped?: boolean } }>;
  usage?: unknown;
  error?: { message: string; type: string; code: string | null };
}

/** The `data:` payloads of an SSE body; `done` says whether it ended with `[DONE]`. */
export function sseEvents(text: string): { events: StreamChunk[]; done: boolean } {
  const events: StreamChunk[] = [];
  let done = false;
  for (const block of text.split("\n\n")) {
    if (!block.startsWith("data: ")) continue;
    const data = block.slice(6);
    if (data === "[DONE]") done = true;
    else events.push(JSON.parse(data) as StreamChunk);
  }
  return { events, done };
}

/** The assistant text a client assembles from the chunks of choice 0. */
export function streamedText(events: readonly StreamChunk[], choice = 0): string {
  return events.flatMap((e) => (e.choices ?? []).filter((c) => c.index === choice).map((c) => c.delta.content ?? "")).join("");
}

export const chatBody = (content: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ model: "fake-model", messages: [{ role: "user", content }], ...extra });
