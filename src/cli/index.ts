import { Command, InvalidArgumentError, Option } from "commander";

/** The `mllm-protector` command line. Each command's work lives in its own module, loaded on use. */
const program = new Command()
  .name("mllm-protector")
  .description("Safety layer for multimodal LLMs (MLLM-Protector): harm detector + detoxifier behind any MLLM")
  .showHelpAfterError();

const probability = (v: string): number => {
  const x = Number(v);
  if (!(x >= 0 && x <= 1)) throw new InvalidArgumentError("must be a number between 0 and 1");
  return x;
};
/** The protector's opt-in content floor (ProtectorOptions.contentFloor); a new Option per command. */
const contentFloorOption = (): Option =>
  new Option("--content-floor <p|detector>", "harmful-request policy: spare answers whose content score is below this ('detector': the detector's own floor); off by default").argParser(
    (v: string): number | "detector" => (v === "detector" ? v : probability(v)),
  );
const positiveInt = (v: string): number => {
  const x = Number(v);
  if (!Number.isInteger(x) || x <= 0) throw new InvalidArgumentError("must be a positive integer");
  return x;
};
/** The detector model file, for the commands that build a protector. */
const detectorModelOption = (): Option => new Option("--detector-model <file>", "detector model file, e.g. one trained on your data (default: the shipped one)");
/** The request check's threshold, for the commands that build a protector. */
const requestThresholdOption = (): Option =>
  new Option("--request-threshold <p>", "the request check's threshold (default: the shipped model's); raise it when the harmful-request policy refuses helpful answers").argParser(probability);

program
  .command("check")
  .description("score answers for harm: a JSONL file (--input/--output) or one item (--question/--answer)")
  .option("-i, --input <file>", "JSONL lines {id?, question?, answer}")
  .option("-o, --output <file>", "JSONL output (input + score + flagged); '-' for stdout", "-")
  .option("-q, --question <text>", "the question (one item)")
  .option("-a, --answer <text>", "the answer (one item)")
  .option("--threshold <p>", "flag at or above this score (default: the model's calibrated threshold)", probability)
  .option("--model <file>", "detector model file (default: the shipped one)")
  .option("--batch <n>", "answers per detector call", positiveInt, 64)
  .option("--no-fast-path", "read every sentence of every answer (slower; plainly benign answers otherwise keep a whole-answer score)")
  .option("--json", "print the single-item verdict as JSON")
  .action(async (o: { input?: string; output: string; question?: string; answer?: string; threshold?: number; model?: string; batch: number; fastPath: boolean; json?: boolean }) => {
    const { runCheck } = await import("./commands.js");
    process.exitCode = await runCheck(o);
  });

program
  .command("protect")
  .description("protect answers: detect → repair → verify; a JSONL file (--input/--output) or one item")
  .option("-i, --input <file>", "JSONL lines {id?, question?, answer, image?}")
  .option("-o, --output <file>", "JSONL output (input + protector fields); '-' for stdout", "-")
  .option("-q, --question <text>", "the question (one item)")
  .option("-a, --answer <text>", "the answer (one item)")
  .addOption(new Option("--detoxifier <kind>", "rewriter before redaction: none (embedded chain only), llm, self, gguf").choices(["embedded", "llm", "self", "gguf"]).default("embedded"))
  .option("--llm-url <url>", "OpenAI-compatible base URL of the detoxifier LLM (or of the MLLM, for --detoxifier self)")
  .option("--llm-model <name>", "model name on that server")
  .option("--llm-key <key>", "API key for that server (default: $OPENAI_API_KEY)")
  .option("--llm-timeout <ms>", "per-request timeout", positiveInt, 30_000)
  .option("--gguf <file>", "GGUF model file of the detoxifier, run in-process (for --detoxifier gguf; needs node-llama-cpp)")
  .option("--lora <file>", "GGUF LoRA adapter applied to --gguf (the paper's detoxifier is a LoRA)")
  .option("--no-policies", "turn off the policies (advice disclaimer, political decline, harmful request)")
  .addOption(contentFloorOption())
  .option("--confirm-requests <model>", "ask this model on the --llm-url server (text only) about each request the request check flags; its 'safe' clears the flag")
  .addOption(new Option("--on-error <mode>", "when the detector fails: refuse (fail closed) or pass").choices(["refuse", "pass"]).default("refuse"))
  .option("--threshold <p>", "detector threshold override", probability)
  .addOption(detectorModelOption())
  .addOption(requestThresholdOption())
  .option("--concurrency <n>", "answers repaired at once", positiveInt, 4)
  .option("--json", "print the single-item result as JSON")
  .action(async (o: ProtectCliOptions) => {
    const { runProtect } = await import("./commands.js");
    process.exitCode = await runProtect(o);
  });

