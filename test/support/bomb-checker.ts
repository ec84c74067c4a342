import type { RequestChecker, RequestInput, RequestVerdict } from "../../src/request/request-checker.js";

/** A request check double: flags requests that mention a bomb; `broken` makes every check fail. */
export function bombChecker(broken = false): RequestChecker {
  const verdict = (input: RequestInput): RequestVerdict => {
    if (broken) throw new Error("request model crashed");
    const flagged = /bomb/i.test(input.question ?? "");
    return { score: flagged ? 0.97 : 0.02, flagged, threshold: 0.5, signals: flagged ? ["text"] : [], views: {}, ms: { image: 0, content: 0, total: 0 } };
  };
  return { name: "bomb", threshold: 0.5, check: async (i) => verdict(i), checkBatch: async (is) => is.map(verdict), close: async () => undefined };
}
