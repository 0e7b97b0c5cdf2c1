/**
 * What the agent remembers per service, in `{app_dir}/.edgeconf/`: `state.json` (the release
 * applied, each file's hash and stat, the scripts) and `journal.json`, written before files are
 * touched and removed once the event is recorded, so a crash in between is finished on restart.
 */
import { join } from "node:path";
import { errnoOf, nodeFsys, READ, sha256At, type Fsys } from "./fsys.js";
import type { Manifest } from "./manifest.js";
import { placeFile, SafeTree } from "./safetree.js";
import type { SwapPlan } from "./swap.js";

export interface AppPaths {
  tempDir: string;
  /** The folders below temp_dir: [biz, app]. */
  segments: string[];
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
    tempDir,
    segments: [String(biz), app],
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
  /** The files are in place but the attempt's event could not be appended to metadata.json. */
  unrecorded?: boolean;
  /** kv services: kv.json as written (agent/kv.ts). */
  kv?: FileRecord;
}

/** "switch": files staged, being swapped in (`plan`); "post": files in place, post-script next. */
export type JournalPhase = "apply" | "switch" | "post";

export interface Journal {
  phase: JournalPhase;
  manifest: Manifest;
  /** The state before this apply, for a rollback after a restart. */
  previous: AppliedState | null;
  startedAt: string;
  /** The swap (agent/swap.ts): what is staged, kept and switched; its backups serve a rollback. */
  plan?: SwapPlan;
}

/** The service folder, every component checked (agent/safetree.ts). */
export const appTree = (paths: AppPaths, fsys: Fsys = nodeFsys) => SafeTree.open(fsys, paths.tempDir, paths.segments);

async function withTree<T>(paths: AppPaths, fsys: Fsys, work: (tree: SafeTree) => Promise<T>): Promise<T> {
  const tree = await appTree(paths, fsys);
  try {
    return await work(tree);
  } finally {
    await tree.close();
  }
}

/** A JSON file of `.edgeconf/`, never through a link; null when absent or unreadable JSON. */
async function readJson<T>(paths: AppPaths, name: string, fsys: Fsys): Promise<T | null> {
  return withTree(paths, fsys, async (tree) => {
    const path = await tree.path(`.edgeconf/${name}`);
    if (path === null || (await tree.kind(`.edgeconf/${name}`)) !== "file") return null;
    const handle = await fsys.open(path, READ);
    try {
      return JSON.parse(await handle.readFile("utf8")) as T;
    } catch (err) {
      if (err instanceof SyntaxError) return null;
      throw err;
    } finally {
      await handle.close();
    }
  });
}

export const readState = (paths: AppPaths, fsys: Fsys = nodeFsys) => readJson<AppliedState>(paths, "state.json", fsys);
export const readJournal = (paths: AppPaths, fsys: Fsys = nodeFsys) => readJson<Journal>(paths, "journal.json", fsys);

/** state.json, 0600, whole or not at all (temp file, fsync, rename). */
export async function writeState(paths: AppPaths, state: AppliedState, fsys: Fsys = nodeFsys): Promise<void> {
  await withTree(paths, fsys, (tree) => placeFile(tree, ".edgeconf", "state.json", JSON.stringify(state), 0o600));
}

export async function writeJournal(paths: AppPaths, journal: Journal, fsys: Fsys = nodeFsys): Promise<void> {
  await withTree(paths, fsys, (tree) => placeFile(tree, ".edgeconf", "journal.json", JSON.stringify(journal), 0o600));
}

export async function clearJournal(paths: AppPaths, fsys: Fsys = nodeFsys): Promise<void> {
  await withTree(paths, fsys, async (tree) => {
    const path = await tree.path(".edgeconf/journal.json");
    if (path) await fsys.unlink(path).catch((err) => (errnoOf(err) === "ENOENT" ? undefined : Promise.reject(err)));
  });
}

/**
 * True when the regular file at `path` (a SafeTree path) holds bytes hashing to `sha256`. The
 * record's size, mtime and inode, when they still match, stand for the hash (the agent wrote
 * that inode); otherwise the file is hashed, opened without following a link.
 */
export async function hasContent(fsys: Fsys, path: string, sha256: string, size: number, record?: FileRecord): Promise<boolean> {
  let s;
  try {
    s = await fsys.lstat(path);
  } catch (err) {
    if (errnoOf(err) === "ENOENT" || errnoOf(err) === "ENOTDIR") return false;
    throw err;
  }
  if (!s.isFile() || s.size !== size) return false;
  if (record && record.sha256 === sha256 && record.size === s.size && record.mtimeMs === s.mtimeMs && record.ino === s.ino) {
    return true;
  }
  return (await sha256At(fsys, path)) === sha256;
}
