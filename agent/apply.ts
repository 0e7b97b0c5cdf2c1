/**
 * Writes a release's files below `{app_dir}/files/{path}/{name}`, after consul-template's
 * `renderer.go`: each file is copied to a temp file in its target folder, given its permission,
 * and renamed over the target, so a reader never sees half a file. Files no longer in the
 * release are removed and emptied folders pruned.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { chmod, chown, copyFile, link, lstat, mkdir, readdir, readFile, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { isNotFound, mapLimit, tempSibling } from "./fsutil.js";
import type { Logger } from "./log.js";
import { ManifestError, relativeTarget, type FilePermission, type ManifestFile } from "./manifest.js";
import { hasContent, type FileRecord } from "./state.js";

export interface ApplyOptions {
  filesDir: string;
  files: ManifestFile[];
  /** sha256 → local path of verified bytes (cache or staging), for files that must be written. */
  sources: Map<string, string>;
  /** Records of the release applied before, to skip re-hashing unchanged files. */
  previous: Record<string, FileRecord>;
  /** When set, each replaced or removed file is first hard-linked here (by sha256) for a rollback. */
  backupDir?: string;
  /** Temp files already staged beside their targets (relative path → temp path). */
  staged?: Map<string, string>;
  log: Logger;
  owners?: OwnerResolver;
}

export interface ApplyResult {
  records: Record<string, FileRecord>;
  written: number;
  unchanged: number;
  removed: number;
}

/** The absolute target of a manifest file, refusing anything that would land outside `filesDir`. */
export function targetPath(filesDir: string, file: Pick<ManifestFile, "path" | "name">): string {
  const root = resolve(filesDir);
  const target = resolve(root, relativeTarget(file));
  if (!target.startsWith(root + sep)) throw new ManifestError(`file path "${file.path}/${file.name}" escapes the files folder`);
  return target;
}

export function parsePrivilege(privilege: string): number {
  return privilege === "" ? 0o644 : parseInt(privilege, 8) & 0o7777;
}

/** Maps user and group names to ids from /etc/passwd and /etc/group (no native module needed). */
export class OwnerResolver {
  private users?: Map<string, number>;
  private groups?: Map<string, number>;
  constructor(private readonly etcDir = "/etc") {}

  private async load(file: string): Promise<Map<string, number>> {
    const map = new Map<string, number>();
    try {
      for (const line of (await readFile(join(this.etcDir, file), "utf8")).split("\n")) {
        const [name, , id] = line.split(":");
        if (name && id && /^\d+$/.test(id)) map.set(name, Number(id));
      }
    } catch {
      /* no such database: every name is unknown */
    }
    return map;
  }

  async uid(name: string): Promise<number | undefined> {
    if (/^\d+$/.test(name)) return Number(name);
    this.users ??= await this.load("passwd");
    return this.users.get(name);
  }

  async gid(name: string): Promise<number | undefined> {
    if (/^\d+$/.test(name)) return Number(name);
    this.groups ??= await this.load("group");
    return this.groups.get(name);
  }
}

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0;

/**
 * Sets user and group when running as root. `current` is the file's owner now (a file the agent
 * just created belongs to the agent): no chown when it already matches.
 */
async function setOwner(
  path: string,
  permission: FilePermission,
  owners: OwnerResolver,
  log: Logger,
  where: string,
  current: { uid: number; gid: number } = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 },
): Promise<void> {
  if (!isRoot() || (!permission.user && !permission.group)) return;
  const uid = permission.user ? await owners.uid(permission.user) : undefined;
  const gid = permission.group ? await owners.gid(permission.group) : undefined;
  if (permission.user && uid === undefined) log.warn("user does not exist, owner left unchanged", { file: where, user: permission.user });
  if (permission.group && gid === undefined) log.warn("group does not exist, group left unchanged", { file: where, group: permission.group });
  if ((uid === undefined || uid === current.uid) && (gid === undefined || gid === current.gid)) return;
  await chown(path, uid ?? -1, gid ?? -1);
}

/** Makes `dir` a folder, removing a file that stands where a folder must be. */
async function ensureDir(dir: string, root: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EEXIST" && code !== "ENOTDIR") throw err;
    let cursor = root;
    for (const part of relative(root, dir).split(sep)) {
      cursor = join(cursor, part);
      const s = await lstat(cursor).catch(() => null);
      if (s && !s.isDirectory()) await rm(cursor, { force: true });
    }
    await mkdir(dir, { recursive: true });
  }
}

async function recordOf(path: string, file: ManifestFile): Promise<FileRecord> {
  const s = await stat(path);
  const { user, group, privilege } = file.permission;
  return { sha256: file.sha256, size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, privilege, user, group };
}

