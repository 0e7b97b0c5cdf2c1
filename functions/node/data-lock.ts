/**
 * One process per embedded data folder. PGlite is a single-process database: two servers (or a
 * server and `create-admin-token`) on one folder each see their own view and can corrupt it.
 *
 * Why our own pid file and not a library: `proper-lockfile` (the well-kept choice) locks with a
 * folder whose mtime it refreshes every few seconds; it cannot name the holder's pid, detects a dead
 * holder only after its staleness delay, and declares the lock compromised (and throws) when the
 * event loop is busy longer than that, as during a large migration. What is needed here is simpler:
 * `server.lock` created with O_EXCL, holding `{pid, startTime, command}`; a holder whose pid is gone,
 * or was reused by another process (Linux: its start time differs), is stale and taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import { log } from "../core/log";
import { privateDataDir } from "./data-dir";

export const LOCK_FILE = "server.lock";
/** A takeover guard older than this was left by a process that died mid-takeover. */
const GUARD_STALE_MS = 10_000;

type Holder = { pid: number; startTime?: string; command?: string };

/** The lock is held by someone else: the message names the holder's pid and what to do. */
export class DataDirLocked extends Error {}

/** Start time of a process in clock ticks since boot (Linux /proc), or undefined elsewhere. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isAlive(h: Holder): boolean {
  if (!Number.isInteger(h.pid) || h.pid <= 0 || h.pid === process.pid) return false; // our own pid: a previous life (e.g. pid 1 in a container)
  try {
    process.kill(h.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const now = startTimeOf(h.pid);
  return !(h.startTime && now && now !== h.startTime);
}

function readHolder(file: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(file, "utf8")) as Holder;
    return typeof h?.pid === "number" ? h : { pid: 0 };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT" ? undefined : { pid: 0 }; // unreadable or torn: stale
  }
}

function createExclusive(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Takes the lock on `dir` for this process, or throws {@link DataDirLocked} when a live process
 * holds it. A stale lock is taken over with a WARN line naming the dead pid; a takeover is itself
 * guarded (O_EXCL `server.lock.takeover`) so two processes racing over one stale lock cannot both win.
 * Returns `release()`, also run at process exit.
 */
export function lockDataDir(dir: string, command: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, startTime: startTimeOf(process.pid), command };
  const content = JSON.stringify(me) + "\n";
  const refuse = (h: Holder): never => {
    throw new DataDirLocked(
      `the data folder ${dir} is in use by process ${h.pid}${h.command ? ` (${h.command})` : ""}: stop it first, or give this process another EDGECONF_DATA_DIR (or a DATABASE_URL)`,
    );
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createExclusive(file, content)) return releaser(file, content);
    const holder = readHolder(file);
    if (!holder) continue; // released between our two calls: try again
    if (isAlive(holder)) refuse(holder);
    const guard = `${file}.takeover`;
    if (!createExclusive(guard, content)) {
      const age = Date.now() - (statSafe(guard) ?? Date.now());
      if (age < GUARD_STALE_MS) refuse(readHolder(guard) ?? holder);
      rmSync(guard, { force: true });
      continue;
    }
    try {
      const again = readHolder(file);
      if (again && isAlive(again)) refuse(again);
      rmSync(file, { force: true });
      if (!createExclusive(file, content)) continue;
      log("WARN", "took over a stale data folder lock", { dir, stalePid: holder.pid, staleCommand: holder.command });
      return releaser(file, content);
    } finally {
      rmSync(guard, { force: true });
    }
  }
  return refuse(readHolder(file) ?? { pid: 0 });
}

const statSafe = (p: string) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return undefined;
  }
};

function releaser(file: string, content: string): () => void {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(file, "utf8") === content) unlinkSync(file);
    } catch {
      /* already gone */
    }
  };
  process.once("exit", release);
  return release;
}

/**
 * Everything a process does before it opens the embedded folder: take its lock, then make it
 * owner-only (one WARN line saying what was tightened). Throws {@link DataDirLocked} or the fs error.
 */
export function claimDataDir(dir: string, command: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const release = lockDataDir(dir, command); // first: a refused process leaves the holder's folder untouched
  try {
    const tightened = privateDataDir(dir);
    if (tightened.folders || tightened.files) log("WARN", "data folder was readable by others: made owner-only (0700 folders, 0600 files)", { dir, ...tightened });
  } catch (err) {
    release();
    throw err;
  }
  return release;
}
