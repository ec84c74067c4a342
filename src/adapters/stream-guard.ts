/**
 * The held-back window, shared by the proxy, the openai-node wrapper and the AI SDK middleware.
 *
 * Text from the model is held per choice. A window is ready at the last sentence end that leaves at
 * least `minChars` new characters (or at a space once `maxChars` wait); the detector then screens
 * everything released so far plus the window, and only a passing window is released. Nothing is
 * ever sent and retracted. When a window is flagged, relaying the original stops; the protector
 * repairs the text received so far and its output is sent as a continuation (see `continuation`).
 * When the model finishes, the whole answer goes through `protect` (detector, policies, repair) and
 * the rest is released only if it passes; a repair is sent as a continuation. Tool calls, reasoning
 * and other model text are held to the end and screened then. Upstream chunks keep arriving while
 * the detector works; they are coalesced into the next window, so a slow detector means fewer,
 * larger checks, not a growing queue of them.
 */
import { MAX_STREAM_ANSWER_CHARS, type StreamWindow } from "./settings.js";
import type { HarmVerdict } from "../types.js";
import { continuation, guardAnswer, refusalOf, screenTrigger, type AnswerContext, type GuardOptions, type ProtectorInfo } from "./guard.js";

/** One upstream item, taken apart by a transport's codec. */
export type StreamPart<In> =
  /** Answer text of a choice: held back and screened. */
  | { kind: "text"; choice: number; text: string }
  /**
   * Other model output of a choice (tool calls, reasoning): held to the end and screened then.
   * `texts` maps a field (e.g. "tool_calls.0.arguments") to this item's fragment of it; fragments of
   * one field are concatenated before the screen, so a word split over chunks is screened whole.
   */
  | { kind: "extra"; choice: number; texts: Record<string, string>; item: In }
  /** Carries no model text (role, metadata): sent at once. */
  | { kind: "now"; item: In }
  /** Closes a choice (finish reason) or the stream (usage, `choice: null`): sent after the final check. */
  | { kind: "end"; choice: number | null; item: In }
  /** The upstream reported an error inside the stream. */
  | { kind: "error"; message: string };

/** How one transport's items are taken apart and built. */
export interface StreamCodec<In, Out> {
  split(item: In): Array<StreamPart<In>>;
  now(item: In): Out[];
  /** Released answer text of a choice. */
  text(choice: number, text: string): Out[];
  /**
   * The end of a choice: its held extras (null when withheld), its end items, the protector's info;
   * `replaced` says the answer was changed or cut short, so a finish reason like "tool_calls" or
   * "length" no longer describes what the client got.
   */
  close(choice: number, end: { info: ProtectorInfo; extras: In[] | null; ends: In[]; replaced: boolean }): Out[];
  /** After every choice is closed: the stream-level end items (usage). */
  trailer(ends: In[]): Out[];
}

export interface StreamGuardOptions extends GuardOptions {
  window: StreamWindow;
  /** Choices the upstream will produce (the request's `n`); once all are stopped, reading stops. */
  expectedChoices?: number;
  /** Stops the upstream (abort the request); called when the guard stops reading early or is closed. */
  abortUpstream?: () => void;
  /** Called once per choice with its outcome and texts (for logs; the original may be harmful). */
  onChoice?: (choice: number, info: ProtectorInfo, text: { original: string; output: string }) => void;
}

/** The upstream failed or sent something unusable mid-stream; what was sent before it was checked. */
export class UpstreamStreamError extends Error {
  override readonly name = "UpstreamStreamError";
}

interface ChoiceState {
  index: number;
  released: string;
  pending: string;
  extras: unknown[];
  /** Field → its text so far (see the "extra" part). */
  extraTexts: Map<string, string>;
  extraChars: number;
  ends: unknown[];
  closed: boolean;
}

/**
 * Pipe upstream items through the held-back window. The returned generator yields only items the
 * detector has passed (or that carry no model text). It throws `UpstreamStreamError` when the
 * upstream fails mid-stream, after which nothing more is sent.
 */
