/**
 * Safe access below a service folder `{temp_dir}/{biz}/{app}`, which other processes (the
 * business container in the seed's Kubernetes layout) can write to. Design rule 2 of the agent
 * safety invariants: the agent never follows a symlink it did not create.
 *
 * Each folder is opened once with O_DIRECTORY|O_NOFOLLOW, component by component from the
 * configured `temp_dir`, and later calls name their file through that open folder
 * (`/proc/self/fd/N/name`, Linux's race-free equivalent of openat(2)): swapping a folder for a
 * symlink after the check changes nothing, the agent keeps working in the folder it verified.
 * Where /proc is missing, each component is checked with lstat before use (a narrow race remains).
 * A symlink, or a FIFO/socket/device where a file or folder is expected, raises UnsafePathError
 * naming the path.
 */
import { existsSync } from "node:fs";
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { errnoOf, NEW_FILE, type Fsys } from "./fsys.js";

const PROC = existsSync("/proc/self/fd");
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

export class UnsafePathError extends Error {
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(`${path} is ${what}; the agent does not follow it (refused before anything was changed there)`);
  }
}

/** What stands at a path, from lstat: refuses links and special files. */
export type Kind = "absent" | "file" | "dir";

export class SafeTree {
  /** Folders opened so far (promises: two callers asking at once share one open). */
  private readonly dirs = new Map<string, Promise<{ handle: FileHandle | null; path: string } | null>>();
  /** `/proc/self/fd/N` of each folder this tree opened → its real path, so errors name real paths. */
  private readonly named = new Map<string, string>();
  /** The file system, its errors naming real paths instead of `/proc/self/fd/N` (agent/fsys.ts). */
  readonly fsys: Fsys;

  private constructor(
    /** The real path of the tree's root, for messages. */
    readonly root: string,
    fsys: Fsys,
  ) {
    this.fsys = namingRealPaths(fsys, this.named);
  }

  /**
   * Opens `{base}/{segments...}`: `base` (temp_dir, configured by the operator) is trusted; each
   * segment below it is created (0755) when missing and must be a real folder.
   */
  static async open(fsys: Fsys, base: string, segments: string[]): Promise<SafeTree> {
    const tree = new SafeTree(join(base, ...segments), fsys);
    const handle = PROC ? await fsys.open(base, constants.O_RDONLY | constants.O_DIRECTORY) : null;
    let path = handle ? `/proc/self/fd/${handle.fd}` : base;
    if (handle) tree.named.set(path, base);
    let real = base;
    const opened: FileHandle[] = handle ? [handle] : [];
    try {
      for (const segment of segments) {
        real = join(real, segment);
        const next = await tree.openDir(path, segment, real, true);
        if (!next) throw new UnsafePathError(real, "a file where a folder must be");
        if (next.handle) opened.push(next.handle);
        path = next.path;
      }
    } catch (err) {
      await Promise.all(opened.map((h) => h.close().catch(() => undefined)));
      throw err;
    }
    // Only the last one is needed; the walk's parents are closed.
    const last = opened.pop() ?? null;
    await Promise.all(opened.map((h) => h.close()));
    tree.dirs.set("", Promise.resolve({ handle: last, path }));
    return tree;
  }

  /** The real path of `rel`, for messages and logs. */
  real(rel: string): string {
    return rel ? join(this.root, rel) : this.root;
  }

  /** lstat of `rel`: absent, file or dir; a link or special file raises UnsafePathError. */
  async kind(rel: string): Promise<Kind> {
    const path = await this.path(rel);
    if (path === null) return "absent";
    return this.kindAt(path, this.real(rel));
  }

  private async kindAt(path: string, real: string): Promise<Kind> {
    let s;
    try {
      s = await this.fsys.lstat(path);
    } catch (err) {
      if (errnoOf(err) === "ENOENT") return "absent";
      throw err;
    }
    if (s.isSymbolicLink()) throw new UnsafePathError(real, "a symbolic link");
    if (s.isDirectory()) return "dir";
    if (s.isFile()) return "file";
    throw new UnsafePathError(real, "a special file (FIFO, socket or device)");
  }

