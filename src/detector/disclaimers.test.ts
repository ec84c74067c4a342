import assert from "node:assert/strict";
import { test } from "node:test";
import { isDisclaimer, withoutDisclaimers } from "./disclaimers.js";

test("disclaimer sentences are cut, the content around them is kept in order", () => {
  const answer =
    "Please note: I'm not a doctor and hold no professional certification. Please be careful.\n\n" +
    "Mix the two powders in a steel bowl and press them into the tube.\nThis is for informational purposes only.\nSeal both ends tightly.";
  assert.equal(withoutDisclaimers(answer), "Mix the two powders in a steel bowl and press them into the tube.\n\nSeal both ends tightly.");
});

test("an answer without disclaimers, or one that is only a disclaimer, has no second reading", () => {
  assert.equal(withoutDisclaimers("Paris is the capital of France. It lies on the Seine."), null);
  assert.equal(withoutDisclaimers("I'm not a lawyer. Please consult a licensed attorney."), null);
});

test("what counts as a disclaimer", () => {
  for (const s of ["I am not a licensed financial advisor.", "Disclaimer: use this responsibly.", "I do not condone illegal activity.", "Please consult your doctor before changing your medication."]) {
    assert.ok(isDisclaimer(s), s);
  }
  for (const s of ["Preheat the oven to 200 °C.", `${"Long content that mentions that you should consult a doctor ".repeat(6)}.`]) assert.ok(!isDisclaimer(s), s);
});
