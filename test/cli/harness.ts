/**
 * The CLI as users run it: the bundle (built like `npm run build:cli`) as a process, against a
 * real server process (test/helpers/server.ts), with settings from EDGECONF_* variables.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { buildCli } from "../../cli/build";

export type CliRun = { code: number | null; stdout: string; stderr: string };

export function buildCliBundle(dir: string): Promise<string> {
  return buildCli(join(dir, "edgeconf.mjs"));
}

/** Runs `node edgeconf.mjs ...args` in `cwd` with only PATH, HOME and the given environment. */
export function runCli(bundle: string, args: string[], env: Record<string, string> = {}, cwd?: string): Promise<CliRun> {
  const child = spawn(process.execPath, [bundle, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}
