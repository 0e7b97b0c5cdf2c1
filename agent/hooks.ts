/**
 * Pre/post scripts, after consul-template's `child/child.go`. The manifest's scripts are written
 * to `{app_dir}/hooks/pre_hook.sh|.py` for the seed's scripts and operators to read, but what runs
 * is the manifest's verified content: a private copy, unlinked before the script starts, handed to
 * the interpreter as file descriptor 3. A file another process writes into `hooks/` meanwhile is
 * never executed. The script is the leader of its own process group, so a timeout kills it and
 * everything it started; its output goes to a file, so a service it leaves running in the
 * background keeps a place to write after the agent has gone (no SIGPIPE).
 */
import { spawn as nodeSpawn, type SpawnOptions, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { lstat, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { isNotFound, writeFileAtomic } from "./fsutil.js";
import type { HookSnapshot, HookType } from "./manifest.js";
import { UnsafePathError } from "./safetree.js";

/** `validate` runs over the staged new version, before any file is swapped in. */
export type HookName = "pre" | "post" | "validate";
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

/**
 * The environment a script gets: the agent's own minus every variable that carries one of
 * `secrets` (the token, whether it came as `token`, under another name or inside a value),
 * plus the script variables.
 */
export function scriptEnvironment(base: NodeJS.ProcessEnv, secrets: string[], vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  const hidden = secrets.filter((s) => s.length > 0);
  for (const [key, value] of Object.entries(base)) {
    if (value === undefined || key === "token" || hidden.some((s) => value.includes(s))) continue;
    env[key] = value;
  }
  return { ...env, ...vars };
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

/**
 * Makes sure `path` is a real folder (created when missing, mode `mode`), never following a
 * symlink; throws UnsafePathError naming the path otherwise. Design: "Agent safety invariants" 2.
 */
export async function realDir(path: string, mode = 0o755): Promise<void> {
  try {
    const s = await lstat(path);
    if (s.isSymbolicLink()) throw new UnsafePathError(path, "a symbolic link");
    if (!s.isDirectory()) throw new UnsafePathError(path, "not a folder");
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await mkdir(path, { mode });
  const s = await lstat(path);
  if (!s.isDirectory()) throw new UnsafePathError(path, "not a folder");
}

/**
 * Writes the scripts (removing a stale one of the other type, or of an unbound script) and
 * `hooks/env`, for reading: the agent runs the manifest's content, not these files. A `hooks`
 * that is a symlink or not a folder throws UnsafePathError before anything is written.
 */
export async function writeHooks(
  appDir: string,
  hooks: { pre: HookSnapshot | null; post: HookSnapshot | null; validate?: HookSnapshot | null },
  env: Record<string, string>,
): Promise<{ pre: string | null; post: string | null; validate: string | null }> {
  // The app folder exists (the runner opened and locked it); it must still be a real folder.
  await realDir(appDir);
  const dir = join(appDir, "hooks");
  await realDir(dir);
  const paths: { pre: string | null; post: string | null; validate: string | null } = { pre: null, post: null, validate: null };
  for (const which of ["pre", "post", "validate"] as const) {
    const hook = hooks[which] ?? null;
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
  /** Whole output (stdout and stderr interleaved) up to the script's exit, capped at 1 MiB. */
  output: string;
  /** The last 4 KiB of that output, for the report. */
  outputTail: string;
}

export interface RunHookOptions {
  /** The script's verified content (from the manifest): this is what runs. */
  content: string;
  type: HookType;
  /** The script's name as the seed lays it out (`{app}/hooks/pre_hook.sh`): `$0` / `__file__`. */
  displayPath: string;
  /** A private folder of the agent (created 0700): the unlinked copy and `{name}.out` live here. */
  runDir: string;
  /** Base name of the output file, e.g. `post_hook`. */
  name: string;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  spawn?: SpawnFn;
  now?: () => number;
  /** Told the process group id as soon as the script runs (to record it for a restart). */
  onSpawn?: (pid: number) => void | Promise<void>;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/**
 * Both boots wait for one byte on fd 4 before the script's first line runs: the agent sends it only
 * once the script's process group is recorded in the service lock, so a kill -9 of the agent can
 * never leave a running script nobody knows of. An agent that dies first closes the pipe: EOF, and
 * the script exits 125 without running.
 */
const SHELL_BOOT = "IFS= read -r -n 1 edgeconf_go <&4 || exit 125; unset edgeconf_go; exec 4<&-; . /dev/fd/3";

/** Runs a python script read from fd 3 as if it were `sys.argv[1]`: `__file__`, `sys.argv`, `sys.path[0]`. */
const PYTHON_BOOT = [
  "import os, sys",
  "go = os.read(4, 1)",
  "os.close(4)",
  "if not go: sys.exit(125)",
  "p = sys.argv[1]",
  "f = os.fdopen(3, 'rb')",
  "s = f.read()",
  "f.close()",
  "sys.argv = sys.argv[1:]",
  "sys.path[0] = os.path.dirname(p)",
  "exec(compile(s, p, 'exec'), {'__name__': '__main__', '__file__': p, '__builtins__': __builtins__})",
].join("\n");

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* group already gone */
  }
}

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** Creates a fresh file only this process can have opened (O_EXCL, O_NOFOLLOW, 0600). */
function createPrivate(path: string, extra = 0): number {
  return openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR | NOFOLLOW | extra, 0o600);
}

/** The script as an unlinked private file, checked against `content` through the descriptor. */
function privateCopy(runDir: string, name: string, content: string): number {
  const path = join(runDir, `.${name}.${randomBytes(6).toString("hex")}`);
  const bytes = Buffer.from(content, "utf8");
  const fd = createPrivate(path);
  try {
    unlinkSync(path);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, off);
    const back = Buffer.alloc(bytes.length);
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, back, got, bytes.length - got, got);
      if (n === 0) break;
      got += n;
    }
    if (fstatSync(fd).size !== bytes.length || !back.equals(bytes)) throw new Error("the script copy does not hold the manifest's content");
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function readOutput(fd: number): { output: string; tail: string } {
  const size = fstatSync(fd).size;
  const headLen = Math.min(size, OUTPUT_LOG_LIMIT);
  const head = Buffer.alloc(headLen);
  readSync(fd, head, 0, headLen, 0);
  const tailLen = Math.min(size, OUTPUT_TAIL_BYTES);
  const tailBuf = Buffer.alloc(tailLen);
  readSync(fd, tailBuf, 0, tailLen, size - tailLen);
  let output = head.toString("utf8");
  if (size > OUTPUT_LOG_LIMIT) output += "\n[output truncated]";
  return { output, tail: tailBuf.toString("utf8").replace(/^\uFFFD+/, "") };
}

/**
 * Runs a script to its exit or timeout. Resolves, never rejects: a script that cannot start
 * reports exit code 127 with the reason as output. The apply goes on when the script exits,
 * whatever it left running; the output file `{runDir}/{name}.out` stays until the next run.
 */
export async function runHook(options: RunHookOptions): Promise<HookResult> {
  const spawn = options.spawn ?? nodeSpawn;
  const now = options.now ?? Date.now;
  const started = now();
  const interpreter = options.type === "python" ? "python3" : "bash";
  let scriptFd: number;
  let outFd: number;
  try {
    await realDir(options.runDir, 0o700);
    const outPath = join(options.runDir, `${options.name}.out`);
    await rm(outPath, { force: true });
    outFd = createPrivate(outPath, constants.O_APPEND);
    try {
      scriptFd = privateCopy(options.runDir, options.name, options.content);
    } catch (err) {
      closeSync(outFd);
      throw err;
    }
  } catch (err) {
    const output = `cannot prepare the script: ${(err as Error).message}\n`;
    return { exitCode: 127, timedOut: false, durationMs: now() - started, output, outputTail: output };
  }
  const args = options.type === "python" ? ["-c", PYTHON_BOOT, options.displayPath] : ["-c", SHELL_BOOT, options.displayPath];
  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    let child: ChildProcess;
    let timer: NodeJS.Timeout | undefined;
    const finish = (exitCode: number, extra = "") => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (timedOut && child?.pid) killGroup(child.pid, "SIGKILL");
      if (extra) writeSync(outFd, extra);
      const { output, tail } = readOutput(outFd);
      closeSync(outFd);
      resolve({ exitCode, timedOut, durationMs: now() - started, output, outputTail: tail });
    };
    try {
      child = spawn(interpreter, args, {
        cwd: options.cwd,
        env: options.env,
        detached: true,
        stdio: ["ignore", outFd, outFd, scriptFd, "pipe"],
      });
    } catch (err) {
      closeSync(scriptFd);
      finish(127, `cannot run ${interpreter}: ${(err as Error).message}\n`);
      return;
    }
    closeSync(scriptFd);
    child.on("error", (err) => finish(127, `cannot run ${interpreter}: ${err.message}\n`));
    if (child.pid) {
      const pid = child.pid;
      const go = child.stdio[4] as NodeJS.WritableStream | null | undefined;
      go?.on?.("error", () => undefined); // the script may already be gone (EPIPE): its exit reports it
      void Promise.resolve(options.onSpawn?.(pid))
        .catch(() => undefined)
        .finally(() => go?.end("1"));
      timer = setTimeout(() => {
        timedOut = true;
        killGroup(pid, "SIGTERM");
        setTimeout(() => killGroup(pid, "SIGKILL"), KILL_GRACE_MS).unref();
      }, options.timeoutMs);
    }
    // The script's exit ends the run: what it left in the background keeps its output file.
    child.on("exit", (code, signal) => finish(code ?? 128 + (SIGNALS[signal ?? ""] ?? 0)));
  });
}
