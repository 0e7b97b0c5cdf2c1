/**
 * The blob cache `{cache_dir}/{sha256}`: checked on read (a file whose bytes no longer hash to
 * its name is dropped), kept under a size threshold by removing the least recently used blobs
 * (by access time, which `get` sets) down to 90% of it, at start and every 5 minutes. Blobs over
 * 10% of the threshold are not kept.
 *
 * An entry is either a private copy (0600) or, to spare a second file per blob, a hard link to
 * the file the apply staged for it (`adopt`), when only the agent's user can write that file.
 * Such an entry shares its inode with an applied file, so nothing here changes an entry's mtime
 * or bytes, and a file later changed where it is applied is caught by the check on read.
 */
import { constants } from "node:fs";
import { link, lstat, open, readdir, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { formatBytes, isNotFound, openRegular, sha256Handle } from "./fsutil.js";
import { errnoOf } from "./fsys.js";
import type { Logger } from "./log.js";
import { ensurePrivateDir, PrivateFolders } from "./privatedir.js";
import { UnsafePathError } from "./safetree.js";

export { ensurePrivateDir };

export const CLEANUP_INTERVAL_MS = 5 * 60 * 1000;
const RETENTION = 0.9;
const MAX_SHARE = 0.1;

export interface CleanupResult {
  sizeBefore: number;
  sizeAfter: number;
  removed: number;
}

/**
 * Every operation names its entries through the cache folder it verified (opened
 * O_DIRECTORY|O_NOFOLLOW, and still what `dir` names: same inode by lstat right before the
 * operation), so a `cache -> /victim` planted after start is refused with one warning, never
 * followed. Entries are opened O_NOFOLLOW|O_NONBLOCK and must be regular files.
 */
export class BlobCache {
  /** The cache folder and `.partial`, opened and checked (see agent/privatedir.ts). */
  private readonly folders: PrivateFolders;

  constructor(
    readonly dir: string,
    readonly thresholdBytes: number,
    readonly enabled: boolean,
    private readonly log: Logger,
  ) {
    this.folders = new PrivateFolders(log, "cache folder refused: the agent does not follow it, cache operations skipped");
  }

  accepts(size: number): boolean {
    return this.enabled && size <= this.thresholdBytes * MAX_SHARE;
  }

  /** The cache folder, verified now, as a path naming entries through its handle; null: refused (warned). */
  folder(): Promise<string | null> {
    return this.folders.check(this.dir, this.dir);
  }

  /** Where partial downloads of cacheable blobs live until verified (`.partial`, checked like the cache). */
  async partialFolder(): Promise<string | null> {
    const main = await this.folder();
    return main === null ? null : this.folders.check(`${main}/.partial`, join(this.dir, ".partial"));
  }

  /**
   * `err` (returned, changed in place) with the cache folders' `/proc/self/fd/N` replaced by
   * their real paths in its message, `path` and `dest`: what an error about an entry says.
   */
  withRealPaths<T>(err: T): T {
    if (err instanceof Error) {
      const e = err as Error & { path?: unknown; dest?: unknown };
      e.message = this.folders.realPaths(e.message);
      if (typeof e.path === "string") e.path = this.folders.realPaths(e.path);
      if (typeof e.dest === "string") e.dest = this.folders.realPaths(e.dest);
    }
    return err;
  }

  /** Closes the folders' handles (paths handed out before stop working). */
  close(): Promise<void> {
    return this.folders.close();
  }

  /** The cached blob's path if present, a regular file and intact; anything else there is removed. */
  async get(sha256: string): Promise<string | null> {
    if (!this.enabled) return null;
    const folder = await this.folder();
    if (folder === null) return null;
    const path = `${folder}/${sha256}`;
    let opened;
    try {
      opened = await openRegular(path, join(this.dir, sha256));
    } catch (err) {
      if (isNotFound(err)) return null;
      if (!(err instanceof UnsafePathError)) throw err;
      this.log.warn("cache entry is not a regular file, removing it", { sha256, error: err.message });
      await unlink(path).catch(() => undefined);
      return null;
    }
    const { handle, stats } = opened;
    try {
      if ((await sha256Handle(handle)) !== sha256) {
        this.log.warn("cached file is corrupt, removing it", { sha256, path: join(this.dir, sha256) });
        await unlink(path).catch(() => undefined);
        return null;
      }
      // Least recently *used* goes first. Only the access time: an adopted entry is an applied file too.
      await handle.utimes(new Date(), stats.mtime);
      return path;
    } finally {
      await handle.close();
    }
  }

  /**
   * Makes the verified file at `from` the cache entry for `sha256` with a hard link (no second
   * copy). Only for a file that no user but the agent's can write (the caller checks its mode
   * and owner). Returns the entry's path, or null when a link is impossible here (another file
   * system, no hard links, the cache folder refused): the caller then writes a copy with `put`.
   */
  async adopt(sha256: string, from: string): Promise<string | null> {
    const folder = await this.folder();
    if (folder === null) return null;
    const path = `${folder}/${sha256}`;
    try {
      await link(from, path);
    } catch (err) {
      if (errnoOf(err) !== "EEXIST") return null; // EEXIST: cached by another service meanwhile
    }
    return path;
  }

  /** Is the entry for `sha256` the file `s` describes (the same inode: an adopted link)? */
  async holds(sha256: string, s: { ino: number; dev: number }): Promise<boolean> {
    if (!this.enabled) return false;
    const folder = await this.folder();
    if (folder === null) return false;
    const entry = await lstat(`${folder}/${sha256}`).catch(() => null);
    return entry !== null && entry.ino === s.ino && entry.dev === s.dev;
  }

  /**
   * Removes the entry for `sha256` when it is the file `s` describes: before that file is written
   * in place, which would change the entry's bytes too.
   */
  async release(sha256: string, s: { ino: number; dev: number }): Promise<void> {
    const folder = await this.folder();
    if (folder !== null && (await this.holds(sha256, s))) await unlink(`${folder}/${sha256}`).catch(() => undefined);
  }

  /**
   * Writes a private copy (0600, temp name then rename, no link followed) of verified `data`.
   * null when the cache folder is refused.
   */
  async put(sha256: string, data: Buffer): Promise<string | null> {
    const [folder, partials] = [await this.folder(), await this.partialFolder()];
    if (folder === null || partials === null) return null;
    const path = `${folder}/${sha256}`;
    const tmp = `${partials}/${sha256}.${process.pid}.${Math.random().toString(16).slice(2, 10)}`;
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await handle.writeFile(data);
      await handle.close();
      await rename(tmp, path);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    return path;
  }

  /**
   * Every entry (regular files named by a SHA-256) with its size and last use (access time),
   * oldest first; a link or special file under such a name is removed (never followed). null
   * when the cache folder is refused.
   */
  private async entries(): Promise<{ path: string; size: number; usedMs: number }[] | null> {
    if (!this.enabled) return [];
    const folder = await this.folder();
    if (folder === null) return null;
    const entries: { path: string; size: number; usedMs: number }[] = [];
    for (const name of await readdir(folder)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const path = `${folder}/${name}`;
      const s = await lstat(path).catch(() => null); // null: removed meanwhile
      if (s?.isFile()) entries.push({ path, size: s.size, usedMs: s.atimeMs });
      else if (s && !s.isDirectory()) await unlink(path).catch(() => undefined);
    }
    return entries.sort((a, b) => a.usedMs - b.usedMs);
  }

  /** Removes the least recently used entries down to 90% of the threshold, when over it. */
  async cleanup(): Promise<CleanupResult> {
    const entries = await this.entries();
    if (entries === null) return { sizeBefore: 0, sizeAfter: 0, removed: 0 };
    const sizeBefore = entries.reduce((sum, e) => sum + e.size, 0);
    this.log.info("calculate current cache directory size", { cacheDir: this.dir, currentSize: formatBytes(sizeBefore) });
    let size = sizeBefore;
    let removed = 0;
    if (size > this.thresholdBytes) {
      const target = this.thresholdBytes * RETENTION;
      for (const entry of entries) {
        if (size <= target) break;
        await unlink(entry.path).catch(() => undefined);
        size -= entry.size;
        removed++;
      }
      this.log.info("cache cleaned up", { cacheDir: this.dir, removed, sizeBefore: formatBytes(sizeBefore), sizeAfter: formatBytes(size) });
    }
    return { sizeBefore, sizeAfter: size, removed };
  }

  /** Removes least recently used blobs until at least `bytes` are freed (disk full); returns bytes freed. */
  async evict(bytes: number): Promise<number> {
    const entries = (await this.entries()) ?? [];
    let freed = 0;
    for (const entry of entries) {
      if (freed >= bytes) break;
      await unlink(entry.path).catch(() => undefined);
      freed += entry.size;
    }
    return freed;
  }

  /** Cleans now and then every interval; the timer does not keep the process alive. */
  async startAutoCleanup(intervalMs = CLEANUP_INTERVAL_MS): Promise<() => void> {
    if (!this.enabled) return () => undefined;
    await ensurePrivateDir(this.dir);
    this.log.info("start auto cleanup file cache", {
      cacheDir: this.dir,
      cleanupIntervalSeconds: `${intervalMs / 1000}s`,
      thresholdGB: `${+(this.thresholdBytes / 1024 ** 3).toFixed(3)}GB`,
      retentionRate: "90%",
    });
    await this.cleanup();
    const timer = setInterval(() => {
      this.cleanup().catch((err) => this.log.warn("cache cleanup failed", { error: this.withRealPaths(err as Error).message }));
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
