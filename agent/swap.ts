/**
 * The swap: how a staged release replaces the files of `files/` as one transaction.
 *
 * `files/` cannot be swapped with one rename (Kubernetes' AtomicWriter does that with a symlink):
 * the seed's layout has a fixed `files/` folder that a business container may bind-mount, and
 * the agent never creates links it would later have to trust. So each file is staged beside its
 * target, every file to be replaced or removed is first kept in `.edgeconf/previous/` (a hard
 * link, or a copy where linking is impossible), the journal records the plan, and only then is
 * anything switched: removals, then one rename per file. Where a rename is impossible (EBUSY on
 * a bind-mounted file, EXDEV, ...) the new bytes are written over the target in place, as confd
 * does; if that fails too, every switched file is put back from `previous/` and new files are
 * removed, so `files/` holds the old version byte for byte with its modes. After a crash, the
 * journal's plan is run again (each step is idempotent) or undone.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { ContentChangedError } from "./integrity.js";
import { mapLimit, TEMP_MARKER } from "./fsutil.js";
import { errnoOf, IN_PLACE, NEW_FILE, readChunks, type Fsys } from "./fsys.js";
import { UnsafePathError, type SafeTree } from "./safetree.js";

const PREVIOUS = ".edgeconf/previous";
const CONCURRENCY = 16;

export interface Owner {
  uid: number;
  gid: number;
}

export interface WriteEntry {
  /** Target, relative to the service folder (`files/etc/nginx/nginx.conf`). */
  rel: string;
  /** The staged temp file beside it; null until staged (a file stood where its folder goes). */
  tmp: string | null;
  /** Where the file it replaces is kept; null when there was none. */
  backup: string | null;
  mode: number;
  owner?: Owner;
}

export interface RemoveEntry {
  rel: string;
  backup: string;
}

export interface SwapPlan {
  id: string;
  writes: WriteEntry[];
  removes: RemoveEntry[];
  /** Every backup exists: from here on, undo restores them. */
  backedUp: boolean;
  /**
   * The undo has begun (saved in the journal before its first step): a restart finishes the undo,
   * never the switch, as the undo removes staged files the switch would take as switched.
   */
  undoing?: boolean;
}

export class SwapError extends Error {}

const cut = (rel: string) => {
  const i = rel.lastIndexOf("/");
  return { dir: rel.slice(0, Math.max(0, i)), name: rel.slice(i + 1) };
};

const tempName = (rel: string) => {
  const { dir, name } = cut(rel);
  return `${dir}/.${name}${TEMP_MARKER}${Math.random().toString(16).slice(2, 10)}`;
};

/** A backup name for the plan's n-th kept file. */
export const backupName = (plan: Pick<SwapPlan, "id">, n: number) => `${PREVIOUS}/${plan.id}-${n}`;

/** Copies the file `source` into `out`; returns the SHA-256 of the bytes copied. */
async function copyFrom(fsys: Fsys, source: string, out: FileHandle): Promise<string> {
  const hash = createHash("sha256");
  await readChunks(fsys, source, (chunk) => {
    hash.update(chunk);
    return out.write(chunk);
  });
  return hash.digest("hex");
}

/**
 * Creates `path` (never an existing file or a link) with `mode` from creation, its owner, and
 * the bytes of `source` (in memory, or a local file). With `expect` (a SHA-256), the bytes
 * actually copied from a file must hash to it, else the new file is removed and
 * ContentChangedError thrown: the source may have changed since it was checked.
 */
export async function writeNew(fsys: Fsys, path: string, source: Buffer | string, mode: number, owner?: Owner, expect?: string): Promise<void> {
  const out = await fsys.open(path, NEW_FILE, mode & 0o777);
  try {
    if (owner) await out.chown(owner.uid, owner.gid);
    await out.chmod(mode); // after chown, which clears set-id bits; exact, whatever the umask
    if (typeof source === "string") {
      const copied = await copyFrom(fsys, source, out);
      if (expect && copied !== expect) throw new ContentChangedError(`${source} changed while it was copied (sha256 ${copied}, expected ${expect})`);
    } else await out.writeFile(source);
  } catch (err) {
    await out.close().catch(() => undefined);
    await fsys.unlink(path).catch(() => undefined);
    throw err;
  }
  await out.close();
}

/**
 * Stages a write beside its target; null when a file stands where its folder must be. A
 * `source` file is copied only if its bytes hash to `expect` (writeNew).
 */
export async function stage(tree: SafeTree, entry: WriteEntry, source: Buffer | string, expect?: string): Promise<string | null> {
  const { dir } = cut(entry.rel);
  if ((await tree.dir(dir, true).catch((err) => (errnoOf(err) === "ENOTDIR" ? null : Promise.reject(err)))) === null) return null;
  const tmp = tempName(entry.rel);
  await writeNew(tree.fsys, (await tree.path(tmp))!, source, entry.mode, entry.owner, expect);
  entry.tmp = tmp;
  return tmp;
}

