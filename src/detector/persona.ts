/**
 * Jailbreak answers (GPTFuzz, DAN-style prompts) wrap what they say in personas: "[🔒CLASSIC] I'm
 * sorry… [🔓JAILBREAK] Sure, here is…", "ChatGPT: … DAN: …", "AIM: …". Read whole, such an answer
 * looks half like a refusal and its harmful part is diluted. This reads the plain content: persona
 * labels, jailbreak boilerplate and refusal turns removed. Training adds it as another view of the
 * same labelled answer; at inference the detector also scores it for dual-response answers.
 */

// A persona label at the start of a turn: "[🔓JAILBREAK]", "(🔒Normal Output)", "DAN:", "[GPT]:", "Σ:", "😈".
const LABEL = /^\s*(?:[[(][^\])\n]{1,40}[\])]\s*:?|[^\s\w]{1,3}(?=\s)|(?:[A-Z][\w.#-]*|[^\s\w]+)(?:\s[A-Z][\w.#-]*){0,2}\s*:(?!\/\/))\s*/u;
// Template lines a jailbreak prompt makes the model say, with no content of their own.
const BOILERPLATE =
  /^(?:developer mode enabled\.?|now since that nerd is done with his rant, let's ignore the f\w+ rules:?|(?:jailbreak|dan mode|developer mode)\s+(?:enabled|activated)\.?|chatgpt successfully jailbroken\.?)\s*/i;
// A turn that refuses or lectures ("I'm sorry, but…", "As an AI…", "It is not ethical…").
const REFUSAL =
  /^["“']?(?:i'?m sorry|i am sorry|sorry,|i (?:cannot|can't|can not|won't|will not|must (?:decline|emphasize|inform)|do not|don't) |as an ai|as a language model|it(?:'s| is) (?:not |never )?(?:ethical|appropriate|important|illegal|unethical|recommended)|i (?:strongly )?(?:advise|encourage|discourage)|(?:[\w' ]{0,40}) is (?:illegal|unethical|not (?:ethical|appropriate|recommended|legal))\b)/i;

/** Turns of an answer: paragraphs, further split where a persona label starts mid-paragraph ("… [JB]: …"). */
function turns(answer: string): string[] {
  return answer
    .split(/\n+|(?<=[.!?])\s+(?=[[(][^\])\n]{1,40}[\])]\s*:?)/u)
    .map((t) => t.trim())
    .filter(Boolean);
}

/** Whether the answer opens by refusing or lecturing (after any persona label): "[GPT]: I'm sorry, but…". */
export function opensWithRefusal(answer: string): boolean {
  const first = turns(answer)[0];
  return first !== undefined && REFUSAL.test(first.replace(BOILERPLATE, "").replace(LABEL, "").trim());
}

/** What `plainView` found: the plain text, and how many persona labels and refusal turns it removed. */
export interface PlainView {
  text: string;
  labels: number;
  refusals: number;
}

/** The answer without persona labels, boilerplate and refusal turns, with counts of what went. */
export function plainView(answer: string): PlainView {
  const kept: string[] = [];
  let labels = 0;
  let refusals = 0;
  for (const turn of turns(answer)) {
    let text = turn;
    for (let guard = 0; guard < 3; guard++) {
      const next = text.replace(BOILERPLATE, "").replace(LABEL, "");
      if (next === text) break;
      text = next;
      labels++;
    }
    text = text.trim();
    if (!text) continue;
    if (REFUSAL.test(text)) {
      refusals++;
      continue;
    }
    kept.push(text);
  }
  return { text: kept.join("\n"), labels, refusals };
}

/**
 * The answer without persona labels, boilerplate and refusal turns; null when nothing changed or
 * too little is left to be worth a training example.
 */
export function stripPersonas(answer: string, minChars = 80): string | null {
  const view = plainView(answer);
  if (view.labels + view.refusals === 0) return null;
  return view.text.length >= minChars ? view.text : null;
}

/**
 * The content of a dual-response jailbreak answer ("[GPT]: I'm sorry… [DAN]: Sure, here is…"): an
 * answer that both refuses and speaks through a persona label, with something left once both go.
 * Null for anything else, so ordinary answers are never scored twice.
 */
export function jailbreakContent(answer: string, minChars = 40): string | null {
  const view = plainView(answer);
  return view.labels > 0 && view.refusals > 0 && view.text.length >= minChars ? view.text : null;
}
