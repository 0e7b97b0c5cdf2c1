/**
 * What the agent remembers per service, in `{app_dir}/.edgeconf/`: `state.json` (the release
 * applied, each file's hash and stat, the scripts) and `journal.json`, written before files are
 * touched and removed once the event is recorded, so a crash in between is finished on restart.
 */
import { join } from "node:path";
import { errnoOf, nodeFsys, READ, sha256At, type Fsys } from "./fsys.js";
import { checkPlan, seal, unseal, UntrustedFileError, type SealKey } from "./integrity.js";
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

/**
 * A file as last written by the agent; the stat fields let a check skip re-hashing. `ctimeMs`
 * is the status change time, which no user can set (touch and utimes change it): a record
 * without it (written by an older agent) always re-hashes.
 */
export interface FileRecord {
  sha256: string;
  size: number;
  mtimeMs: number;
  ctimeMs?: number;
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
  /**
   * The number of the apply attempt that last wrote this state (see `checkFresh`); absent in a
   * state written by an agent that predates sequences (taken as 0).
   */
  seq?: number;
  /**
   * False while that attempt may still have a journal (from its swap until its event is recorded
   * and its journal removed); true once it is finished, so no journal of it is resumed again.
   */
  closed?: boolean;
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
  /** The attempt that wrote this journal (absent: an agent that predates sequences). */
  seq?: number;
  /** The `seq` of the state that attempt started from (0: none, or one without a sequence). */
  base?: number;
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

/** What a sealed file is bound to: the service and the file's name (agent/integrity.ts). */
const scopeOf = (paths: AppPaths, name: string) => `${paths.segments.join("/")}/${name}`;

/**
 * A file of `.edgeconf/`, never through a link: its authenticated body (parsed), null when
 * absent, "untrusted" when its tag is missing or wrong or its JSON unreadable.
 */
async function readSealed<T>(paths: AppPaths, name: string, key: SealKey, fsys: Fsys): Promise<T | null | "untrusted"> {
  return withTree(paths, fsys, async (tree) => {
    const path = await tree.path(`.edgeconf/${name}`);
    if (path === null || (await tree.kind(`.edgeconf/${name}`)) !== "file") return null;
    const handle = await fsys.open(path, READ);
    try {
      const body = unseal(key, scopeOf(paths, name), await handle.readFile("utf8"));
      return body === null ? "untrusted" : (JSON.parse(body) as T);
    } catch (err) {
      if (err instanceof SyntaxError) return "untrusted";
      throw err;
    } finally {
      await handle.close();
    }
  });
}

/**
 * The saved state, when the agent wrote it (its tag checks with `key`). Anything else is no
 * state: every file is then checked by its hash; `log` (when given) gets one warning.
 */
export async function readState(paths: AppPaths, key: SealKey, fsys: Fsys = nodeFsys, log?: { warn(msg: string, fields?: Record<string, unknown>): void }): Promise<AppliedState | null> {
  const state = await readSealed<AppliedState>(paths, "state.json", key, fsys);
  if (state !== "untrusted") return state;
  log?.warn("state.json was not written by this agent (no valid tag: edited, or another token); it is ignored and every file is checked by its hash", { path: paths.statePath });
  return null;
}

/**
 * The journal of an interrupted apply, or null. Throws UntrustedFileError when it is not the
 * agent's (no valid tag) or its plan breaks the plan rules (agent/integrity.ts, `checkPlan`).
 */
export async function readJournal(paths: AppPaths, key: SealKey, fsys: Fsys = nodeFsys): Promise<Journal | null> {
  const journal = await readSealed<Journal>(paths, "journal.json", key, fsys);
  if (journal === "untrusted") {
    throw new UntrustedFileError(
      `${paths.journalPath} was not written by this agent (no valid tag: edited, or written with another token); nothing in it is done. Check the service folder and remove that file to let applies go on`,
    );
  }
  if (journal === null) return null;
  if (journal.plan !== undefined) checkPlan(journal.plan, paths.journalPath);
  const state = await readSealed<AppliedState>(paths, "state.json", key, fsys);
  checkFresh(journal, state === "untrusted" ? null : state, paths);
  return journal;
}

/**
 * Freshness: a sealed journal proves the agent wrote it, not that it is the current one. Every
 * apply attempt has a number (`seq`, growing per service: see `nextSeq`); its journal records it
 * and the `seq` of the state it started from (`base`), and each state it writes records it too,
 * `closed` once the attempt is finished. A journal is resumed only while it is its attempt's:
 * the state is still the one it started from (`base`), or one its own attempt wrote and has not
 * closed. Anything else (a journal of an earlier apply, or a state older than the journal, put
 * back from a copy) raises UntrustedFileError naming the file; neither is acted on. Files of an
 * agent that predates sequences count as 0: such a journal is resumed only with such a state.
 */
export function checkFresh(journal: Journal, state: AppliedState | null, paths: AppPaths): void {
  const current = state?.seq ?? 0;
  const earlier = (what: string) =>
    new UntrustedFileError(
      `${paths.journalPath} is the journal of an earlier apply (${what}), put back from a copy; nothing in it is done. Check the service folder and remove that file to let applies go on`,
    );
  if (journal.seq === undefined) {
    if (state?.seq === undefined) return;
    throw earlier(`written before apply numbers, while the state is of apply ${current}`);
  }
  if (journal.seq > current) {
    const base = journal.base ?? 0;
    if (base === current) return;
    if (base > current) {
      throw new UntrustedFileError(
        `${paths.statePath} is ${state ? `the state of apply ${current}, older than` : "missing or not the agent's, yet"} the state apply ${journal.seq} started from (apply ${base}; its journal ${paths.journalPath} is pending): an earlier state was put back; neither is acted on. Check the service folder and remove the file that was put back`,
      );
    }
    throw earlier(`apply ${journal.seq} started from apply ${base}, while the state is of apply ${current}`);
  }
  if (journal.seq === current && state?.closed !== true) return;
  throw earlier(`apply ${journal.seq}, while the state is of apply ${current}${journal.seq === current ? ", finished" : ""}`);
}

/**
 * The number of a new apply attempt over `state`: one more than the state's, or the clock in
 * milliseconds when larger, so numbers keep growing even after state.json is removed by hand.
 */
export function nextSeq(state: AppliedState | null, now: Date): number {
  return Math.max((state?.seq ?? 0) + 1, now.getTime());
}

/**
 * A state taken as settled: written by an attempt that finished (or by an agent that predates
 * sequences). An unsettled one (`closed: false` with no journal left) is a copy made while its
 * attempt ran, or a crash right after its journal was removed: its release is applied again.
 */
export const settled = (state: AppliedState): boolean => state.closed !== false;

/** state.json, 0600, sealed, whole or not at all (temp file, fsync, rename). */
export async function writeState(paths: AppPaths, key: SealKey, state: AppliedState, fsys: Fsys = nodeFsys): Promise<void> {
  await withTree(paths, fsys, (tree) => placeFile(tree, ".edgeconf", "state.json", seal(key, scopeOf(paths, "state.json"), JSON.stringify(state)), 0o600));
}

/** journal.json, 0600, sealed, whole or not at all. */
export async function writeJournal(paths: AppPaths, key: SealKey, journal: Journal, fsys: Fsys = nodeFsys): Promise<void> {
  await withTree(paths, fsys, (tree) => placeFile(tree, ".edgeconf", "journal.json", seal(key, scopeOf(paths, "journal.json"), JSON.stringify(journal)), 0o600));
}

export async function clearJournal(paths: AppPaths, fsys: Fsys = nodeFsys): Promise<void> {
  await withTree(paths, fsys, async (tree) => {
    const path = await tree.path(".edgeconf/journal.json");
    if (path) await fsys.unlink(path).catch((err) => (errnoOf(err) === "ENOENT" ? undefined : Promise.reject(err)));
  });
}

/**
 * True when the regular file at `path` (a SafeTree path) holds bytes hashing to `sha256`. The
 * record's size, mtime, ctime and inode, when they all still match, stand for the hash (the agent
 * wrote that inode, and any write since, even one followed by `touch -r`, moved its ctime);
 * otherwise the file is hashed, opened without following a link.
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
  if (record && record.sha256 === sha256 && record.size === s.size && record.mtimeMs === s.mtimeMs && record.ctimeMs === s.ctimeMs && record.ino === s.ino) {
    return true;
  }
  return (await sha256At(fsys, path)) === sha256;
}
