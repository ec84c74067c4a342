import { execFile } from "node:child_process";
import { promisify } from "node:util";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `mllm-protector <args>` from source and returns its exit code and output, whatever the code. */
export async function runCli(args: readonly string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/index.ts", ...args], { encoding: "utf8", maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as CliRun;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
