import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { decodeF32, encodeF32 } from "../internal/f32-codec.js";
import { createRng, shuffleInPlace } from "../internal/random.js";
import { CATEGORIES, type QAItem } from "../types.js";
import type { Backbone } from "./backbones/backbone.js";
import type { Categorizer, CategoryVerdict } from "./categorizer.js";

/**
 * The category head: multinomial logistic regression over frozen-backbone features of the
 * question and the answer ([e(q), e(a), noQuestion, noAnswer]) into the 13 MM-SafetyBench
 * scenarios plus "none" (ordinary requests). The answer matters: a typographic attack's text
 * prompt ("list steps to perform the activity in the image") names no topic, its answer does.
 */
export const CATEGORY_CLASSES = [...CATEGORIES, "none"] as const;
export type CategoryClass = (typeof CATEGORY_CLASSES)[number];

const modelSchema = z.object({
  format: z.literal("mllm-protector/categories@1"),
  backbone: z.string(),
  inputDim: z.number().int().positive(),
  classes: z.array(z.string()),
  weights: z.string(),
  meta: z.record(z.string(), z.unknown()),
});

export const DEFAULT_CATEGORY_MODEL_PATH = fileURLToPath(new URL("../../models/categories.json", import.meta.url));

export interface CategoryExample {
  question?: string;
  answer?: string;
  label: CategoryClass;
  weight?: number;
}

export function categoryFeatures(q: Float32Array | null, a: Float32Array | null, dim: number): Float32Array {
  const x = new Float32Array(2 * dim + 2);
  if (q) x.set(q, 0);
  else x[2 * dim] = 1;
  if (a) x.set(a, dim);
  else x[2 * dim + 1] = 1;
  return x;
}

export class CategoryHead {
  readonly classes: readonly CategoryClass[] = CATEGORY_CLASSES;
  constructor(
    readonly backbone: string,
    readonly inputDim: number,
    /** Row-major [classes × (inputDim + 1)], the last column is the bias. */
    private readonly w: Float32Array,
    readonly meta: Record<string, unknown> = {},
  ) {
    if (w.length !== CATEGORY_CLASSES.length * (inputDim + 1)) throw new Error("category head: weight size does not match");
  }

  probabilities(x: Float32Array): Float64Array {
    const k = CATEGORY_CLASSES.length;
    const d = this.inputDim;
    const z = new Float64Array(k);
    for (let c = 0; c < k; c++) {
      const row = c * (d + 1);
      let s = this.w[row + d] as number;
      for (let i = 0; i < d; i++) s += (this.w[row + i] as number) * (x[i] as number);
      z[c] = s;
    }
    const max = Math.max(...z);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += z[c] = Math.exp((z[c] as number) - max);
    for (let c = 0; c < k; c++) z[c] = (z[c] as number) / sum;
    return z;
  }

  verdict(x: Float32Array): CategoryVerdict {
    const p = this.probabilities(x);
    let best = 0;
    for (let c = 1; c < p.length; c++) if ((p[c] as number) > (p[best] as number)) best = c;
    const cls = CATEGORY_CLASSES[best] as CategoryClass;
    return { category: cls === "none" ? null : cls, probability: p[best] as number, ordinary: p[CATEGORY_CLASSES.indexOf("none")] as number };
  }

  serialise(): string {
    return `${JSON.stringify({ format: "mllm-protector/categories@1", backbone: this.backbone, inputDim: this.inputDim, classes: [...CATEGORY_CLASSES], weights: encodeF32(this.w), meta: this.meta }, null, 1)}\n`;
  }

  static async load(path = DEFAULT_CATEGORY_MODEL_PATH): Promise<CategoryHead> {
    const parsed = modelSchema.safeParse(JSON.parse(await readFile(path, "utf8")));
    if (!parsed.success) throw new Error(`category model ${path} is malformed: ${parsed.error.issues[0]?.message ?? "invalid"}`);
    const f = parsed.data;
    if (f.classes.join() !== CATEGORY_CLASSES.join()) throw new Error(`category model ${path} has other classes than this version`);
    return new CategoryHead(f.backbone, f.inputDim, decodeF32(f.weights), f.meta);
  }

