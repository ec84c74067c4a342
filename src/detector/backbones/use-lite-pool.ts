/**
 * USE-lite in worker threads: each worker runs its own single-threaded ONNX Runtime session, and the
 * texts of a call are spread over the workers by length. A text's embedding does not depend on the
 * worker or on the other texts (int8 runs one text per call; see `UseLiteOptions.precision`).
 */
import { Worker } from "node:worker_threads";
import type { UseLiteEngine, UseLiteEngineOptions } from "./use-lite.js";

/** Worker → pool messages. */
export type WorkerReply = { ready: true } | { ready: false; error: string } | { id: number; vectors: Float32Array } | { id: number; error: string };
/** Pool → worker messages. */
export interface WorkerRequest {
  id: number;
  texts: string[];
}

interface Pending {
  resolve: (vectors: Float32Array) => void;
  reject: (err: Error) => void;
}

/** Starts a worker; in a checkout running TypeScript through tsx, the worker loads through tsx as well. */
function spawn(options: UseLiteEngineOptions): Worker {
  const here = import.meta.url;
  const typescript = here.endsWith(".ts");
  const entry = new URL(`./use-lite-worker.${typescript ? "ts" : "js"}`, here);
  if (!typescript) return new Worker(entry, { workerData: options });
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `const { register } = await import(${JSON.stringify(tsx)}); register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), { workerData: options });
}

class PoolWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | null = null;
  readonly ready: Promise<void>;

  constructor(options: UseLiteEngineOptions) {
    this.worker = spawn(options);
    this.ready = new Promise((resolve, reject) => {
      this.worker.on("message", (m: WorkerReply) => {
        if ("ready" in m) {
          if (m.ready) {
            this.idleUnref(); // an idle pool must not keep the process alive; a pending call does
            resolve();
          }
          else reject(this.fail(new Error(`USE-lite worker failed to start: ${m.error}`)));
          return;
        }
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.idleUnref();
        if ("error" in m) p.reject(new Error(`USE-lite worker: ${m.error}`));
        else p.resolve(m.vectors);
      });
      this.worker.on("error", (err) => reject(this.fail(new Error(`USE-lite worker crashed: ${err.message}`))));
      this.worker.on("exit", (code) => reject(this.fail(new Error(`USE-lite worker exited (code ${code})`))));
    });
  }

  embed(texts: string[]): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, texts } satisfies WorkerRequest);
    });
  }

  async terminate(): Promise<void> {
    this.failure ??= new Error("USE-lite backbone is closed");
    await this.worker.terminate();
  }

  private idleUnref(): void {
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(err: Error): Error {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.idleUnref();
    return err;
  }
}

export async function createUseLitePool(size: number, options: UseLiteEngineOptions): Promise<UseLiteEngine> {
  const workers = Array.from({ length: size }, () => new PoolWorker(options));
  try {
    await Promise.all(workers.map((w) => w.ready));
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }
  let closed = false;
  const inFlight = new Set<Promise<unknown>>();

  async function embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (closed) throw new Error("USE-lite backbone is closed");
    // Longest first, each to the worker with the least work so far (work ≈ characters, capped like the encoder's 128 pieces).
    const shares: number[][] = workers.map(() => []);
    const load = workers.map(() => 0);
    const order = texts.map((_, i) => i).sort((a, b) => (texts[b] as string).length - (texts[a] as string).length);
    for (const i of order) {
      const k = load.indexOf(Math.min(...load));
      (shares[k] as number[]).push(i);
      load[k] = (load[k] as number) + Math.min((texts[i] as string).length, 600) + 40;
    }
    const out = new Array<Float32Array>(texts.length);
    await Promise.all(
      workers.map(async (w, k) => {
        const share = shares[k] as number[];
        if (share.length === 0) return;
        const flat = await w.embed(share.map((i) => texts[i] as string));
        const dim = flat.length / share.length;
        share.forEach((i, j) => (out[i] = flat.slice(j * dim, (j + 1) * dim)));
      }),
    );
    return out;
  }

  return {
    embed(texts) {
      const job = embed(texts);
      inFlight.add(job);
      void job.finally(() => inFlight.delete(job)).catch(() => undefined);
      return job;
    },
    async close() {
      closed = true;
      await Promise.allSettled([...inFlight]);
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
