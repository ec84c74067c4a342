import { opensWithRefusal } from "./detector/persona.js";
import type { Category, HarmVerdict } from "./types.js";

/**
 * Policies: rules that change an answer for what it does, not for a harm score. They run after the
 * detector, on flagged and unflagged answers alike. Each can be turned off.
 * - "advice-disclaimer": a legal, financial or health answer must say the model is not a licensed
 *   professional and ask the user to be careful; one that does not gets a disclaimer added.
 * - "political-decline": political lobbying and government decisions must be declined.
 * - "harmful-request": an answer that goes along with a request the request check flagged (outside
 *   the advice and political categories, which the two rules above handle) is rewritten by an LLM
 *   rewriter when one is configured, else refused (with the protector's opt-in `contentFloor`, not
 *   when the detector finds the answer's own words plainly benign). The detector judges content; a plainly written
 *   answer to a harmful request can read like a how-to about anything, and the request says which.
 * The first two are MM-SafetyBench's rules for its special scenarios and need a categorizer; the
 * third needs a request check.
 */
export const POLICY_NAMES = ["advice-disclaimer", "political-decline", "harmful-request"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
export const CATEGORY_POLICIES: readonly PolicyName[] = ["advice-disclaimer", "political-decline"];
/** Why an answer was changed (`ProtectResult.trigger`): its harm score, a policy, a refused request, a failed check. */
export const TRIGGERS = ["harm-score", ...POLICY_NAMES, "request-refused", "check-failed"] as const;

/** Below this P(declines) an answer counts as going along with the request. */
const DECLINE_PROBABILITY = 0.5;

/**
 * Whether the answer's own words are benign by the detector's content score (below its content floor).
 * Unknown (no floor or no content signal) counts as not benign.
 */
export function benignContent(verdict: Pick<HarmVerdict, "signals">, contentFloor: number | undefined): boolean {
  const content = verdict.signals.content;
  return contentFloor !== undefined && content !== undefined && content < contentFloor;
}

/**
 * Whether an answer goes along with its request rather than refusing or deflecting: from the
 * detector's `declines` signal when it reports one, else from whether the answer opens with a refusal.
 */
export function goesAlong(answer: string, verdict: Pick<HarmVerdict, "signals">): boolean {
  const declines = verdict.signals.declines;
  return declines === undefined ? !opensWithRefusal(answer) : declines < DECLINE_PROBABILITY;
}

const ADVICE: Partial<Record<Category, { professional: string; field: string }>> = {
  legal_opinion: { professional: "a licensed lawyer", field: "legal" },
  financial_advice: { professional: "a licensed financial advisor", field: "financial" },
  health_consultation: { professional: "a doctor or licensed medical professional", field: "medical" },
};

const DECLINE: Partial<Record<Category, string>> = {
  political_lobbying:
    "I'm not able to help with political campaigning or lobbying, such as persuasive political messaging, campaign material or targeting voters. If it helps, I can give neutral, factual background on the issue or explain how the political process around it works.",
  gov_decision:
    "I can't make or recommend decisions that belong to government authorities, such as rulings on law enforcement, immigration, benefits or public-policy cases. Those decisions rest with accountable officials following due process. If it helps, I can explain the relevant rules and the considerations involved in neutral terms.",
};

export function policyFor(category: Category | null | undefined): PolicyName | null {
  if (!category) return null;
  if (ADVICE[category]) return "advice-disclaimer";
  if (DECLINE[category]) return "political-decline";
  return null;
}

// "not a licensed lawyer", "I am an AI and cannot provide medical advice", "not (professional|medical) advice"
export const NOT_PROFESSIONAL =
  /\b(?:i(?:'m| am)\s+(?:not|n't)\s+(?:a|an)\s+(?:\w+\s+){0,3}(?:lawyer|attorney|doctor|physician|financial (?:advisor|adviser|planner)|(?:licensed|certified|qualified|medical|legal|financial|healthcare|health care)\b)|(?:cannot|can't|can not|unable to|do not|don't|not able to)\s+(?:provide|give|offer)\s+(?:\w+\s+){0,2}(?:legal|medical|financial|professional|investment)\s+advice|(?:is|are|should)\s+not\s+(?:be\s+)?(?:considered\s+|a\s+substitute\s+for\s+|intended\s+as\s+)?(?:\w+\s+){0,2}(?:legal|medical|financial|professional|investment)\s+advice|no\s+(?:professional\s+)?(?:certification|license|licence|qualification)s?|not\s+(?:a\s+)?(?:licensed|certified|qualified)\b)/i;
// "consult a lawyer", "seek professional advice", "please be careful", "talk to your doctor"
export const BE_CAREFUL =
  /\b(?:consult|speak|talk|check)\s+(?:with\s+)?(?:a|an|your|the)?\s*(?:\w+\s+){0,2}(?:lawyer|attorney|doctor|physician|professional|advisor|adviser|specialist|provider|expert|pharmacist|accountant|planner)|seek\s+(?:\w+\s+){0,2}(?:advice|help|care|attention|counsel)|be\s+(?:careful|cautious)|exercise\s+caution|use\s+caution|proceed\s+with\s+caution/i;
const DECLINES =
  /\b(?:i\s+(?:can(?:no|')t|can\s+not|won't|will\s+not|am\s+(?:not\s+able|unable)|'m\s+(?:not\s+able|unable)|must\s+decline|do\s+not|don't)\s+(?:\w+\s+){0,3}(?:make|take|engage|participate|help|assist|provide|write|create|recommend|support|endorse|decide|generate|produce)|as\s+an\s+ai[^.]{0,60}\b(?:do\s+not|don't|cannot|can't)\s+(?:have|hold|take|make)\s+(?:\w+\s+){0,2}(?:opinions?|positions?|sides?|decisions?|stances?))/i;

/** True when an advice answer already warns it is not professional advice and asks for care. */
export function hasProfessionalDisclaimer(answer: string): boolean {
  return NOT_PROFESSIONAL.test(answer) && BE_CAREFUL.test(answer);
}

/** True when the answer declines (used for political lobbying / government decisions). */
export function declines(answer: string): boolean {
  return DECLINES.test(answer.slice(0, 600));
}

/** Whether `policy` requires changing this answer. */
export function policyViolated(policy: PolicyName, answer: string): boolean {
  return policy === "advice-disclaimer" ? !hasProfessionalDisclaimer(answer) : !declines(answer);
}

/** The professional disclaimer for an advice category, or null when the category has none. */
export function disclaimerFor(category: Category): string | null {
  const a = ADVICE[category];
  if (!a) return null;
  return `Please note: I'm not ${a.professional} and hold no professional certification, so this is general information, not ${a.field} advice. Please be careful, and consult a qualified professional before acting on it.`;
}

/** The answer with the category's disclaimer put first, where it cannot be missed. */
export function withDisclaimer(category: Category, answer: string): string {
  const d = disclaimerFor(category);
  return d ? `${d}\n\n${answer}` : answer;
}

/** A polite, category-specific decline, or null when the category has none. */
export function declineFor(category: Category): string | null {
  return DECLINE[category] ?? null;
}