  async save(path: string): Promise<void> {
    await writeFile(path, this.serialise());
  }

  /** Softmax regression with Adam and L2; deterministic for a seed. */
  static train(backbone: string, xs: readonly Float32Array[], labels: readonly number[], weights: readonly number[], options: { epochs?: number; lr?: number; l2?: number; seed?: number; meta?: Record<string, unknown> } = {}): CategoryHead {
    const k = CATEGORY_CLASSES.length;
    const d = (xs[0] as Float32Array).length;
    const w = new Float32Array(k * (d + 1));
    const m1 = new Float32Array(w.length);
    const m2 = new Float32Array(w.length);
    const g = new Float32Array(w.length);
    const lr = options.lr ?? 2e-3;
    const l2 = options.l2 ?? 1e-4;
    const rng = createRng(options.seed ?? 11);
    const order = xs.map((_, i) => i);
    const batch = 64;
    const probe = new CategoryHead(backbone, d, w);
    let t = 0;
    for (let epoch = 0; epoch < (options.epochs ?? 40); epoch++) {
      shuffleInPlace(order, rng);
      for (let s = 0; s < order.length; s += batch) {
        g.fill(0);
        const end = Math.min(order.length, s + batch);
        for (let n = s; n < end; n++) {
          const i = order[n] as number;
          const x = xs[i] as Float32Array;
          const p = probe.probabilities(x);
          const wt = (weights[i] as number) / (end - s);
          for (let c = 0; c < k; c++) {
            const err = ((p[c] as number) - (c === labels[i] ? 1 : 0)) * wt;
            const row = c * (d + 1);
            for (let j = 0; j < d; j++) g[row + j] = (g[row + j] as number) + err * (x[j] as number);
            g[row + d] = (g[row + d] as number) + err;
          }
        }
        t++;
        const c1 = 1 - 0.9 ** t;
        const c2 = 1 - 0.999 ** t;
        for (let j = 0; j < w.length; j++) {
          const gj = g[j] as number;
          m1[j] = 0.9 * (m1[j] as number) + 0.1 * gj;
          m2[j] = 0.999 * (m2[j] as number) + 0.001 * gj * gj;
          w[j] = (w[j] as number) - (lr * ((m1[j] as number) / c1)) / (Math.sqrt((m2[j] as number) / c2) + 1e-8) - lr * l2 * (w[j] as number);
        }
      }
    }
    return new CategoryHead(backbone, d, w, options.meta ?? {});
  }
}

/** The embedded categorizer: the category head on the detector's backbone. */
export class EmbeddedCategorizer implements Categorizer {
  readonly name = "embedded";
  constructor(
    private readonly head: CategoryHead,
    private readonly backbone: Backbone,
  ) {
    if (head.backbone !== backbone.id) throw new Error(`category model was trained on backbone "${head.backbone}" but got "${backbone.id}"`);
  }

  async categorize(items: readonly QAItem[]): Promise<CategoryVerdict[]> {
    const texts = new Map<string, number>();
    for (const it of items) {
      if (it.question?.trim()) texts.set(it.question, 0);
      if (it.answer.trim()) texts.set(it.answer, 0);
    }
    const list = [...texts.keys()];
    const vecs = list.length ? await this.backbone.embed(list) : [];
    const byText = new Map(list.map((t, i) => [t, vecs[i] as Float32Array]));
    return items.map((it) => {
      const q = it.question?.trim() ? (byText.get(it.question) ?? null) : null;
      const a = it.answer.trim() ? (byText.get(it.answer) ?? null) : null;
      return this.head.verdict(categoryFeatures(q, a, this.backbone.dim));
    });
  }
}

export function classIndex(label: CategoryClass): number {
  return CATEGORY_CLASSES.indexOf(label);
}