/** Keeps the file at `rel` as `backup`: a hard link, or a copy (temp name, then rename). */
async function keep(tree: SafeTree, rel: string, backup: string): Promise<void> {
  const { fsys } = tree;
  const to = (await tree.path(backup, true))!;
  if ((await tree.kind(backup)) === "file") return; // kept before a restart
  const from = (await tree.path(rel))!;
  if ((await tree.kind(rel)) !== "file") throw new SwapError(`${tree.real(rel)} vanished before it could be kept`);
  try {
    await fsys.link(from, to);
  } catch (err) {
    if (errnoOf(err) === "EEXIST") return;
    const s = await fsys.lstat(from);
    const tmp = (await tree.path(tempName(backup)))!;
    await writeNew(fsys, tmp, from, s.mode & 0o7777, { uid: s.uid, gid: s.gid });
    await fsys.rename(tmp, to);
  }
}

/**
 * Writes `source` over the existing regular file at `target` in place: the fallback where a
 * rename is impossible. Refused for anything but a regular file with one link (a hard link
 * planted to a file elsewhere would be written through).
 */
async function writeInPlace(tree: SafeTree, rel: string, source: string, mode: number, owner?: Owner, keptAs?: string | null, release?: ReleaseLinks): Promise<void> {
  const { fsys } = tree;
  const target = (await tree.path(rel))!;
  if (keptAs) await unshareBackup(tree, rel, keptAs);
  if (release) await release(rel, await fsys.lstat(target));
  const out = await fsys.open(target, IN_PLACE);
  try {
    const s = await out.stat();
    if (!s.isFile()) throw new UnsafePathError(tree.real(rel), "not a regular file");
    if (s.nlink > 1) throw new SwapError(`${tree.real(rel)} has ${s.nlink} hard links; it is not written in place`);
    if (owner) await out.chown(owner.uid, owner.gid);
    await out.chmod(mode);
    await out.truncate(0);
    await copyFrom(fsys, source, out);
    await out.sync();
  } finally {
    await out.close();
  }
}

/** A backup that is a hard link of the target becomes a copy, before the target is written in place. */
async function unshareBackup(tree: SafeTree, rel: string, backup: string): Promise<void> {
  const { fsys } = tree;
  const [a, b] = await Promise.all([fsys.lstat((await tree.path(rel))!), fsys.lstat((await tree.path(backup))!).catch(() => null)]);
  if (!b || a.ino !== b.ino || a.dev !== b.dev) return;
  const tmp = (await tree.path(tempName(backup)))!;
  await writeNew(fsys, tmp, (await tree.path(backup))!, b.mode & 0o7777, { uid: b.uid, gid: b.gid });
  await fsys.rename(tmp, (await tree.path(backup))!);
}

/**
 * Drops the agent's own other hard links to the file at `rel` (the blob cache's entry for its
 * bytes), so that an in-place write changes nothing but `rel`.
 */
export type ReleaseLinks = (rel: string, s: { ino: number; dev: number; nlink: number }) => Promise<void>;

/** Moves the file `from` over `rel`; where the rename fails, writes it in place (confd's fallback). */
async function put(tree: SafeTree, from: string, rel: string, mode: number, owner: Owner | undefined, keptAs: string | null, release?: ReleaseLinks): Promise<void> {
  const { fsys } = tree;
  const source = (await tree.path(from))!;
  const target = (await tree.path(rel, true))!;
  try {
    await fsys.rename(source, target);
    return;
  } catch (err) {
    if (errnoOf(err) === "EISDIR" || errnoOf(err) === "ENOTEMPTY") {
      throw new SwapError(`${tree.real(rel)} is a folder that is not empty; it cannot become a file`);
    }
    if ((await tree.kind(rel)) !== "file") throw err;
    try {
      await writeInPlace(tree, rel, source, mode, owner, keptAs, release);
    } catch (inPlace) {
      throw new SwapError(`cannot replace ${tree.real(rel)}: rename failed (${errnoOf(err) ?? (err as Error).message}), in-place write failed (${errnoOf(inPlace) ?? (inPlace as Error).message})`);
    }
  }
  await fsys.unlink(source);
}

async function unlinkIf(tree: SafeTree, rel: string): Promise<void> {
  const path = await tree.path(rel);
  if (path === null) return;
  try {
    await tree.fsys.unlink(path);
  } catch (err) {
    if (errnoOf(err) !== "ENOENT") throw err;
  }
}

