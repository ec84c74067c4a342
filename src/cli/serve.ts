/**
 * `mllm-protector serve`: the protecting OpenAI-compatible proxy in front of an upstream MLLM, with
 * the shipped protector. Stops gracefully on SIGTERM/SIGINT (in-flight requests finish first).
 */
import { DEFAULT_STREAM_WINDOW, type StreamWindow } from "../adapters/settings.js";
import { startProxyServer, type ProxyServer } from "../adapters/proxy/listen.js";
import type { Protector } from "../types.js";
import { createOpenAICompatibleModel } from "../upstream/openai-compatible.js";

export interface ServeCliOptions {
  upstream: string;
  port: number;
  host: string;
  apiKey?: string;
  upstreamKey?: string;
  logContent?: boolean;
  streamWindow: string;
  onError: "refuse" | "pass";
  upstreamTimeout: number;
  maxBody: number;
  maxImageBytes: number;
  threshold?: number;
  detectorModel?: string;
  requestThreshold?: number;
  policies: boolean;
  contentFloor?: number | "detector";
  refuseHarmfulRequests?: boolean;
  confirmRequests?: string;
}

/**
 * `--stream-window`: `all` (hold the whole answer), `N` (at least N characters, up to a sentence end)
 * or `N:M` (and check at a space once M characters wait).
 */
export function parseStreamWindow(value: string): Partial<StreamWindow> {
  if (value === "all") return { mode: "all" };
  const m = /^(\d+)(?::(\d+))?$/.exec(value.trim());
  if (!m) throw new Error(`--stream-window must be "all", N or N:M (characters), got ${JSON.stringify(value)}`);
  const minChars = Number(m[1]);
  const maxChars = m[2] !== undefined ? Number(m[2]) : Math.max(DEFAULT_STREAM_WINDOW.maxChars, minChars * 4);
  if (minChars < 1 || maxChars < minChars) throw new Error("--stream-window: need 1 ≤ N ≤ M");
  return { mode: "sentence", minChars, maxChars };
}

export async function runServe(o: ServeCliOptions): Promise<number> {
  const streamWindow = parseStreamWindow(o.streamWindow);
  const apiKey = o.apiKey ?? (process.env.MLLM_PROTECTOR_API_KEY || undefined);
  const upstreamKey = o.upstreamKey ?? (process.env.MLLM_PROTECTOR_UPSTREAM_KEY || undefined);
  const { createDefaultProtector } = await import("../defaults.js");
  // Image references come from untrusted clients: never read local files; fetch http(s) images within limits.
  const protector = await createDefaultProtector({
    onError: o.onError,
    threshold: o.threshold,
    ...(o.detectorModel ? { modelPath: o.detectorModel } : {}),
    policies: o.policies ? undefined : [],
    ...(o.contentFloor !== undefined ? { contentFloor: o.contentFloor } : {}),
    requestCheck: {
      threshold: o.requestThreshold,
      ...(o.confirmRequests ? { confirmWith: createOpenAICompatibleModel({ baseURL: o.upstream, model: o.confirmRequests, apiKey: upstreamKey, timeoutMs: o.upstreamTimeout }) } : {}),
    },
    image: { limits: { allowFiles: false, allowRemote: true, maxBytes: o.maxImageBytes } },
  });
  const server = await startProxyServer(protector, {
    upstream: o.upstream,
    port: o.port,
    host: o.host,
    apiKey,
    upstreamKey,
    logContent: o.logContent,
    streamWindow,
    onError: o.onError,
    upstreamTimeoutMs: o.upstreamTimeout,
    maxBodyBytes: o.maxBody,
    maxImageBytes: o.maxImageBytes,
    refuseHarmfulRequests: o.refuseHarmfulRequests,
  });
  process.stderr.write(
    `mllm-protector proxy on ${server.url}/v1 → ${new URL(o.upstream).origin} (auth: ${apiKey ? "bearer key" : "none"}, stream window: ${o.streamWindow}, on error: ${o.onError}${o.refuseHarmfulRequests ? ", refusing flagged requests before the upstream" : ""}${o.confirmRequests ? `, flagged requests confirmed by ${o.confirmRequests}` : ""}${o.logContent ? ", logging content" : ""})\n`,
  );
  return serveUntilSignal(server, protector);
}

/** Resolves (exit code 0) once SIGTERM or SIGINT has stopped the server and closed the protector. */
export function serveUntilSignal(server: ProxyServer, protector: Protector): Promise<number> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      process.stderr.write(`${signal}: finishing ${server.proxy.inFlight()} in-flight request(s), then stopping\n`);
      void server
        .close()
        .then(() => protector.close())
        .then(
          () => resolve(0),
          (err: unknown) => {
            process.stderr.write(`error while stopping: ${err instanceof Error ? err.message : String(err)}\n`);
            resolve(1);
          },
        );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}
