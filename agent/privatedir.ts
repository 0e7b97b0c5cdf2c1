/**
 * Private folders in the shared `{temp_dir}` (the blob cache and its `.partial`): made 0700,
 * never followed through a link. In the seed's Kubernetes layout another container can write
 * `{temp_dir}`; a `cache -> /elsewhere` planted there, before or after start, must not make a
 * root agent chmod, fill, read or empty another folder.
 */
import { close, constants, existsSync, fchmod, fstat, open } from "node:fs";
import { lstat, mkdir } from "node:fs/promises";
import { promisify } from "node:util";
import { dirname } from "node:path";
import { isNotFound } from "./fsutil.js";
import { errnoOf, makeDirs } from "./fsys.js";
import type { Logger } from "./log.js";
import { UnsafePathError } from "./safetree.js";

const PROC = existsSync("/proc/self/fd");
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
// Plain descriptors, not FileHandles: a cache lives as long as its process, and a FileHandle
// dropped unclosed (by a test's discarded runner) is closed by the garbage collector with a warning.
const openFd = promisify(open);
const closeFd = promisify(close);
const fstatFd = promisify(fstat);
const fchmodFd = promisify(fchmod);

/**
 * Opens folder `path` (created 0700 when absent) with O_DIRECTORY|O_NOFOLLOW and makes it 0700;
 * returns the descriptor. A link or non-folder there raises UnsafePathError naming `real`.
 */
async function openPrivateDir(path: string, real: string): Promise<number> {
  await mkdir(path, { mode: 0o700 }).catch((err) => {
    if (errnoOf(err) !== "EEXIST") throw err;
  });
  const fd = await openFd(path, DIR_FLAGS).catch((err) => {
    const code = errnoOf(err);
    throw code === "ELOOP" || code === "ENOTDIR" ? new UnsafePathError(real, "a symbolic link or not a folder") : err;
  });
  try {
    await fchmodFd(fd, 0o700); // private, whatever made it before
  } catch (err) {
    await closeFd(fd);
    throw err;
  }
  return fd;
}

/**
 * Creates `dir` (0700) if missing, with its parents, and makes it private, without following a
 * link at its last component. Throws (naming the path) when `dir` is a link or not a folder.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await makeDirs(dirname(dir));
  await closeFd(await openPrivateDir(dir, dir));
}

/** A folder opened once and checked: entries are named through `path` (/proc/self/fd/N). */
interface Verified {
  dev: number;
  ino: number;
  path: string;
}

/**
 * Folders checked right before each use: the one a path names now (lstat) must be a real folder
 * and is opened O_DIRECTORY|O_NOFOLLOW once (again when another folder takes its place), and
 * callers name entries through that handle, so a link swapped in after the check changes
 * nothing. A link or non-folder is refused: null, with one warning naming it (until it is a
 * folder again).
 */
export class PrivateFolders {
  private readonly known = new Map<string, Verified>();
  /** Checks run one at a time: one handle per folder. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly warned = new Set<string>();
  /** Every descriptor opened (replaced ones too: an apply in flight may still read through one). */
  private readonly fds: number[] = [];
  /** `/proc/self/fd/N` of each folder opened → its real path, for messages. */
  private readonly reals = new Map<string, string>();

  constructor(
    private readonly log: Logger,
    private readonly warning: string,
  ) {}

  /**
   * The folder at `path` (which may itself go through a checked parent's handle), created 0700
   * when absent, as a path to name its entries by; null when refused. `real` names it in messages.
   */
  check(path: string, real: string): Promise<string | null> {
    const run = this.queue.then(() => this.verify(path, real));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async verify(path: string, real: string): Promise<string | null> {
    const s = await lstat(path).catch((err) => {
      if (isNotFound(err)) return null;
      throw err;
    });
    if (s && !s.isDirectory()) return this.refuse(real, s.isSymbolicLink() ? "a symbolic link" : "not a folder");
    const current = this.known.get(real);
    if (s && current && s.dev === current.dev && s.ino === current.ino) return current.path;
    let fd;
    try {
      fd = await openPrivateDir(path, real);
    } catch (err) {
      if (err instanceof UnsafePathError) return this.refuse(real, "a symbolic link or not a folder");
      throw err;
    }
    this.warned.delete(real);
    const { dev, ino } = await fstatFd(fd);
    let named = path; // no /proc: the lstat check right before each use is what remains
    if (PROC) {
      this.fds.push(fd);
      named = `/proc/self/fd/${fd}`;
      this.reals.set(named, real);
    } else await closeFd(fd);
    this.known.set(real, { dev, ino, path: named });
    return named;
  }

  /**
   * `text` with each `/proc/self/fd/N` of a folder opened here replaced by that folder's real
   * path: an error about an entry names the path the operator knows, not the descriptor.
   */
  realPaths(text: string): string {
    return text.replace(/\/proc\/self\/fd\/\d+/g, (p) => this.reals.get(p) ?? p);
  }

  private refuse(real: string, found: string): null {
    if (!this.warned.has(real)) {
      this.warned.add(real);
      this.log.warn(this.warning, { path: real, found });
    }
    return null;
  }

  /** Closes every descriptor (paths handed out before stop working). */
  async close(): Promise<void> {
    this.known.clear();
    await Promise.all(this.fds.splice(0).map((fd) => closeFd(fd).catch(() => undefined)));
  }
}