async function backup(target: string, sha256: string, backupDir: string | undefined): Promise<void> {
  if (!backupDir) return;
  try {
    await link(target, join(backupDir, sha256));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || isNotFound(err)) return;
    if (code === "EXDEV" || code === "EPERM") await copyFile(target, join(backupDir, sha256));
    else throw err;
  }
}

/**
 * Copies verified bytes to a hidden temp file beside the target, with its mode and owner, so the
 * final step is a rename. Returns null when the folder cannot be made without removing a file
 * (a file where the new release has a folder): that one is staged at commit time instead.
 */
/** Stages `file` beside its target from `source`: a verified local copy, or its bytes in memory. */
export async function stageFile(filesDir: string, file: ManifestFile, source: string | Buffer, log: Logger, owners: OwnerResolver): Promise<string | null> {
  const target = targetPath(filesDir, file);
  // Bytes in memory are small: write them with synchronous calls, which for a few hundred KB cost
  // less than a hand-off to libuv's thread pool per call (1,000 files: ~1 s less CPU).
  const inMemory = typeof source !== "string";
  try {
    if (inMemory) mkdirSync(dirname(target), { recursive: true });
    else await mkdir(dirname(target), { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" || code === "ENOTDIR") return null;
    throw err;
  }
  const tmp = tempSibling(target);
  try {
    if (typeof source === "string") {
      await copyFile(source, tmp);
      await chmod(tmp, parsePrivilege(file.permission.privilege));
    } else {
      writeFileSync(tmp, source);
      chmodSync(tmp, parsePrivilege(file.permission.privilege));
    }
    await setOwner(tmp, file.permission, owners, log, relativeTarget(file));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return tmp;
}

const APPLY_CONCURRENCY = 16;

/**
 * Writes every file of the release that is not already there (renaming the temp files staged
 * during the download, or staging them now), then removes the rest.
 */
export async function applyFiles(options: ApplyOptions): Promise<ApplyResult> {
  const { filesDir, files, sources, previous, log } = options;
  const owners = options.owners ?? new OwnerResolver();
  const result: ApplyResult = { records: {}, written: 0, unchanged: 0, removed: 0 };
  await mkdir(filesDir, { recursive: true });
  if (options.backupDir) await mkdir(options.backupDir, { recursive: true });
  await mapLimit(files, APPLY_CONCURRENCY, async (file) => {
    const rel = relativeTarget(file);
    const target = targetPath(filesDir, file);
    let tmp = options.staged?.get(rel) ?? null;
    if (!tmp) {
      if (await hasContent(target, file.sha256, file.size, previous[rel])) {
        const mode = parsePrivilege(file.permission.privilege);
        const now = await stat(target);
        if ((now.mode & 0o7777) !== mode) await chmod(target, mode);
        await setOwner(target, file.permission, owners, log, rel, now);
        result.records[rel] = await recordOf(target, file);
        result.unchanged++;
        return;
      }
      const source = sources.get(file.sha256);
      if (!source) throw new Error(`no verified copy of ${rel} (${file.sha256})`);
      await ensureDir(dirname(target), filesDir);
      tmp = (await stageFile(filesDir, file, source, log, owners))!;
    }
    const old = previous[rel];
    if (old) await backup(target, old.sha256, options.backupDir);
    try {
      await rename(tmp, target).catch(async (err: NodeJS.ErrnoException) => {
        // A folder where the new release has a file: replace it.
        if (err.code !== "EISDIR" && err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
        await rm(target, { recursive: true, force: true });
        await rename(tmp!, target);
      });
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    result.records[rel] = await recordOf(target, file);
    result.written++;
    log.info("write file success", { dst: target });
  });
  const keep = new Set(Object.keys(result.records));
  for (const rel of await listFiles(filesDir)) {
    if (keep.has(rel)) continue;
    const path = join(filesDir, rel);
    const old = previous[rel];
    if (old) await backup(path, old.sha256, options.backupDir);
    await rm(path, { force: true });
    result.removed++;
    log.info("remove file no longer in release", { path });
  }
  await pruneEmptyDirs(filesDir, false);
  return result;
}

/** Every non-directory below `dir`, as `/`-separated relative paths. */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(join(dir, prefix), { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const out: string[] = [];
  for (const entry of entries) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}

/** Removes empty folders bottom-up; returns whether `dir` itself ended empty. */
export async function pruneEmptyDirs(dir: string, removeSelf: boolean): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err)) return true;
    throw err;
  }
  let empty = true;
  for (const entry of entries) {
    if (entry.isDirectory() && (await pruneEmptyDirs(join(dir, entry.name), true))) continue;
    empty = false;
  }
  if (empty && removeSelf) await rmdir(dir).catch(() => undefined);
  return empty;
}