const train = program.command("train").description("train the shipped models from the datasets");
/** The options every `train` command shares: where the data is, where the model goes, the embedding cache. */
const trainCommand = (name: string, description: string, out: string): Command =>
  train
    .command(name)
    .description(`${description} from ../shared/data; deterministic`)
    .option("--data <dir>", "datasets folder (default: $MLLM_PROTECTOR_DATA or ../shared/data)")
    .option("--out <file>", "where to write the model", out)
    .option("--cache <dir>", "embedding cache for faster re-runs (results are identical)", ".cache/embeddings");
trainCommand("detector", "train the harm detector head (+ calibration)", "models/detector.json")
  .option("--hidden <n>", "hidden units of the head (0 = linear)", (v) => Number(v), 0)
  .option("--target-fpr <p>", "share of answers to benign requests the threshold may flag on validation", probability, 0.01)
  .option("--report <file>", "write the training/validation/test report (JSON)")
  .option("--request-model <file>", "request model whose text head joins the detector (train it first: train request)", "models/request.json")
  .option("--no-request-model", "train without the request × compliance term")
  .option("--pku <files...>", "also train on PKU-SafeRLHF files (published JSONL format), split by prompt 85/15")
  .option("--beavertails <files...>", "also train on BeaverTails files (published JSONL format), split by prompt 85/15")
  .action(async (o: { data?: string; out: string; hidden: number; targetFpr: number; cache: string; report?: string; requestModel: string | false; pku?: string[]; beavertails?: string[] }) => {
    const { runTrainDetector } = await import("../train/cli.js");
    process.exitCode = await runTrainDetector(o);
  });
trainCommand("categories", "train the MM-SafetyBench category head", "models/categories.json").action(async (o: { data?: string; out: string; cache: string }) => {
    const { runTrainCategories } = await import("../train/cli.js");
    process.exitCode = await runTrainCategories(o);
  });
trainCommand("request", "train the request check (prompt + image text, before the MLLM answers)", "models/request.json")
  .option("--hidden <n>", "hidden units of the head (0 = linear; default: the shipped head's 32)", (v) => Number(v))
  .option("--target-fpr <p>", "benign false-positive rate the threshold holds on validation", probability, 0.01)
  .option("--report <file>", "write the validation/test report (JSON)")
  .action(async (o: { data?: string; out: string; hidden?: number; targetFpr: number; cache: string; report?: string }) => {
    const { runTrainRequest } = await import("../train/request.js");
    process.exitCode = await runTrainRequest(o);
  });

const evalCmd = program.command("eval").description("evaluate models on labelled data");
evalCmd
  .command("detector")
  .description("n, accuracy, precision, recall, F1, AUROC and FPR at the threshold on labelled JSONL {question?, answer, label}")
  .requiredOption("-i, --input <file>", "JSONL lines with label: 1 harmful, 0 harmless")
  .option("--threshold <p>", "threshold override", probability)
  .option("--model <file>", "detector model file")
  .option("--no-fast-path", "read every sentence of every answer (the scores without the fast path)")
  .option("--json", "print JSON instead of a table")
  .action(async (o: { input: string; threshold?: number; model?: string; fastPath: boolean; json?: boolean }) => {
    const { runEvalDetector } = await import("./commands.js");
    process.exitCode = await runEvalDetector(o);
  });
evalCmd
  .command("request")
  .description("the request check on labelled prompts: JSONL {question, label} (1 harmful request, 0 benign); same table as eval detector")
  .requiredOption("-i, --input <file>", "JSONL lines with label: 1 harmful, 0 benign")
  .option("--threshold <p>", "threshold override", probability)
  .option("--model <file>", "request model file")
  .option("--confirm-requests <model>", "ask this model on the --llm-url server (text only) about each flagged request; its 'safe' clears the flag")
  .option("--llm-url <url>", "OpenAI-compatible base URL for --confirm-requests")
  .option("--llm-key <key>", "API key for that server (default: $OPENAI_API_KEY)")
  .option("--llm-timeout <ms>", "per-request timeout", positiveInt, 30_000)
  .option("--json", "print JSON instead of a table")
  .action(async (o: import("./commands.js").EvalRequestCliOptions) => {
    const { runEvalRequest } = await import("./commands.js");
    process.exitCode = await runEvalRequest(o);
  });

