/** File helpers shared by the fetcher, the cache and the apply step. */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { type Stats } from "node:fs";
import { open, rename, rm, writeFile, type FileHandle } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { errnoOf, READ } from "./fsys.js";
import { UnsafePathError } from "./safetree.js";

/**
 * Refuses what an agent-kept file must not be: anything but a regular file, and (with
 * `single`) a file with another hard link, which a planted `ln` would make the agent write
 * through to a file elsewhere. `real` names it in the UnsafePathError.
 */
export function checkRegular(s: Stats, real: string, single = false): void {
  if (!s.isFile()) throw new UnsafePathError(real, "not a regular file (a FIFO, socket, device or folder)");
  if (single && s.nlink > 1) throw new UnsafePathError(real, `a file with ${s.nlink} hard links (another name may be outside)`);
}

/**
 * Opens an agent-kept file for reading: O_RDONLY|O_NOFOLLOW|O_NONBLOCK (a planted FIFO does not
 * block, a link is not followed), then fstat: a link or anything but a regular file raises
 * UnsafePathError naming `real`; ENOENT passes through.
 */
export async function openRegular(path: string, real = path): Promise<{ handle: FileHandle; stats: Stats }> {
  let handle;
  try {
    handle = await open(path, READ);
  } catch (err) {
    if (errnoOf(err) === "ELOOP") throw new UnsafePathError(real, "a symbolic link");
    throw err;
  }
  try {
    const stats = await handle.stat();
    checkRegular(stats, real);
    return { handle, stats };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** SHA-256 of an open file's bytes, read from its start. */
export async function sha256Handle(handle: FileHandle): Promise<string> {
  const hash = createHash("sha256");
  await hashInto(handle, hash, Infinity);
  return hash.digest("hex");
}

/** Feeds the first `length` bytes of an open file (read from its start) into `hash`. */
export async function hashInto(handle: FileHandle, hash: Hash, length: number): Promise<void> {
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (let position = 0; position < length; ) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

/** A sibling temp name; the `.edgeconf-tmp-` marker lets recovery find leftovers. */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.edgeconf-tmp-${randomBytes(4).toString("hex")}`);
}

export const TEMP_MARKER = ".edgeconf-tmp-";

/** Writes a small file atomically: temp file in the same folder, fsync, rename. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = tempSibling(path);
  try {
    await writeFile(tmp, data, { mode });
    const handle = await open(tmp, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Runs `work` over `items` with at most `limit` in flight; the first error stops new work. */
export async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index]);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
  return results;
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === "ENOENT";
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
