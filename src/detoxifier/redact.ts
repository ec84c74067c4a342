import type { HarmDetector } from "../detector/harm-detector.js";
import type { Category, SpanScore } from "../types.js";
import type { Detoxifier, DetoxInput, DetoxOutput } from "./detoxifier.js";
import { NotApplicableError } from "./errors.js";

export interface RedactionOptions {
  detector: HarmDetector;
  /** The remainder must keep at least this many characters to be worth showing. */
  minKeptChars?: number;
  /** At most this many rounds of "drop the worst span, re-score the rest". */
  maxRounds?: number;
  /**
   * Largest share of the answer's text that may be removed (default 0.5): past it, what is left is
   * fragments of a harmful answer, not an answer, and the chain moves on (to the refusal).
   */
  maxRemovedShare?: number;
}

const HARM_PHRASE: Partial<Record<Category, string>> = {
  illegal_activity: "could help with illegal activity",
  hate_speech: "contained hateful content",
  malware_generation: "could help build malware or attack systems",
  physical_harm: "could help someone cause physical harm",
  economic_harm: "could cause economic harm",
  fraud: "could help commit fraud or deception",
  sex: "contained explicit sexual content",
  privacy_violence: "could violate someone's privacy",
};

/**
 * Redaction (embedded, no LLM; not a detoxifier in the paper's sense: it only removes text).
 * Scores each sentence/step in the context of the question, drops the harmful ones — worst first,
 * re-scoring the remainder until the detector passes it — and keeps the harmless rest when it still
 * says something, behind a short note on what was removed and why.
 */
export function createRedaction(options: RedactionOptions): Detoxifier {
  const { detector } = options;
  const minKept = options.minKeptChars ?? 80;
  const maxRounds = options.maxRounds ?? 6;
  const maxRemovedShare = options.maxRemovedShare ?? 0.5;
  return {
    name: "redaction",
    async detoxify(input: DetoxInput): Promise<DetoxOutput> {
      if (!detector.scoreSpans) throw new NotApplicableError(`detector "${detector.name}" cannot score spans`);
      // The answer does what a harmful request asked: what redaction keeps would still serve it.
      if (input.trigger === "harmful-request") throw new NotApplicableError("the answer goes along with a harmful request");
      const scored = await detector.scoreSpans({ question: input.question, answer: input.answer });
      if (scored.length < 2) throw new NotApplicableError("answer too short to redact");
      const removed = new Set<number>();
      scored.forEach((s, i) => s.score >= detector.threshold && removed.add(i));
      const worstFirst = scored.map((s, i) => ({ s, i })).sort((a, b) => b.s.score - a.s.score);
      if (removed.size === 0) removed.add((worstFirst[0] as { i: number }).i);
      const total = scored.reduce((n, sp) => n + (sp.end - sp.start), 0);
      for (let round = 0; round < maxRounds; round++) {
        const removedChars = [...removed].reduce((n, i) => n + ((scored[i] as SpanScore).end - (scored[i] as SpanScore).start), 0);
        if (removedChars > maxRemovedShare * total) throw new NotApplicableError("most of the answer is harmful");
        const text = remainder(input.answer, scored, removed);
        if (text.length < minKept) break;
        const [verdict] = await detector.score([{ question: input.question, answer: text }]);
        if (verdict && !verdict.flagged) return finish(input, text, removed.size);
        const next = worstFirst.find(({ i }) => !removed.has(i));
        if (!next) break;
        removed.add(next.i);
      }
      throw new NotApplicableError("nothing useful is left once the harmful parts are removed");
    },
  };
}

function finish(input: DetoxInput, text: string, removedCount: number): DetoxOutput {
  const why = (input.category && HARM_PHRASE[input.category]) ?? "could cause harm";
  const parts = removedCount === 1 ? "one part" : `${removedCount} parts`;
  return {
    text: `[Safety note: ${parts} of this answer ${removedCount === 1 ? "was" : "were"} removed because ${removedCount === 1 ? "it" : "they"} ${why}.]\n\n${text}`,
    action: "redacted",
    note: `removed ${parts}`,
  };
}

/** The kept spans in order, with the original spacing between neighbours; lead-ins to removed parts go too. */
function remainder(answer: string, spans: readonly SpanScore[], removed: ReadonlySet<number>): string {
  let out = "";
  let prevKept = -2;
  spans.forEach((span, i) => {
    if (removed.has(i)) return;
    const text = answer.slice(span.start, span.end);
    // "Here are the steps:" introducing removed content says nothing on its own.
    if (/[:：]\s*$/.test(text) && removed.has(i + 1)) return;
    out += out ? (prevKept === i - 1 ? answer.slice((spans[i - 1] as SpanScore).end, span.start) : "\n") : "";
    out += text;
    prevKept = i;
  });
  return out.trim();
}
