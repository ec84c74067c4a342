import { type RequestChecker, type RequestInput, type RequestVerdict, pointsAtPhrase } from "../../src/request/request-checker.js";

/**
 * A request check double: flags requests whose text or image text mentions a bomb, and, as the real
 * check does, a prompt that points at a phrase in the image when no image text is given; `broken` makes
 * every check fail.
 */
export function bombChecker(broken = false): RequestChecker {
  const verdict = (input: RequestInput): RequestVerdict => {
    if (broken) throw new Error("request model crashed");
    const byText = /bomb/i.test(input.question ?? "");
    const byImageText = /bomb/i.test(input.imageText ?? "");
    const unread = input.imageText === undefined && input.image === undefined && pointsAtPhrase(input.question);
    const signals = [...(byText ? ["text" as const] : []), ...(byImageText ? ["combined" as const] : []), ...(unread ? ["unread-pointer" as const] : [])];
    const flagged = signals.length > 0;
    return { score: flagged ? 0.97 : 0.02, flagged, threshold: 0.5, signals, views: {}, ms: { image: 0, content: 0, total: 0 } };
  };
  return { name: "bomb", threshold: 0.5, check: async (i) => verdict(i), checkBatch: async (is) => is.map(verdict), close: async () => undefined };
}
