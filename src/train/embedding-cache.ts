import { createHash } from "node:crypto";
import { mkdirSync, openSync, readFileSync, writeSync, closeSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Backbone } from "../detector/backbones/backbone.js";

/** Bumped when the embeddings a backbone id gives change (v2: USE-lite int8 one text per call, fused attention). */
const CACHE_FORMAT = 2;

/**
 * A disk cache of backbone embeddings for training runs (embedding ~100k texts takes minutes).
 * Keyed by the exact text and the backbone id, so a hit returns exactly what the backbone computed:
 * it never changes results, as the backbone embeds a text the same in any batch. Inference never uses it.
 */
export function cachedBackbone(backbone: Backbone, dir: string, onProgress?: (done: number, total: number) => void): Backbone & { misses: number } {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${backbone.id.replace(/[^\w.-]+/g, "_")}-${backbone.dim}-v${CACHE_FORMAT}.bin`);
  const recordBytes = 16 + backbone.dim * 4;
  const store = new Map<string, Float32Array>();
  if (existsSync(file)) {
    const buf = readFileSync(file);
    const whole = buf.byteLength - (buf.byteLength % recordBytes); // ignore a torn last record
    for (let off = 0; off < whole; off += recordBytes) {
      const key = buf.subarray(off, off + 16).toString("hex");
      const vec = new Float32Array(backbone.dim);
      Buffer.from(vec.buffer).set(buf.subarray(off + 16, off + recordBytes));
      store.set(key, vec);
    }
  }
  const keyOf = (text: string): string => createHash("md5").update(text).digest("hex");
  const self = {
    id: backbone.id,
    dim: backbone.dim,
    misses: 0,
    async embed(texts: readonly string[]): Promise<Float32Array[]> {
      const keys = texts.map(keyOf);
      const missing = [...new Set(keys.map((k, i) => (store.has(k) ? -1 : i)).filter((i) => i >= 0).map((i) => texts[i] as string))];
      const chunk = 2048;
      for (let i = 0; i < missing.length; i += chunk) {
        const part = missing.slice(i, i + chunk);
        const vecs = await backbone.embed(part);
        const fd = openSync(file, "a");
        try {
          part.forEach((text, j) => {
            const key = keyOf(text);
            const vec = vecs[j] as Float32Array;
            store.set(key, vec);
            writeSync(fd, Buffer.concat([Buffer.from(key, "hex"), Buffer.from(vec.buffer, vec.byteOffset, vec.byteLength)]));
          });
        } finally {
          closeSync(fd);
        }
        self.misses += part.length;
        onProgress?.(Math.min(i + chunk, missing.length), missing.length);
      }
      return keys.map((k) => store.get(k) as Float32Array);
    },
    close: async () => backbone.close?.(),
  };
  return self;
}

/**
 * The training backbone: USE-lite (int8), cached on disk. It embeds a text the same whatever else is
 * embedded with it, so an embedding never depends on which texts were missing from the cache, and
 * the shipped heads rebuild bit for bit.
 */
export async function trainingBackbone(cacheDir: string, log: (line: string) => void): Promise<Backbone & { misses: number }> {
  const { createUseLiteBackbone } = await import("../detector/backbones/use-lite.js");
  let last = 0;
  return cachedBackbone(await createUseLiteBackbone(), cacheDir, (done, total) => {
    if (done === total || Date.now() - last > 10_000) {
      last = Date.now();
      log(`embedded ${done}/${total} new texts`);
    }
  });
}
