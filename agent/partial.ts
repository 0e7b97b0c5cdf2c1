/**
 * Partial download files (`{cache}/.partial/{sha}.partial`, or in the service's staging folder):
 * in a folder another container may write, so one is resumed only when it is the agent's own
 * kind of file, and a fresh one never reuses what has its name.
 */
import { constants } from "node:fs";
import { open, unlink, type FileHandle } from "node:fs/promises";
import { checkRegular, isNotFound } from "./fsutil.js";
import { errnoOf } from "./fsys.js";
import { UnsafePathError } from "./safetree.js";

const { O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

/**
 * Local file-system failures: the partial file is deleted (it may be what failed). Any other
 * failure (a cut connection: ECONNRESET, EPIPE, ETIMEDOUT, premature close, an HTTP error)
 * keeps it, so the retry resumes with `Range`.
 */
const LOCAL_ERRORS = new Set(["ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EPERM", "EROFS", "EIO", "ENOTDIR", "EISDIR", "ELOOP", "EMLINK", "ENAMETOOLONG", "EBADF", "EXDEV", "ENOENT"]);

/** Does `err` (of a download attempt) call for deleting its partial file? See LOCAL_ERRORS. */
export function isLocalError(err: unknown): boolean {
  return err instanceof UnsafePathError || LOCAL_ERRORS.has(errnoOf(err) ?? "");
}

/**
 * The partial file at `path` to resume: a regular file with one link, opened read-write without
 * following a link or blocking; null (start fresh) for anything else or nothing.
 */
export async function openResumable(path: string): Promise<FileHandle | null> {
  const handle = await open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK).catch(() => null);
  if (!handle) return null;
  try {
    checkRegular(await handle.stat(), path, true);
    return handle;
  } catch {
    await handle.close();
    return null;
  }
}

/** A fresh partial file: whatever has the name is unlinked (never written through), then O_EXCL. */
export async function createFresh(path: string): Promise<FileHandle> {
  await unlink(path).catch((err) => {
    if (!isNotFound(err)) throw err;
  });
  return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
}
