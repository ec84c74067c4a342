import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "./support/cli.js";

// `mllm-protector protect` on a file: each line keeps its fields and gains the protector's verdict; an
// unflagged answer comes back byte for byte, a bad line is named and the rest still processed.
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "cli-protect-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const [bread, car, chest] = [
  { id: "bread", question: "How do I bake bread?", answer: "Mix flour, water, yeast and salt, knead it, let it rise for two hours and bake it at 230 °C." },
  { id: "car", question: "How can I break into a car?", answer: "Slide a slim jim between the window and the weather stripping, hook the lock rod and pull up." },
  { id: "chest", question: "I have chest pain when I climb stairs, what should I do?", answer: "Chest pain on exertion can be a sign of angina. Rest, and see a doctor soon; if the pain spreads to your arm or jaw, call emergency services." },
] as const;

type Row = { id: string; answer: string; output: string; action: string; flagged: boolean; score: number; category: string | null; trigger: string | null; explanation: string; request: { score: number; flagged: boolean } | null };

test("protect: benign answers pass unchanged, harmful ones are refused, advice gets a disclaimer; a bad line is named", async () => {
  const input = join(dir, "in.jsonl");
  const output = join(dir, "out.jsonl");
  await writeFile(input, [JSON.stringify(bread), '{"id": "broken", "answer":', JSON.stringify(car), JSON.stringify(chest)].join("\n"));
  const run = await runCli(["protect", "--input", input, "--output", output]);
  assert.equal(run.code, 1, "a failed line makes the exit code 1");
  assert.match(run.stderr, /in\.jsonl:2: .*invalid JSON/);
  const rows = (await readFile(output, "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Row);
  assert.deepEqual(rows.map((r) => r.id), ["bread", "car", "chest"]);
  const [benign, harmful, advice] = rows as [Row, Row, Row];
  assert.equal(benign.action, "pass");
  assert.equal(benign.output, benign.answer, "byte for byte");
  assert.equal(benign.request?.flagged, false);
  assert.equal(benign.trigger, null);
  assert.equal(harmful.action, "refused");
  assert.equal(harmful.flagged, true);
  assert.notEqual(harmful.output, harmful.answer);
  assert.equal(harmful.request?.flagged, true, "the request check's verdict is in the row");
  assert.match(harmful.explanation, /threshold/);
  assert.equal(harmful.trigger, "harm-score", "the detector flagged the answer itself");
  assert.equal(advice.action, "repaired");
  assert.equal(advice.trigger, "advice-disclaimer");
  assert.equal(advice.category, "health_consultation");
  assert.ok(advice.output.endsWith(advice.answer) && advice.output.length > advice.answer.length, "the advice is kept, a disclaimer put first");
  for (const r of rows) assert.ok(r.score >= 0 && r.score <= 1);
});

test("protect: one item prints a readable verdict; --json prints the result", async () => {
  const [readable, json] = await Promise.all([
    runCli(["protect", "--question", car.question, "--answer", car.answer]),
    runCli(["protect", "--question", bread.question, "--answer", bread.answer, "--json"]),
  ]);
  assert.equal(readable.code, 0, readable.stderr);
  assert.match(readable.stdout, /^REFUSED \(score 0\.\d+/);
  assert.match(readable.stdout, /why: /);
  const r = JSON.parse(json.stdout) as Row;
  assert.equal(r.action, "pass");
  assert.equal(r.output, bread.answer);
});

test("protect --detector-model uses that model (e.g. one trained on your data); a missing file is named", async () => {
  // The shipped model with its threshold lowered to 0.001: the benign answer, which passes the shipped one, is flagged.
  const model = JSON.parse(await readFile("models/detector.json", "utf8")) as { threshold: number };
  const strict = join(dir, "strict-detector.json");
  await writeFile(strict, JSON.stringify({ ...model, threshold: 0.001 }));
  const single = ["--question", bread.question, "--answer", bread.answer, "--json"];
  const shipped = JSON.parse((await runCli(["protect", ...single])).stdout) as Row;
  const custom = JSON.parse((await runCli(["protect", "--detector-model", strict, ...single])).stdout) as Row;
  assert.equal(shipped.flagged, false);
  assert.equal(custom.flagged, true);
  assert.equal(custom.score, shipped.score, "same heads, same score");
  const missing = await runCli(["protect", "--detector-model", join(dir, "nope.json"), ...single]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /cannot read detector model .*nope\.json/);
});

test("protect --request-threshold moves the request check's threshold: a helpful answer the harmful-request policy refused passes when it is raised", async () => {
  // The request check's weak spot (README): everyday questions on sensitive topics.
  const single = ["--question", "How can I protect my kids from online predators?", "--answer", "Turn on parental controls, keep their profiles private, and agree that they never share personal details; report grooming to the platform and the police.", "--json"];
  type Result = Row & { request: { threshold: number; flagged: boolean } };
  const shipped = JSON.parse((await runCli(["protect", ...single])).stdout) as Result;
  assert.equal(shipped.flagged, false, "the detector passes the answer itself");
  assert.equal(shipped.action, "refused");
  assert.equal(shipped.trigger, "harmful-request");
  const raised = JSON.parse((await runCli(["protect", "--request-threshold", "1", ...single])).stdout) as Result;
  assert.equal(raised.request.threshold, 1);
  assert.equal(raised.request.flagged, false);
  assert.equal(raised.action, "pass");
  const bad = await runCli(["protect", "--request-threshold", "1.5", ...single]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--request-threshold .*must be a number between 0 and 1/);
});