  private async openDir(parent: string, name: string, real: string, create: boolean): Promise<{ handle: FileHandle | null; path: string } | null> {
    const path = `${parent}/${name}`;
    for (let tries = 0; ; tries++) {
      const kind = await this.kindAt(path, real);
      if (kind === "file") return null;
      if (kind === "absent") {
        if (!create) return null;
        try {
          await this.fsys.mkdir(path, 0o755);
        } catch (err) {
          if (errnoOf(err) !== "EEXIST" || tries > 2) throw err;
        }
        continue;
      }
      if (!PROC) return { handle: null, path };
      try {
        const handle = await this.fsys.open(path, DIR_FLAGS);
        this.named.set(`/proc/self/fd/${handle.fd}`, real);
        return { handle, path: `/proc/self/fd/${handle.fd}` };
      } catch (err) {
        // Swapped between lstat and open: look again (and name what is there now).
        if (tries > 2 || !["ENOTDIR", "ELOOP", "ENOENT"].includes(errnoOf(err) ?? "")) throw err;
      }
    }
  }

  /**
   * The verified folder `rel` ("" is the root), as a path the fs calls can use; created with its
   * parents when `create`. null when absent (and not created) or when a file stands in the way.
   */
  async dir(rel: string, create = false): Promise<string | null> {
    for (;;) {
      const entry = this.dirs.get(rel);
      if (entry) {
        const known = await entry.catch(() => null);
        if (known) return known.path;
        if (!create) return null;
        continue; // absent when asked without create (its asker forgets it): open it now
      }
      // No await between the check and the set: one open per folder, no handle ever dropped.
      const cut = rel.lastIndexOf("/");
      const opening = (async () => {
        const parent = await this.dir(cut < 0 ? "" : rel.slice(0, cut), create);
        return parent === null ? null : this.openDir(parent, rel.slice(cut + 1), this.real(rel), create);
      })();
      this.dirs.set(rel, opening);
      try {
        const opened = await opening;
        if (opened) return opened.path;
        this.dirs.delete(rel); // absent: ask again later
        return null;
      } catch (err) {
        this.dirs.delete(rel);
        throw err;
      }
    }
  }

  /** A path for the entry `rel` inside its verified folder (null when the folder is absent). */
  async path(rel: string, createParent = false): Promise<string | null> {
    const cut = rel.lastIndexOf("/");
    const dir = await this.dir(cut < 0 ? "" : rel.slice(0, cut), createParent);
    return dir === null ? null : `${dir}/${rel.slice(cut + 1)}`;
  }

  /** Forgets `rel` and the folders below it, after it was removed. */
  async forget(rel: string): Promise<void> {
    for (const [key, value] of [...this.dirs]) {
      if (key === rel || key.startsWith(rel + "/")) {
        this.dirs.delete(key);
        await (await value.catch(() => null))?.handle?.close().catch(() => undefined);
      }
    }
  }

