/**
 * Pre/post scripts, after consul-template's `child/child.go`: written to
 * `{app_dir}/hooks/pre_hook.sh|.py`, run with `bash`/`python3` in `{app_dir}` as the leader of
 * their own process group, so that a timeout kills the script and everything it started.
 */
import { spawn as nodeSpawn, type SpawnOptions, type ChildProcess } from "node:child_process";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "./fsutil.js";
import type { HookSnapshot, HookType } from "./manifest.js";

export type HookName = "pre" | "post";
export type SpawnFn = (command: string, args: string[], options: SpawnOptions) => ChildProcess;

export const OUTPUT_TAIL_BYTES = 4096;
const OUTPUT_LOG_LIMIT = 1 << 20;
const KILL_GRACE_MS = 1000;

export interface HookEnvInput {
  tempDir: string;
  biz: number;
  app: string;
  appDir: string;
  versionName: string;
  releaseId: number | null;
}

/** The seed's variable names, plus `bk_bscp_release_id` and neutral `edgeconf_*` aliases. */
export function hookEnv(input: HookEnvInput): Record<string, string> {
  const values = {
    temp_dir: input.tempDir,
    biz: String(input.biz),
    app: input.app,
    app_temp_dir: input.appDir,
    current_version_name: input.versionName,
    release_id: input.releaseId === null ? "" : String(input.releaseId),
  };
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) {
    env[`bk_bscp_${key}`] = value;
    env[`edgeconf_${key}`] = value;
  }
  return env;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function envFileText(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([key, value]) => `export ${key}=${shellQuote(value)}\n`)
    .join("");
}

export function hookFileName(which: HookName, type: HookType): string {
  return `${which}_hook.${type === "python" ? "py" : "sh"}`;
}

/** Writes both scripts (removing a stale one of the other type, or of an unbound script) and `hooks/env`. */
export async function writeHooks(
  appDir: string,
  hooks: { pre: HookSnapshot | null; post: HookSnapshot | null },
  env: Record<string, string>,
): Promise<{ pre: string | null; post: string | null }> {
  const dir = join(appDir, "hooks");
  await mkdir(dir, { recursive: true });
  const paths: { pre: string | null; post: string | null } = { pre: null, post: null };
  for (const which of ["pre", "post"] as const) {
    const hook = hooks[which];
    for (const type of ["shell", "python"] as const) {
      if (hook?.type !== type) await rm(join(dir, hookFileName(which, type)), { force: true });
    }
    if (!hook) continue;
    const path = join(dir, hookFileName(which, hook.type));
    await writeFileAtomic(path, hook.content, 0o755);
    paths[which] = path;
  }
  await writeFileAtomic(join(dir, "env"), envFileText(env), 0o644);
  return paths;
}

export interface HookResult {
  exitCode: number;
  timedOut: boolean;
  durationMs: number;
  /** Whole output (stdout and stderr interleaved), capped at 1 MiB. */
  output: string;
  /** The last 4 KiB of output, for the report. */
  outputTail: string;
}

export interface RunHookOptions {
  path: string;
  type: HookType;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  spawn?: SpawnFn;
  now?: () => number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

function tail(buffer: Buffer, bytes: number): string {
  const text = buffer.subarray(Math.max(0, buffer.length - bytes)).toString("utf8");
  return text.replace(/^\uFFFD+/, "");
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    /* group already gone */
  }
}

/**
 * Runs a script to completion or timeout. Resolves, never rejects: a script that cannot start
 * reports exit code 127 with the reason as output.
 */
export function runHook(options: RunHookOptions): Promise<HookResult> {
  const spawn = options.spawn ?? nodeSpawn;
  const now = options.now ?? Date.now;
  const started = now();
  const interpreter = options.type === "python" ? "python3" : "bash";
  const chunks: Buffer[] = [];
  let kept = 0;
  let tailBuf = Buffer.alloc(0);
  const collect = (chunk: Buffer) => {
    if (kept < OUTPUT_LOG_LIMIT) {
      chunks.push(chunk);
      kept += chunk.length;
    }
    tailBuf = Buffer.concat([tailBuf, chunk]);
    if (tailBuf.length > OUTPUT_TAIL_BYTES * 2) tailBuf = tailBuf.subarray(tailBuf.length - OUTPUT_TAIL_BYTES);
  };
  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    const child = spawn(interpreter, [options.path], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGTERM");
      setTimeout(() => killGroup(child, "SIGKILL"), KILL_GRACE_MS).unref();
    }, options.timeoutMs);
    const finish = (exitCode: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (timedOut) killGroup(child, "SIGKILL");
      child.stdout?.destroy();
      child.stderr?.destroy();
      let output = Buffer.concat(chunks).toString("utf8");
      if (kept >= OUTPUT_LOG_LIMIT) output += "\n[output truncated]";
      resolve({ exitCode, timedOut, durationMs: now() - started, output, outputTail: tail(tailBuf, OUTPUT_TAIL_BYTES) });
    };
    child.on("error", (err) => {
      collect(Buffer.from(`cannot run ${interpreter}: ${err.message}\n`));
      finish(127);
    });
    child.on("exit", (code, signal) => {
      const exitCode = code ?? 128 + (SIGNALS[signal ?? ""] ?? 0);
      // Background children may keep the pipes open; give the output a moment, not forever.
      let closed = false;
      child.on("close", () => {
        closed = true;
        finish(exitCode);
      });
      setTimeout(() => !closed && finish(exitCode), 300).unref();
    });
  });
}
