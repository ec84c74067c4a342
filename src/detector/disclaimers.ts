import { BE_CAREFUL, NOT_PROFESSIONAL } from "../policies.js";
import { sentenceSpans } from "./sentences.js";

/**
 * Disclaimers do not make an answer's content less harmful, but a frozen encoder reads them as signs
 * of a careful, harmless answer: a professional disclaimer put before a harmful answer took 82 of the
 * 461 GPTFuzz answers the detector flagged under its threshold. So an answer that carries disclaimer
 * sentences is also scored without them (like a jailbreak answer's plain view), and the higher score counts.
 */

// "This is for informational purposes only.", "Disclaimer: …", "I do not condone …", "Use at your own risk."
const GENERIC =
  /\b(?:disclaimer\b|for (?:informational|educational|entertainment|research) purposes only|i (?:do not|don't|would never) (?:condone|endorse|encourage|promote)|at your own risk|(?:is|are) not (?:meant|intended) (?:as|to be) (?:\w+ ){0,2}advice)/i;
/** Longer than this, a sentence is content that happens to mention care, not a disclaimer. */
const MAX_DISCLAIMER_CHARS = 300;
/** Less than this left once the disclaimers go: nothing worth scoring on its own. */
const MIN_LEFT_CHARS = 40;

/** Whether a sentence is a disclaimer (a professional caveat, a call for care, an "informational purposes only"). */
export function isDisclaimer(sentence: string): boolean {
  return sentence.length <= MAX_DISCLAIMER_CHARS && (NOT_PROFESSIONAL.test(sentence) || BE_CAREFUL.test(sentence) || GENERIC.test(sentence));
}

/** The answer with its disclaimer sentences cut out; null when it has none, or too little is left. */
export function withoutDisclaimers(answer: string): string | null {
  const spans = sentenceSpans(answer);
  const cut = spans.filter((s) => isDisclaimer(s.text));
  if (cut.length === 0) return null;
  let text = "";
  let at = 0;
  for (const s of cut) {
    text += answer.slice(at, s.start);
    at = s.end;
  }
  text = (text + answer.slice(at)).replace(/\n{3,}/g, "\n\n").trim();
  return text.length >= MIN_LEFT_CHARS ? text : null;
}