/** Removes empty folders below `rel` (bottom-up), not `rel` itself. */
export async function prune(tree: SafeTree, rel: string): Promise<void> {
  const { dirs } = await tree.walk(rel);
  for (const dir of dirs) {
    const path = await tree.path(`${rel}/${dir}`);
    if (path === null) continue;
    try {
      await tree.fsys.rmdir(path);
      await tree.forget(`${rel}/${dir}`);
    } catch (err) {
      if (!["ENOTEMPTY", "EEXIST", "ENOENT"].includes(errnoOf(err) ?? "")) throw err;
    }
  }
}

export interface SwitchOptions {
  tree: SafeTree;
  /** Saves the plan in the journal (called once every backup exists). */
  save: (plan: SwapPlan) => Promise<void>;
  /** Bytes of a write that could not be staged before (a file stood in its way), and their hash. */
  source: (entry: WriteEntry) => Promise<{ from: Buffer | string; sha256: string } | null>;
  /** Before a file is written in place: drops the agent's own other links to it. */
  release?: ReleaseLinks;
  /** The plan comes from the journal of an earlier run: a staged file may be gone (switched). */
  resumed?: boolean;
}

/**
 * Switches the plan in: backups, journal, removals, then each staged file. Idempotent, so a
 * restart runs it again. Throws (nothing undone) when a step fails; the caller then calls undo.
 */
export async function switchIn(plan: SwapPlan, options: SwitchOptions): Promise<void> {
  const { tree } = options;
  if (!plan.backedUp) {
    await mapLimit([...plan.writes.filter((w) => w.backup), ...plan.removes], CONCURRENCY, (e) => keep(tree, e.rel, e.backup!));
    plan.backedUp = true;
    await options.save(plan);
  }
  for (const entry of plan.removes) await unlinkIf(tree, entry.rel);
  if (plan.removes.length > 0) await prune(tree, "files");
  await mapLimit(plan.writes, CONCURRENCY, async (entry) => {
    if (entry.tmp && options.resumed && (await tree.kind(entry.tmp)) === "absent") {
      if ((await tree.kind(entry.rel)) === "file") return; // switched before a restart
      entry.tmp = null;
    }
    if (!entry.tmp) {
      const source = await options.source(entry);
      if (source === null || (await stage(tree, entry, source.from, source.sha256)) === null) throw new SwapError(`cannot create ${tree.real(entry.rel)}: no verified copy or no folder for it`);
    }
    await put(tree, entry.tmp!, entry.rel, entry.mode, entry.owner, entry.backup, options.release);
  });
}

/** Puts the kept file back at `rel` (link or copy to a temp name, then rename, else in place). */
async function restore(tree: SafeTree, rel: string, backup: string): Promise<void> {
  const { fsys } = tree;
  if ((await tree.kind(backup)) !== "file") return;
  const from = (await tree.path(backup))!;
  const s = await fsys.lstat(from);
  const now = (await tree.kind(rel)) === "file" ? await fsys.lstat((await tree.path(rel))!) : null;
  if (now && now.ino === s.ino && now.dev === s.dev) return; // never switched: the kept link is the file
  const { dir } = cut(rel);
  if ((await tree.dir(dir, true)) === null) throw new SwapError(`cannot restore ${tree.real(rel)}: a file stands where its folder was`);
  const tmp = tempName(rel);
  const tmpPath = (await tree.path(tmp))!;
  await fsys.link(from, tmpPath).catch(() => writeNew(fsys, tmpPath, from, s.mode & 0o7777, { uid: s.uid, gid: s.gid }));
  await put(tree, tmp, rel, s.mode & 0o7777, { uid: s.uid, gid: s.gid }, null);
}

/**
 * Undoes a plan switched in part or not at all: new files removed, temp files removed, kept
 * files put back (only once every backup existed, i.e. once switching could have begun).
 */
export async function undo(plan: SwapPlan, tree: SafeTree): Promise<void> {
  await mapLimit(plan.writes, CONCURRENCY, async (entry) => {
    if (entry.tmp) await unlinkIf(tree, entry.tmp);
    if (plan.backedUp && !entry.backup) await unlinkIf(tree, entry.rel);
  });
  await prune(tree, "files");
  if (plan.backedUp) {
    await mapLimit([...plan.writes.filter((w) => w.backup), ...plan.removes], CONCURRENCY, (e) => restore(tree, e.rel, e.backup!));
  }
}

/** Removes what a finished (or abandoned) transaction kept: `.edgeconf/previous/`. */
export async function dropBackups(tree: SafeTree): Promise<void> {
  if ((await tree.kind(PREVIOUS)) !== "dir") return;
  const { files } = await tree.walk(PREVIOUS);
  for (const name of files) await unlinkIf(tree, `${PREVIOUS}/${name}`);
}