export async function* guardStream<In, Out>(source: AsyncIterable<In>, codec: StreamCodec<In, Out>, options: StreamGuardOptions, ctx: AnswerContext): AsyncGenerator<Out, void, undefined> {
  const pump = new Pump(source, options.abortUpstream);
  const choices = new Map<number, ChoiceState>();
  const trailers: In[] = [];
  const expected = options.expectedChoices ?? 1;
  let stopped = 0;
  const state = (index: number): ChoiceState => {
    let s = choices.get(index);
    if (!s) choices.set(index, (s = { index, released: "", pending: "", extras: [], extraTexts: new Map(), extraChars: 0, ends: [], closed: false }));
    return s;
  };

  // Ends a choice whose window was flagged (`verdict`: the window's), or could not be checked (null: fail closed).
  async function* stop(s: ChoiceState, verdict: HarmVerdict | null): AsyncGenerator<Out> {
    s.closed = true;
    stopped++;
    const sofar = s.released + s.pending;
    let output = refusalOf(options);
    let info: ProtectorInfo = { action: "refused", flagged: verdict !== null, score: null, category: null, trigger: verdict ? screenTrigger(verdict) : "check-failed", stopped: true };
    if (!verdict) info.error = "check_failed";
    else {
      try {
        const r = await options.protector.protect({ question: ctx.question, answer: sofar, image: ctx.image }, { signal: ctx.signal });
        // A "pass" here would release the window the detector just flagged: refuse instead.
        if (r.action !== "pass") {
          output = r.output;
          info = { action: r.action, flagged: true, score: Number.isFinite(r.score) ? r.score : null, category: r.category ?? null, trigger: r.trigger ?? info.trigger, stopped: true };
        }
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        info.error = "check_failed";
      }
    }
    if (s.extras.length > 0) info.withheld = true;
    const text = continuation(s.released, sofar, output);
    options.onChoice?.(s.index, info, { original: sofar, output: s.released + text });
    if (text) yield* codec.text(s.index, text);
    yield* codec.close(s.index, { info, extras: null, ends: s.ends as In[], replaced: true });
  }

  // Screens and releases every ready window of a choice.
  async function* release(s: ChoiceState): AsyncGenerator<Out> {
    for (let cut = cutPoint(s.pending, options.window); cut > 0 && !s.closed; cut = cutPoint(s.pending, options.window)) {
      const window = s.pending.slice(0, cut);
      let verdict: HarmVerdict | null = null;
      try {
        verdict = await options.protector.screen({ question: ctx.question, answer: s.released + window });
      } catch (err) {
        if (ctx.signal?.aborted) throw err;
        if (options.onError !== "pass") {
          yield* stop(s, null);
          return;
        }
        // onError "pass": released unchecked; the final check still runs
      }
      if (verdict?.flagged) {
        yield* stop(s, verdict);
        return;
      }
      s.released += window;
      s.pending = s.pending.slice(cut);
      yield* codec.text(s.index, window);
    }
  }

  // The upstream finished this choice: the whole answer goes through the protector.
  async function* finish(s: ChoiceState): AsyncGenerator<Out> {
    s.closed = true;
    const full = s.released + s.pending;
    const g = await guardAnswer(options, ctx, full, [...s.extraTexts.values()].join("\n"));
    const text = continuation(s.released, full, g.output);
    options.onChoice?.(s.index, g.info, { original: full, output: s.released + text });
    if (text) yield* codec.text(s.index, text);
    yield* codec.close(s.index, { info: g.info, extras: g.withhold ? null : (s.extras as In[]), ends: s.ends as In[], replaced: g.withhold || g.output !== full });
  }

  // Keeps a choice's text, extras and end items until they are decided.
  function hold(s: ChoiceState, part: Extract<StreamPart<In>, { kind: "text" | "extra" | "end" }>): void {
    if (s.closed) return;
    if (part.kind === "text") s.pending += part.text;
    else if (part.kind === "end") s.ends.push(part.item);
    else {
      s.extras.push(part.item);
      for (const [key, text] of Object.entries(part.texts)) {
        s.extraTexts.set(key, (s.extraTexts.get(key) ?? "") + text);
        s.extraChars += text.length;
      }
    }
    if (s.released.length + s.pending.length + s.extraChars > MAX_STREAM_ANSWER_CHARS) throw new UpstreamStreamError(`the answer is longer than ${MAX_STREAM_ANSWER_CHARS} characters`);
  }

  try {
    for (;;) {
      const { items, done } = await pump.take();
      for (const item of items) {
        for (const part of codec.split(item)) {
          if (part.kind === "now") yield* codec.now(part.item);
          else if (part.kind === "error") throw new UpstreamStreamError(part.message);
          else if (part.kind === "end" && part.choice === null) trailers.push(part.item);
          else hold(state(part.choice ?? 0), part);
        }
      }
      for (const s of choices.values()) if (!s.closed) yield* release(s);
      if (done) break;
      if (stopped >= expected && [...choices.values()].every((s) => s.closed)) {
        pump.close(); // everything is decided: stop the upstream generating
        break;
      }
    }
    for (const s of [...choices.values()].sort((a, b) => a.index - b.index)) if (!s.closed) yield* finish(s);
    yield* codec.trailer(trailers);
  } finally {
    pump.close();
  }
}

