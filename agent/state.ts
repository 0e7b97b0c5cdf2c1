/**
 * What the agent remembers per service, in `{app_dir}/.edgeconf/`: `state.json` (the release
 * applied, each file's hash and stat, the scripts) and `journal.json`, written before files are
 * touched and removed once the event is recorded, so a crash in between is finished on restart.
 */
import { mkdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { isNotFound, sha256File, writeFileAtomic } from "./fsutil.js";
import type { Manifest } from "./manifest.js";

export interface AppPaths {
  appDir: string;
  filesDir: string;
  hooksDir: string;
  privateDir: string;
  stagingDir: string;
  previousDir: string;
  statePath: string;
  journalPath: string;
}

export function appPaths(tempDir: string, biz: number, app: string): AppPaths {
  const appDir = join(tempDir, String(biz), app);
  const privateDir = join(appDir, ".edgeconf");
  return {
    appDir,
    filesDir: join(appDir, "files"),
    hooksDir: join(appDir, "hooks"),
    privateDir,
    stagingDir: join(privateDir, "staging"),
    previousDir: join(privateDir, "previous"),
    statePath: join(privateDir, "state.json"),
    journalPath: join(privateDir, "journal.json"),
  };
}

/** A file as last written by the agent; the stat fields let a check skip re-hashing. */
export interface FileRecord {
  sha256: string;
  size: number;
  mtimeMs: number;
  ino: number;
  privilege: string;
  user: string;
  group: string;
}

export interface AppliedState {
  releaseId: number | null;
  releaseName: string;
  /** The manifest applied: its files and scripts, kept to roll back to. */
  manifest: Manifest;
  files: Record<string, FileRecord>;
  appliedAt: string;
  /** The files are on disk but the post-script refused them: not applied (design invariant 5). */
  postFailed?: boolean;
}

export type JournalPhase = "apply" | "post";

export interface Journal {
  phase: JournalPhase;
  manifest: Manifest;
  /** The state before this apply, for a rollback after a restart. */
  previous: AppliedState | null;
  startedAt: string;
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (err) {
    if (isNotFound(err) || err instanceof SyntaxError) return null;
    throw err;
  }
}

export const readState = (paths: AppPaths) => readJson<AppliedState>(paths.statePath);
export const readJournal = (paths: AppPaths) => readJson<Journal>(paths.journalPath);

export async function writeState(paths: AppPaths, state: AppliedState): Promise<void> {
  await mkdir(paths.privateDir, { recursive: true });
  await writeFileAtomic(paths.statePath, JSON.stringify(state));
}

export async function writeJournal(paths: AppPaths, journal: Journal): Promise<void> {
  await mkdir(paths.privateDir, { recursive: true });
  await writeFileAtomic(paths.journalPath, JSON.stringify(journal));
}

export async function clearJournal(paths: AppPaths): Promise<void> {
  await rm(paths.journalPath, { force: true });
}

/**
 * True when `path` holds bytes hashing to `sha256`. The record's size, mtime and inode, when
 * they still match, stand for the hash (the agent wrote that inode); otherwise the file is hashed.
 */
export async function hasContent(path: string, sha256: string, size: number, record?: FileRecord): Promise<boolean> {
  let s;
  try {
    s = await stat(path);
  } catch (err) {
    if (isNotFound(err) || (err as NodeJS.ErrnoException).code === "ENOTDIR") return false;
    throw err;
  }
  if (!s.isFile() || s.size !== size) return false;
  if (record && record.sha256 === sha256 && record.size === s.size && record.mtimeMs === s.mtimeMs && record.ino === s.ino) {
    return true;
  }
  return (await sha256File(path)) === sha256;
}
