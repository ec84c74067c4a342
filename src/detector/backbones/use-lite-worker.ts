/** One worker of the USE-lite pool (use-lite-pool.ts): an engine of its own, answering embed requests. */
import { parentPort, workerData } from "node:worker_threads";
import { createUseLiteEngine, type UseLiteEngine, type UseLiteEngineOptions } from "./use-lite.js";
import type { WorkerReply, WorkerRequest } from "./use-lite-pool.js";

const port = parentPort;
if (!port) throw new Error("use-lite-worker runs only as a worker thread");
const reply = (m: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);
const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

let engine: UseLiteEngine | undefined;
try {
  engine = await createUseLiteEngine(workerData as UseLiteEngineOptions);
  reply({ ready: true });
} catch (err) {
  reply({ ready: false, error: message(err) });
}

port.on("message", async ({ id, texts }: WorkerRequest) => {
  try {
    if (!engine) throw new Error("engine not loaded");
    const vectors = await engine.embed(texts);
    const flat = new Float32Array(vectors.length * (vectors[0]?.length ?? 0));
    vectors.forEach((v, i) => flat.set(v, i * v.length));
    reply({ id, vectors: flat }, [flat.buffer]);
  } catch (err) {
    reply({ id, error: message(err) });
  }
});
