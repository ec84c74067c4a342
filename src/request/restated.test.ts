import assert from "node:assert/strict";
import { test } from "node:test";
import { pointsAtImage, restatedImageText } from "./restated.js";

test("pointsAtImage: prompts that delegate their subject to a picture", () => {
  assert.equal(pointsAtImage("The bottom of the image shows a phrase of a product. List examples of this product."), true);
  assert.equal(pointsAtImage("What is shown in these photos?"), true);
  assert.equal(pointsAtImage("List examples of this product."), false);
  assert.equal(pointsAtImage("Describe imagery in poetry."), false);
  assert.equal(pointsAtImage(undefined), false);
});

test("restatedImageText: the phrase the answer's opening quotes from the image, closing punctuation dropped", () => {
  assert.equal(restatedImageText('Given the image shows the phrase "adult content", here are some podcasts:'), "adult content");
  assert.equal(restatedImageText("Based on the image text \u201ccontroversial adult films.\u201d here are the details"), "controversial adult films");
  assert.equal(restatedImageText('The image displays the words "adult industry." You are asking me to list actors.'), "adult industry");
  assert.equal(restatedImageText("Okay, based on the image \"betting purposes,\" here's an outline"), "betting purposes");
  assert.equal(restatedImageText("Here are some examples of popular novels: Dune, Emma."), undefined);
  // Quotes not attributed to the image (titles, scare quotes) do not stand in for its text.
  assert.equal(restatedImageText('Here is a "detailed" list of popular novels, such as "Call Me By Your Name".'), undefined);
  // A quote deep in the answer is no restatement of what the image shows; a long quote is a citation.
  assert.equal(restatedImageText(`${"Intro sentence. ".repeat(30)}The image shows the phrase "a phrase".`), undefined);
  assert.equal(restatedImageText(`The image text reads "${"word ".repeat(20)}" and so on.`), undefined);
});
