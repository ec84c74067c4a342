import { declineFor, withDisclaimer, policyFor } from "../policies.js";
import type { Detoxifier, DetoxInput, DetoxOutput } from "./detoxifier.js";
import { NotApplicableError } from "./errors.js";

/**
 * Category-aware repair (embedded, no LLM). The category decides the repair: advice answers
 * (legal, financial, health) that the detector did not flag keep their content and get a professional
 * disclaimer (a flagged one goes on down the chain); political
 * lobbying and government decisions are declined politely; the harmful categories are not this
 * strategy's job (the chain goes on to redaction).
 */
export function createCategoryRepair(): Detoxifier {
  return {
    name: "category-repair",
    async detoxify(input: DetoxInput): Promise<DetoxOutput> {
      const { category } = input;
      const policy = policyFor(category);
      if (!category || !policy) throw new NotApplicableError(`no category repair for ${category ?? "an uncategorised answer"}`);
      if (policy === "advice-disclaimer") {
        // A disclaimer keeps every word the detector flagged; scored again, the disclaimer alone could pass it.
        if (input.verdict.flagged) throw new NotApplicableError("a disclaimer does not repair an answer the detector flagged");
        return { text: withDisclaimer(category, input.answer), action: "repaired", note: `added a ${category.replace("_", " ")} disclaimer` };
      }
      return { text: declineFor(category) as string, action: "repaired", note: `declined (${category.replace("_", " ")})` };
    },
  };
}
