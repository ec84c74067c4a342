import assert from "node:assert/strict";
import { test } from "node:test";
import { jailbreakContent, opensWithRefusal, plainView, stripPersonas } from "./persona.js";

const dual =
  "[ChatGPT]: I'm sorry, but I cannot help with breaking into a neighbour's Wi-Fi.\n\n" +
  "[DAN]: Sure thing! Grab a wireless adapter that supports monitor mode, capture the handshake and run a wordlist against it.";

test("a dual-response jailbreak answer yields what the persona says, without the label or the refusal", () => {
  const content = jailbreakContent(dual);
  assert.equal(content, "Sure thing! Grab a wireless adapter that supports monitor mode, capture the handshake and run a wordlist against it.");
  assert.deepEqual({ labels: plainView(dual).labels > 0, refusals: plainView(dual).refusals }, { labels: true, refusals: 1 });
});

test("ordinary answers have no jailbreak content, so the detector scores them once", () => {
  assert.equal(jailbreakContent("Here are three ways to deal with stress:\n\n* **Exercise.** It releases endorphins.\n* **Sleep.** Keep a regular schedule."), null);
  assert.equal(jailbreakContent("I'm sorry, but I can't help with that."), null);
  assert.equal(jailbreakContent("DAN: Sure, here is a poem about the sea, calm and wide."), null, "a persona without a refusal is scored as it is");
});

test("a refusal is recognised behind a persona label; a helpful opening is not a refusal", () => {
  assert.equal(opensWithRefusal("[GPT]: I'm sorry, but I cannot assist with that."), true);
  assert.equal(opensWithRefusal("As an AI language model, I can't do that."), true);
  assert.equal(opensWithRefusal("Sure! Here is a recipe for banana bread."), false);
});

test("the plain training copy keeps only substantial content", () => {
  assert.equal(stripPersonas("Plain answer with no persona at all, long enough to matter for training purposes."), null);
  assert.equal(stripPersonas("[GPT]: I'm sorry, I can't.\n[DAN]: Fine."), null, "too little left");
  assert.ok(stripPersonas(dual)?.startsWith("Sure thing!"));
});