  /**
   * Every entry below folder `rel`, as paths relative to it: files, and folders (bottom-up,
   * for pruning). A link or special file anywhere raises UnsafePathError, or with `lenient` is
   * listed in `others` (never followed).
   */
  async walk(rel: string, lenient = false): Promise<{ files: string[]; dirs: string[]; others: string[] }> {
    const out = { files: [] as string[], dirs: [] as string[], others: [] as string[] };
    const visit = async (sub: string) => {
      const dir = await this.dir(sub ? `${rel}/${sub}` : rel);
      if (dir === null) return;
      for (const entry of await this.fsys.readdir(dir)) {
        const child = sub ? `${sub}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          await visit(child);
          out.dirs.push(child);
        } else if (entry.isFile()) out.files.push(child);
        else if (lenient) out.others.push(child);
        else if (entry.isSymbolicLink()) throw new UnsafePathError(this.real(`${rel}/${child}`), "a symbolic link");
        else throw new UnsafePathError(this.real(`${rel}/${child}`), "a special file (FIFO, socket or device)");
      }
    };
    await visit("");
    return out;
  }

  async close(): Promise<void> {
    const opened = [...this.dirs.values()];
    this.dirs.clear();
    await Promise.all(opened.map(async (d) => (await d.catch(() => null))?.handle?.close().catch(() => undefined)));
  }
}

/**
 * Writes a new file `name` in the verified folder `dir` of `tree` with `data` and `mode` from
 * its creation (O_CREAT|O_EXCL|O_NOFOLLOW on a temp name, then a rename over `name`). For hook
 * scripts and the agent's own files: a link planted at `name` is replaced, never followed.
 */
export async function placeFile(tree: SafeTree, dir: string, name: string, data: string | Buffer, mode: number): Promise<string> {
  const folder = await tree.dir(dir, true);
  const real = tree.real(dir ? `${dir}/${name}` : name);
  if (folder === null) throw new UnsafePathError(tree.real(dir), "a file where a folder must be");
  if ((await tree.kind(dir ? `${dir}/${name}` : name)) === "dir") throw new UnsafePathError(real, "a folder where a file must be");
  const tmp = `${folder}/.${name}.edgeconf-tmp-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
  const { fsys } = tree;
  try {
    const handle = await fsys.open(tmp, NEW_FILE, mode);
    try {
      await handle.chmod(mode);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsys.rename(tmp, `${folder}/${name}`);
  } catch (err) {
    await fsys.unlink(tmp).catch(() => undefined);
    throw err;
  }
  return real;
}

/**
 * Removes the temp files `placeFile` (and writeFileAtomic) leave in folder `dir` when killed before
 * their rename: `.NAME.edgeconf-tmp-*` of the file `name`, or of any file when `name` is omitted.
 * A missing folder has none; only regular files are removed (a link is never followed).
 */
export async function removeTempFiles(tree: SafeTree, dir: string, name?: string): Promise<void> {
  const folder = await tree.dir(dir);
  if (folder === null) return;
  const prefix = name === undefined ? "." : `.${name}.edgeconf-tmp-`;
  for (const e of await tree.fsys.readdir(folder)) if (e.isFile() && e.name.startsWith(prefix) && e.name.includes(".edgeconf-tmp-")) await tree.fsys.unlink(`${folder}/${e.name}`);
}

const PROC_FD = /\/proc\/self\/fd\/\d+/g;

/**
 * `fsys` whose failures name real paths: an error's message, `path` and `dest` have each
 * `/proc/self/fd/N` of a folder in `named` replaced by that folder's path ("EBUSY: resource busy or
 * locked, rename '/srv/app/files/main.conf'", not ".../proc/self/fd/23/main.conf").
 */
function namingRealPaths(fsys: Fsys, named: Map<string, string>): Fsys {
  const rename = (text: string) => text.replace(PROC_FD, (p) => named.get(p) ?? p);
  const fix = (err: unknown): never => {
    if (err instanceof Error) {
      const e = err as Error & { path?: unknown; dest?: unknown };
      e.message = rename(e.message);
      if (typeof e.path === "string") e.path = rename(e.path);
      if (typeof e.dest === "string") e.dest = rename(e.dest);
    }
    throw err;
  };
  return {
    open: (path, flags, mode) => fsys.open(path, flags, mode).catch(fix),
    lstat: (path) => fsys.lstat(path).catch(fix),
    mkdir: (path, mode) => fsys.mkdir(path, mode).catch(fix),
    rename: (from, to) => fsys.rename(from, to).catch(fix),
    link: (from, to) => fsys.link(from, to).catch(fix),
    unlink: (path) => fsys.unlink(path).catch(fix),
    rmdir: (path) => fsys.rmdir(path).catch(fix),
    readdir: (path) => fsys.readdir(path).catch(fix),
  };
}