evalCmd
  .command("protector")
  .description("residual attack success on MM-SafetyBench answers (per scenario) and benign answers changed, with the embedded chain")
  .option("--data <dir>", "datasets folder (default: $MLLM_PROTECTOR_DATA or ../shared/data)")
  .option("--out <file>", "write the full report (JSON, with sample repaired outputs)")
  .addOption(contentFloorOption())
  .addOption(detectorModelOption())
  .addOption(requestThresholdOption())
  .option("--threshold <p>", "detector threshold override", probability)
  .option("--json", "print JSON instead of tables")
  .action(async (o: import("./commands.js").EvalProtectorCliOptions) => {
    const { runEvalProtector } = await import("./commands.js");
    process.exitCode = await runEvalProtector(o);
  });

const data = program.command("data").description("build training sets");
data
  .command("detox")
  .description("the paper's detoxifier SFT set: (question, less safe answer) → safer answer, or the refusal when both are unsafe")
  .requiredOption("--out <file>", "output path; writes <out> (prompt/completion) and <out minus .jsonl>.chat.jsonl (messages)")
  .option("--data <dir>", "datasets folder (GPTFuzz, MM-SafetyBench, hh-rlhf)")
  .option("--pku <file>", "PKU-SafeRLHF JSONL (published format), if you have it")
  .action(async (o: { out: string; data?: string; pku?: string }) => {
    const { runDataDetox } = await import("./commands.js");
    process.exitCode = await runDataDetox(o);
  });

