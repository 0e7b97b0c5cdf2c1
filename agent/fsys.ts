/**
 * The agent's file-system seam: every call the apply, the state, the journal and metadata.json
 * make to the disk goes through an `Fsys`, so a test can pass one that fails any call with any
 * errno, or "crashes" (never answers again), without root and without module mocks.
 * `nodeFsys` is the real one. Calls never follow a symlink in their last component unless
 * the caller asks (`open` gets O_NOFOLLOW from the callers in agent/safetree.ts).
 */
import { createHash } from "node:crypto";
import { constants, type Dirent, type Stats } from "node:fs";
import { link, lstat, mkdir, open, readdir, rename, rmdir, stat, unlink, type FileHandle } from "node:fs/promises";
import { join, resolve, sep } from "node:path";

export interface Fsys {
  /** open(2); the handle's write/chmod/chown/sync/close are file operations too. */
  open(path: string, flags: number, mode?: number): Promise<FileHandle>;
  lstat(path: string): Promise<Stats>;
  /** One level, like mkdir(2). */
  mkdir(path: string, mode: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  link(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readdir(path: string): Promise<Dirent[]>;
}

export const nodeFsys: Fsys = {
  open: (path, flags, mode) => open(path, flags, mode),
  lstat: (path) => lstat(path),
  mkdir: async (path, mode) => {
    await mkdir(path, { mode });
  },
  rename,
  link,
  unlink,
  rmdir: (path) => rmdir(path),
  readdir: (path) => readdir(path, { withFileTypes: true }),
};

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_APPEND, O_NONBLOCK, O_TRUNC } = constants;
/** A new file, never an existing one or a link: O_CREAT|O_EXCL fails on a planted symlink. */
export const NEW_FILE = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
/** An existing regular file, written over in place (the fallback where rename is impossible). */
export const IN_PLACE = O_WRONLY | O_NOFOLLOW | O_NONBLOCK;
export const READ = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
export const APPEND = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK;
export const TRUNCATE = O_TRUNC;

export const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;

/** Reads the regular file at `path` (opened without following a link) chunk by chunk. */
export async function readChunks(fsys: Fsys, path: string, onChunk: (chunk: Buffer) => Promise<unknown> | void): Promise<void> {
  const input = await fsys.open(path, READ);
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      await onChunk(buffer.subarray(0, bytesRead));
    }
  } finally {
    await input.close();
  }
}

/** SHA-256 of the regular file at `path`, opened without following a link. */
export async function sha256At(fsys: Fsys, path: string): Promise<string> {
  const hash = createHash("sha256");
  await readChunks(fsys, path, (chunk) => void hash.update(chunk));
  return hash.digest("hex");
}

/**
 * Creates folder `path` and its missing parents one mkdir(2) at a time, never with
 * `{recursive: true}`: Node's recursive mkdir loops forever where a parent refuses new entries
 * without EEXIST (`/proc/nope` spins at 100% CPU). The first error other than EEXIST is thrown
 * (its message names the component); a non-folder at `path` raises ENOTDIR. `mode` applies to
 * the folders created here.
 */
export async function makeDirs(path: string, mode = 0o755): Promise<void> {
  const parts = resolve(path).split(sep).filter(Boolean);
  let current: string = sep;
  for (const part of parts) {
    current = join(current, part);
    try {
      await mkdir(current, { mode });
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") throw err;
    }
  }
  // stat, not lstat: the operator's own path may pass through a link (callers check their part).
  if (!(await stat(current)).isDirectory()) {
    throw Object.assign(new Error(`ENOTDIR: not a folder, ${current}`), { code: "ENOTDIR", path: current });
  }
}
