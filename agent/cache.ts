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
import { link, lstat, mkdir, open, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { formatBytes, isNotFound, sha256File } from "./fsutil.js";
import type { Logger } from "./log.js";

/**
 * Creates `dir` (0700) if missing and makes it private, without following a link at its last
 * component: in the seed's Kubernetes layout another container can write `{temp_dir}`, and a
 * `cache -> /elsewhere` planted there must not make a root agent chmod or fill another folder.
 * Throws (naming the path) when `dir` is a link or not a folder.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let handle;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ELOOP" || code === "ENOTDIR") throw new Error(`${dir} is a symbolic link or not a folder: the agent does not follow it`);
    throw err;
  }
  try {
    await handle.chmod(0o700); // private, whatever made it before
  } finally {
    await handle.close();
  }
}

export const CLEANUP_INTERVAL_MS = 5 * 60 * 1000;
const RETENTION = 0.9;
const MAX_SHARE = 0.1;

export interface CleanupResult {
  sizeBefore: number;
  sizeAfter: number;
  removed: number;
}

export class BlobCache {
  constructor(
    readonly dir: string,
    readonly thresholdBytes: number,
    readonly enabled: boolean,
    private readonly log: Logger,
  ) {}

  path(sha256: string): string {
    return join(this.dir, sha256);
  }

  /** Where partial downloads of cacheable blobs live until verified. */
  get partialDir(): string {
    return join(this.dir, ".partial");
  }

  accepts(size: number): boolean {
    return this.enabled && size <= this.thresholdBytes * MAX_SHARE;
  }

  /** The cached blob's path if present and intact; a corrupt entry is removed. */
  async get(sha256: string): Promise<string | null> {
    if (!this.enabled) return null;
    const path = this.path(sha256);
    try {
      const s = await stat(path); // a miss costs one stat, not a read stream
      if ((await sha256File(path)) !== sha256) {
        this.log.warn("cached file is corrupt, removing it", { sha256, path });
        await rm(path, { force: true });
        return null;
      }
      // Least recently *used* goes first. Only the access time: an adopted entry is an applied file too.
      await utimes(path, new Date(), s.mtime);
      return path;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /**
   * Makes the verified file at `from` the cache entry for `sha256` with a hard link (no second
   * copy). Only for a file that no user but the agent's can write (the caller checks its mode
   * and owner). Returns the entry's path, or null when a link is impossible here (another file
   * system, no hard links): the caller then writes a copy with `put`.
   */
  async adopt(sha256: string, from: string): Promise<string | null> {
    const path = this.path(sha256);
    try {
      await link(from, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") return null; // EEXIST: cached by another service meanwhile
    }
    return path;
  }

  /** Is the entry for `sha256` the file `s` describes (the same inode: an adopted link)? */
  async holds(sha256: string, s: { ino: number; dev: number }): Promise<boolean> {
    if (!this.enabled) return false;
    const entry = await lstat(this.path(sha256)).catch(() => null);
    return entry !== null && entry.ino === s.ino && entry.dev === s.dev;
  }

  /**
   * Removes the entry for `sha256` when it is the file `s` describes: before that file is written
   * in place, which would change the entry's bytes too.
   */
  async release(sha256: string, s: { ino: number; dev: number }): Promise<void> {
    if (await this.holds(sha256, s)) await rm(this.path(sha256), { force: true });
  }

  /** Writes a private copy (0600, temp name then rename, no link followed) of verified `data`. */
  async put(sha256: string, data: Buffer): Promise<string> {
    const path = this.path(sha256);
    const tmp = join(this.partialDir, `${sha256}.${process.pid}.${Math.random().toString(16).slice(2, 10)}`);
    const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      await handle.writeFile(data);
      await handle.close();
      await rename(tmp, path);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(tmp, { force: true });
      throw err;
    }
    return path;
  }

  /** Every entry with its size and last use (access time), oldest first. */
  private async entries(): Promise<{ path: string; size: number; usedMs: number }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const entries: { path: string; size: number; usedMs: number }[] = [];
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        const s = await stat(join(this.dir, name));
        if (s.isFile()) entries.push({ path: join(this.dir, name), size: s.size, usedMs: s.atimeMs });
      } catch {
        /* removed meanwhile */
      }
    }
    return entries.sort((a, b) => a.usedMs - b.usedMs);
  }

  async cleanup(): Promise<CleanupResult> {
    const entries = await this.entries();
    const sizeBefore = entries.reduce((sum, e) => sum + e.size, 0);
    this.log.info("calculate current cache directory size", { cacheDir: this.dir, currentSize: formatBytes(sizeBefore) });
    let size = sizeBefore;
    let removed = 0;
    if (size > this.thresholdBytes) {
      const target = this.thresholdBytes * RETENTION;
      for (const entry of entries) {
        if (size <= target) break;
        await rm(entry.path, { force: true });
        size -= entry.size;
        removed++;
      }
      this.log.info("cache cleaned up", { cacheDir: this.dir, removed, sizeBefore: formatBytes(sizeBefore), sizeAfter: formatBytes(size) });
    }
    return { sizeBefore, sizeAfter: size, removed };
  }

  /** Removes least recently used blobs until at least `bytes` are freed (disk full); returns bytes freed. */
  async evict(bytes: number): Promise<number> {
    const entries = await this.entries();
    let freed = 0;
    for (const entry of entries) {
      if (freed >= bytes) break;
      await rm(entry.path, { force: true });
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
      this.cleanup().catch((err) => this.log.warn("cache cleanup failed", { error: (err as Error).message }));
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