const SENTENCE_END = /[.!?;。！？；…]["'”’)\]]*(?=\s)|\n/g;

/**
 * Where the next window ends in `pending` (0: not ready): the last sentence end that leaves at least
 * `minChars`; failing that, once `maxChars` wait, the last space (a word is never cut, so a harmful
 * word cannot be released half before it is whole), or everything when there is no space at all.
 */
export function cutPoint(pending: string, w: StreamWindow): number {
  if (w.mode === "all" || pending.length < w.minChars) return 0;
  let cut = 0;
  SENTENCE_END.lastIndex = 0;
  for (let m = SENTENCE_END.exec(pending); m; m = SENTENCE_END.exec(pending)) {
    const end = m.index + m[0].length;
    if (end >= w.minChars) cut = end;
  }
  if (cut > 0 || pending.length < w.maxChars) return cut;
  const space = Math.max(pending.lastIndexOf(" "), pending.lastIndexOf("\t"));
  return space >= w.minChars ? space + 1 : pending.length;
}

/**
 * Reads the upstream in the background so it keeps flowing while the detector works; `take` hands
 * over everything that arrived since the last call.
 */
class Pump<T> {
  private items: T[] = [];
  private done = false;
  private error: unknown = null;
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly it: AsyncIterator<T>;

  constructor(source: AsyncIterable<T>, private readonly abort?: () => void) {
    this.it = source[Symbol.asyncIterator]();
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const r = await this.it.next();
        if (r.done || this.closed) break;
        this.items.push(r.value);
        this.notify();
      }
    } catch (err) {
      if (!this.closed) this.error = err ?? new Error("upstream stream failed");
    } finally {
      this.done = true;
      this.notify();
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async take(): Promise<{ items: T[]; done: boolean }> {
    while (this.items.length === 0 && !this.done) await new Promise<void>((r) => (this.wake = r));
    const items = this.items;
    this.items = [];
    if (items.length === 0 && this.error !== null) {
      const err = this.error;
      throw err instanceof UpstreamStreamError ? err : new UpstreamStreamError(err instanceof Error ? err.message : String(err));
    }
    return { items, done: this.done && this.error === null };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.done) {
      // Abort first: `return()` on a generator waits for its pending read, which may hang.
      this.abort?.();
      void this.it.return?.()?.catch(() => undefined);
    }
  }
}

/** A web ReadableStream from an async iterable; cancelling it closes the iterator. */
export function toReadableStream<T>(iterable: AsyncIterable<T>): ReadableStream<T> {
  const it = iterable[Symbol.asyncIterator]();
  return new ReadableStream<T>({
    async pull(controller) {
      try {
        const r = await it.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (err) {
        controller.error(err);
      }
    },
    async cancel() {
      await it.return?.();
    },
  });
}
