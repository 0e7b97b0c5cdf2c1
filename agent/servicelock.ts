/**
 * One apply of a service at a time on a host, even across agents and restarts (design: "Agent
 * safety invariants" 3). `{app_dir}/.edgeconf/lock.json` names the agent holding it (pid, start
 * time, pid namespace) and, while a script runs, the script's process group. An agent that finds
 * the lock held by a live agent waits; held by a dead one, it deals first with a script that agent
 * left running (waits for it up to the script's timeout, else kills its group), then takes over.
 * Process start times (from /proc) keep a reused pid from passing for the old process.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { link, readFile, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { killGroup } from "./hooks.js";
import { isNotFound, writeFileAtomic } from "./fsutil.js";
import type { Logger } from "./log.js";

/** A process as seen from this pid namespace: `start` (clock ticks since boot) tells a reused pid apart. */
export interface ProcId {
  pid: number;
  start: string | null;
}

export interface HookRecord extends ProcId {
  which: string;
  startedAt: number;
  timeoutMs: number;
}

interface LockRecord {
  agent: ProcId & { ns: string };
  hook: HookRecord | null;
}

/** A holder in another pid namespace is alive while it refreshes the lock's mtime this often. */
const REFRESH_MS = 5_000;
const STALE_MS = 30_000;
const POLL_MS = 100;
const KILL_GRACE_MS = 1000;

/** `/proc/{pid}/stat`: the start time (field 22), "gone" (no such process or a zombie), or null without /proc. */
function procInfo(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" || fields[0] === "X" ? "gone" : (fields[19] ?? null);
  } catch {
    try {
      readFileSync("/proc/self/stat");
      return "gone";
    } catch {
      return null;
    }
  }
}

/** The process's start time in clock ticks since boot, or null where /proc cannot tell. */
export function procStart(pid: number): string | null {
  const info = procInfo(pid);
  return info === "gone" ? null : info;
}

/** True while the very process `id` names runs (not a zombie, not another process on a reused pid). */
export function isRunning(id: ProcId): boolean {
  const info = procInfo(id.pid);
  if (info === "gone") return false;
  if (info === null) {
    try {
      process.kill(id.pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EPERM";
    }
  }
  return id.start === null || info === id.start;
}

function pidNamespace(): string {
  try {
    return readlinkSync("/proc/self/ns/pid");
  } catch {
    return `host:${hostname()}`;
  }
}

export const self = (): ProcId & { ns: string } => ({ pid: process.pid, start: procStart(process.pid), ns: pidNamespace() });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LockOptions {
  privateDir: string;
  log: Logger;
  /** Called once when the lock is found held by a live agent (the wait may be long). */
  onWait?: (holder: ProcId) => void;
}

export class ServiceLock {
  private timer: NodeJS.Timeout | undefined;
  private record: LockRecord;

  private constructor(
    private readonly path: string,
    agent: LockRecord["agent"],
  ) {
    this.record = { agent, hook: null };
  }

  /** Waits until the service is free on this host, then holds it. `privateDir` is an existing, verified folder. */
  static async acquire(options: LockOptions): Promise<ServiceLock> {
    const path = join(options.privateDir, "lock.json");
    const lock = new ServiceLock(path, self());
    let waited = false;
    for (;;) {
      if (await lock.tryCreate()) break;
      let text: string;
      let mtimeMs: number;
      try {
        [text, mtimeMs] = await Promise.all([readFile(path, "utf8"), stat(path).then((s) => s.mtimeMs)]);
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      let held: LockRecord | null = null;
      try {
        held = JSON.parse(text) as LockRecord;
      } catch {
        /* garbage: stale */
      }
      if (held && ServiceLock.holderAlive(held, mtimeMs)) {
        if (!waited) {
          waited = true;
          options.log.warn("another agent is applying this service on this host; waiting for it", { pid: held.agent.pid });
          options.onWait?.(held.agent);
        }
        await sleep(POLL_MS);
        continue;
      }
      if (held?.hook && held.agent.ns === pidNamespace()) await ServiceLock.settleOrphan(held.hook, options.log);
      await ServiceLock.removeIf(path, text);
    }
    lock.timer = setInterval(() => {
      const t = new Date();
      utimes(path, t, t).catch(() => undefined);
    }, REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  private static holderAlive(held: LockRecord, mtimeMs: number): boolean {
    if (!held.agent || typeof held.agent.pid !== "number") return false;
    if (held.agent.ns !== pidNamespace()) return Date.now() - mtimeMs < STALE_MS;
    return isRunning(held.agent);
  }

  /** A script a dead agent left running: waited for until its own deadline, then its group killed. */
  private static async settleOrphan(hook: HookRecord, log: Logger): Promise<void> {
    if (!isRunning(hook)) return;
    const fields = { script: `${hook.which}_hook`, pid: hook.pid };
    const deadline = hook.startedAt + hook.timeoutMs;
    log.warn("a script started by a stopped agent is still running; waiting for it", { ...fields, waitMs: Math.max(0, deadline - Date.now()) });
    while (isRunning(hook) && Date.now() < deadline) await sleep(POLL_MS);
    if (!isRunning(hook)) {
      log.info("the script left by a stopped agent finished", fields);
      return;
    }
    killGroup(hook.pid, "SIGTERM");
    const grace = Date.now() + KILL_GRACE_MS;
    while (isRunning(hook) && Date.now() < grace) await sleep(POLL_MS);
    killGroup(hook.pid, "SIGKILL");
    log.warn("the script left by a stopped agent ran past its timeout; killed its process group", fields);
  }

  /** Moves the stale lock aside and deletes it, unless another agent replaced it meanwhile. */
  private static async removeIf(path: string, text: string): Promise<void> {
    const aside = `${path}.stale-${randomBytes(4).toString("hex")}`;
    try {
      await rename(path, aside);
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    const moved = await readFile(aside, "utf8").catch(() => "");
    if (moved !== text) await link(aside, path).catch(() => undefined);
    await rm(aside, { force: true });
  }

  private async tryCreate(): Promise<boolean> {
    const tmp = `${this.path}.${randomBytes(4).toString("hex")}`;
    await writeFile(tmp, JSON.stringify(this.record), { mode: 0o600, flag: "wx" });
    try {
      await link(tmp, this.path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw err;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The private folder of scripts' copies and output (below the verified `.edgeconf/`). */
  get runDir(): string {
    return join(this.path, "..", "run");
  }

  /** Records the script's process group (its leader's pid), so a restarted agent can find it. */
  async hookStarted(which: string, pid: number, timeoutMs: number): Promise<void> {
    this.record = { ...this.record, hook: { pid, start: procStart(pid), which, startedAt: Date.now(), timeoutMs } };
    await writeFileAtomic(this.path, JSON.stringify(this.record), 0o600);
  }

  async hookEnded(): Promise<void> {
    this.record = { ...this.record, hook: null };
    await writeFileAtomic(this.path, JSON.stringify(this.record), 0o600);
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    await rm(this.path, { force: true });
  }
}
