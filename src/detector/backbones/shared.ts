import type { Backbone } from "./backbone.js";

/**
 * Lets the detector and the categorizer share one backbone without embedding the same text twice
 * when they look at the same request at the same moment: a bounded memo of in-flight and recent
 * embeddings keyed by the exact text. The backbone embeds a text the same in any batch (for USE-lite int8
 * see `UseLiteOptions.precision`), so this never changes results.
 */
export function sharedBackbone(backbone: Backbone, maxEntries = 1024): Backbone {
  const memo = new Map<string, Promise<Float32Array>>();
  const remember = (text: string, p: Promise<Float32Array>): void => {
    memo.set(text, p);
    if (memo.size > maxEntries) memo.delete(memo.keys().next().value as string);
    // A failed embedding must not be served from the memo.
    p.catch(() => memo.get(text) === p && memo.delete(text));
  };
  return {
    id: backbone.id,
    dim: backbone.dim,
    async embed(texts: readonly string[]): Promise<Float32Array[]> {
      const mine = new Map<string, Promise<Float32Array>>();
      for (const t of texts) {
        const hit = memo.get(t);
        if (hit) mine.set(t, hit);
      }
      const missing = [...new Set(texts.filter((t) => !mine.has(t)))];
      if (missing.length) {
        const run = backbone.embed(missing);
        missing.forEach((t, i) => {
          const p = run.then((vecs) => vecs[i] as Float32Array);
          mine.set(t, p);
          remember(t, p);
        });
      }
      return Promise.all(texts.map((t) => mine.get(t) as Promise<Float32Array>));
    },
    close: async () => backbone.close?.(),
  };
}