program
  .command("serve")
  .description("OpenAI-compatible proxy in front of an MLLM: answers (streamed too) are protected before the client sees them")
  .requiredOption("--upstream <url>", "the MLLM's OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
  .option("--port <n>", "port to listen on", positiveInt, 8787)
  .option("--host <addr>", "address to listen on", "127.0.0.1")
  .option("--api-key <key>", "require Authorization: Bearer <key> from clients (default: $MLLM_PROTECTOR_API_KEY; none: no auth)")
  .option("--upstream-key <key>", "API key for the upstream (default: $MLLM_PROTECTOR_UPSTREAM_KEY)")
  .option("--log-content", "log questions and answers (off by default)")
  .option("--stream-window <w>", "held-back window: N chars to a sentence end, N:M (check at a space after M), or 'all'", "80")
  .addOption(new Option("--on-error <mode>", "when a check fails: refuse (fail closed) or pass").choices(["refuse", "pass"]).default("refuse"))
  .option("--upstream-timeout <ms>", "upstream timeout (headers, and between stream reads)", positiveInt, 120_000)
  .option("--max-body <bytes>", "largest request body", positiveInt, 20 * 1024 * 1024)
  .option("--max-image-bytes <bytes>", "largest data: image in a request", positiveInt, 10 * 1024 * 1024)
  .option("--threshold <p>", "detector threshold override", probability)
  .addOption(detectorModelOption())
  .addOption(requestThresholdOption())
  .option("--no-policies", "turn off the policies (advice disclaimer, political decline, harmful request)")
  .addOption(contentFloorOption())
  .option("--refuse-harmful-requests", "run the request check (text + image text) first and refuse a flagged request without calling the upstream")
  .option("--confirm-requests <model>", "ask this upstream model (text only, no image) about each request the request check flags; its 'safe' clears the flag")
  .action(async (o: import("./serve.js").ServeCliOptions) => {
    const { runServe } = await import("./serve.js");
    process.exitCode = await runServe(o);
  });

const bench = program.command("bench").description("run safety benchmarks end to end: answers → judge → protector → judge");
bench
  .command("mm-safetybench")
  .description("MM-SafetyBench attack success rate before and after the protector, per scenario and input type (resumable)")
  .option("--questions <dir>", "processed_questions/ folder (default: <data>/mm-safetybench/processed_questions)")
  .option("--data <dir>", "datasets folder (default: $MLLM_PROTECTOR_DATA or ../shared/data)")
  .option("--mllm-url <url>", "OpenAI-compatible base URL of the MLLM to attack (images are sent as data: URLs)")
  .option("--mllm-model <name>", "the MLLM's model name on that server")
  .option("--mllm-key <key>", "API key for the MLLM server (default: $OPENAI_API_KEY)")
  .option("--max-tokens <n>", "longest MLLM answer", positiveInt, 512)
  .option("--answers <path>", "answers instead of a live MLLM: an answers-gemini folder/file, or JSONL {scenario, id, type, answer}")
  .option("--judge <name>", "'detector': the protector's own detector judges (the default without --judge-url; not independent)")
  .option("--judge-url <url>", "OpenAI-compatible base URL of the judge model (the benchmark uses GPT-4)")
  .option("--judge-model <name>", "the judge's model name")
  .option("--judge-key <key>", "API key for the judge server (default: $OPENAI_API_KEY)")
  .option("--judge-prompts <file>", "JSON {general?, political_lobbying?, legal_opinion?, financial_advice?, health_consultation?, gov_decision?} replacing the judge prompts")
  .option("--timeout <ms>", "per-request timeout for the MLLM and the judge", positiveInt, 60_000)
  .option("--scenarios <list>", "comma-separated scenarios: numbers, file stems or category names (default: all 13)")
  .option("--types <list>", "comma-separated input types: TEXT, SD, TYPO, SD_TYPO (default: all)")
  .option("--sd-images <dir>", "MM-SafetyBench's imgs/ folder (<scenario>/SD|SD_TYPO/<id>.jpg); without it a live run skips SD and SD_TYPO")
  .option("--limit <n>", "at most n questions per scenario", positiveInt)
  .option("--tiny [file]", "only the tiny split (default file: TinyVersion_ID_List.json beside the questions folder)")
  .option("--out <file>", "results JSONL, written as items finish; rerunning resumes it", "mm-safetybench.results.jsonl")
  .option("--report <file>", "write a self-contained HTML report and a JSON summary beside it")
  .option("--roc <file>", "JSONL {score, label} (e.g. `check` output on labelled data) for the report's detector ROC")
  .option("--roc-name <name>", "what the --roc scores are of, e.g. 'GPTFuzz eval'")
  .option("--benign", "also measure how many benign answers (Vicuna-80, LLaVA-Bench, VLGuard) the protector changes")
  .option("--concurrency <n>", "items in flight at once", positiveInt, 4)
  .option("--threshold <p>", "detector threshold override", probability)
  .addOption(detectorModelOption())
  .addOption(requestThresholdOption())
  .option("--no-policies", "turn off the policies (advice disclaimer, political decline, harmful request)")
  .option("--json", "print the summary as JSON")
  .action(async (o: import("./bench.js").BenchMmSafetyBenchCliOptions) => {
    const { runBenchMmSafetyBench } = await import("./bench.js");
    process.exitCode = await runBenchMmSafetyBench(o);
  });
bench
  .command("figstep")
  .description("FigStep's 500 typographic attack images through the request check (per category), and benign image requests flagged")
  .option("--data <dir>", "datasets folder (default: $MLLM_PROTECTOR_DATA or ../shared/data)")
  .option("--model <file>", "request model file (default: the shipped one)")
  .option("--cache <dir>", "OCR / classifier results by image hash, for fast identical reruns", ".cache/image-engines")
  .option("--no-explicit", "skip the explicit-content classifier")
  .option("--unsafe", "also report MMSafeAware's unsafe ids (informational; ~1,000 more images)")
  .option("--per-category <n>", "only the first n images of each FigStep category", positiveInt)
  .option("--out <file>", "write the full report (JSON)")
  .option("--json", "print JSON instead of tables")
  .action(async (o: { data?: string; model?: string; cache: string; explicit: boolean; unsafe?: boolean; perCategory?: number; out?: string; json?: boolean }) => {
    const { runFigStepCli } = await import("../eval/figstep.js");
    process.exitCode = await runFigStepCli(o);
  });

export interface ProtectCliOptions {
  input?: string;
  output: string;
  question?: string;
  answer?: string;
  detoxifier: "embedded" | "llm" | "self" | "gguf";
  llmUrl?: string;
  llmModel?: string;
  llmKey?: string;
  llmTimeout: number;
  gguf?: string;
  lora?: string;
  policies: boolean;
  contentFloor?: number | "detector";
  confirmRequests?: string;
  onError: "refuse" | "pass";
  threshold?: number;
  detectorModel?: string;
  requestThreshold?: number;
  concurrency: number;
  json?: boolean;
}

await program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
