/**
 * The fetcher: makes every blob a release needs available locally and verified. A blob comes
 * from the cache when intact. Else a small one (≤ 1 MiB) is received into memory, checked, and
 * handed to the runner, which writes it straight into its staged files; the cache entry is then a
 * hard link to one of those (BlobCache.adopt) or, where that is not allowed, a private copy. A
 * larger one is downloaded to a partial file (resumed with `Range` after an interrupted
 * transfer), its SHA-256 checked, and renamed into the cache, or into the service's staging
 * folder when it is too big to cache. One new file per small blob, not two: file creation is
 * what a cold pull of many small files spends its time on.
 */
import { readdir, rename, unlink } from "node:fs/promises";
import { basename, join } from "node:path";
import type { BlobCache } from "./cache.js";
import type { FeedClient } from "./feed.js";
import { mapLimit } from "./fsutil.js";
import { errnoOf, makeDirs } from "./fsys.js";
import { createFresh, isLocalError } from "./partial.js";
import { ContentChangedError } from "./integrity.js";
import type { Logger } from "./log.js";
import { IntegrityError, receiveBlob, type BlobNeed } from "./transfer.js";


export interface FetchResult {
  /** sha256 → a local path holding exactly those bytes. */
  sources: Map<string, string>;
  bytesDownloaded: number;
  fromCache: number;
  downloaded: number;
}

export interface FetcherOptions {
  feed: Pick<FeedClient, "openBlob">;
  cache: BlobCache;
  concurrency: number;
  log: Logger;
  attempts?: number;
}

/** A verified download: network bytes, and where it is (a file) or the bytes (small blobs). */
type Downloaded = { bytes: number } & ({ path: string; data?: undefined } | { path?: undefined; data: Buffer });

/**
 * What the runner made of a verified blob: `copy` is one of the files it staged from it, when
 * only the agent's user can write it (the cache may link it); `all` says every file that needs
 * the blob was staged (else the blob is kept as a file for the ones that could not be).
 */
export interface Staged {
  copy: string | null;
  all: boolean;
}

/** The runner's step for each verified blob: a local file, or the bytes of a small one. */
export type OnReady = (sha256: string, source: string | null, data?: Buffer) => Promise<Staged | void>;


export class Fetcher {
  /** Downloads in flight by destination, so two services needing one blob share the transfer. */
  private readonly inflight = new Map<string, Promise<Downloaded>>();
  /** Partial files present when the current fetch started (see fetchAll). */
  private knownPartials = new Set<string>();
  /** The cache folders verified when the current fetch started (null: cache off or refused). */
  private cacheDirs: { dir: string; partial: string } | null = null;

  constructor(private readonly options: FetcherOptions) {}

  /** The blob cache this fetcher fills. */
  get cache(): BlobCache {
    return this.options.cache;
  }

  /**
   * Fetches `needs` (deduplicated by hash), `concurrency` at a time; `onReady` runs for each blob
   * as soon as it is verified (the runner stages files there), while the next downloads run.
   * Resolves once every blob is written out; the first failure rejects, after the writes in
   * flight have settled (so an undo never races them).
   */
  async fetchAll(
    needs: BlobNeed[],
    stagingDir: string,
    onReady: OnReady = async () => undefined,
    signal?: AbortSignal,
  ): Promise<FetchResult> {
    const unique = [...new Map(needs.map((n) => [n.sha256, n])).values()];
    const result: FetchResult = { sources: new Map(), bytesDownloaded: 0, fromCache: 0, downloaded: 0 };
    if (unique.length === 0) return result;
    await makeDirs(stagingDir, 0o700);
    const { cache } = this.options;
    if (cache.enabled) {
      const [dir, partial] = [await cache.folder(), await cache.partialFolder()];
      this.cacheDirs = dir !== null && partial !== null ? { dir, partial } : null;
    }
    // One listing instead of a failing stat per blob (a cold pull of 1,000 files saves ~3,000 errors).
    const list = (dir: string | undefined) => (dir === undefined ? Promise.resolve(new Set<string>()) : readdir(dir).then((names) => new Set(names), () => new Set<string>()));
    const [inCache, partials] = await Promise.all([
      list(this.cacheDirs?.dir),
      Promise.all([list(this.cacheDirs?.partial), list(stagingDir)]).then(([a, b]) => new Set([...a, ...b])),
    ]);
    this.knownPartials = partials;
    // Writing a verified blob out (onReady) runs behind its download, so the download slot takes
    // the next blob at once; at most 2 × concurrency wait to be written (small ones in memory).
    const writing = new Set<Promise<void>>();
    let failed: { err: unknown } | undefined;
    const behind = async (write: () => Promise<void>) => {
      const done: Promise<void> = write()
        .catch((err) => void (failed ??= { err }))
        .finally(() => writing.delete(done));
      writing.add(done);
      while (writing.size >= 2 * this.options.concurrency) await Promise.race(writing);
      if (failed) throw failed.err;
    };
    try {
      await mapLimit(unique, this.options.concurrency, (need) => this.fetchOne(need, stagingDir, inCache, result, onReady, behind, signal));
    } catch (err) {
      throw cache.withRealPaths(err);
    } finally {
      await Promise.all(writing);
    }
    if (failed) throw cache.withRealPaths(failed.err);
    return result;
  }

  /** One blob of fetchAll: from the cache or downloaded, then handed to `behind` to be written out. */
  private async fetchOne(
    need: BlobNeed,
    stagingDir: string,
    inCache: Set<string>,
    result: FetchResult,
    onReady: OnReady,
    behind: (write: () => Promise<void>) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    // A file source is hashed as it is copied (agent/swap.ts, writeNew). Changed since its check
    // (an adopted cache link rewritten where it is applied, a blob's file rewritten), it is
    // dropped and the blob downloaded again, once (agent/integrity.ts, ContentChangedError).
    const fromFile = async (path: string, again: boolean): Promise<void> => {
      try {
        await onReady(need.sha256, path);
      } catch (err) {
        if (!(err instanceof ContentChangedError) || !again) throw err;
        this.options.log.warn("a blob's file changed while it was copied, downloading it again", { sha256: need.sha256, path });
        await unlink(path).catch(() => undefined);
        const got = await this.download(need, stagingDir, signal);
        result.bytesDownloaded += got.bytes;
        if (got.data) return void result.sources.set(need.sha256, await this.keep(need, got.data, stagingDir, onReady));
        result.sources.set(need.sha256, got.path);
        await fromFile(got.path, false);
      }
    };
    const cached = inCache.has(need.sha256) ? await this.options.cache.get(need.sha256) : null;
    if (cached) {
      result.sources.set(need.sha256, cached);
      result.fromCache++;
      await behind(() => fromFile(cached, true));
      return;
    }
    // Shared by hash only when it lands in the cache (a refused cache: each service's own staging).
    const key = this.options.cache.accepts(need.size) && this.cacheDirs ? need.sha256 : join(stagingDir, need.sha256);
    let pending = this.inflight.get(key);
    const owner = !pending;
    if (!pending) {
      pending = this.download(need, stagingDir, signal).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    const got = await pending;
    if (owner) result.bytesDownloaded += got.bytes;
    result.downloaded++;
    const { data, path } = got;
    if (data) {
      await behind(async () => void result.sources.set(need.sha256, await this.keep(need, data, stagingDir, onReady)));
    } else {
      result.sources.set(need.sha256, path);
      await behind(() => fromFile(path, true));
    }
  }

  /**
   * A small verified blob: the runner stages it from memory, then the blob stays available as a
   * file: the cache entry (a link to a staged copy, or a private copy), else a staged copy, else
   * a file in the staging folder. Returns that file's path. A full disk empties the cache first.
   */
  private async keep(need: BlobNeed, data: Buffer, stagingDir: string, onReady: OnReady): Promise<string> {
    const { cache, log } = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        const staged = (await onReady(need.sha256, null, data)) ?? { copy: null, all: false };
        if (cache.accepts(need.size)) {
          const kept = (staged.copy && (await cache.adopt(need.sha256, staged.copy))) || (await cache.put(need.sha256, data));
          if (kept) return kept;
        }
        if (staged.all && staged.copy) return staged.copy;
        const path = join(stagingDir, need.sha256);
        await writePrivate(path, data);
        return path;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== "ENOSPC" && code !== "EDQUOT") || !cache.enabled || attempt >= 2) throw err;
        const freed = await cache.evict(need.size);
        log.warn("disk full, cache blobs removed to make room", { sha256: need.sha256, freedBytes: freed });
      }
    }
  }

  private async download(need: BlobNeed, stagingDir: string, signal?: AbortSignal): Promise<Downloaded> {
    const { cache, log } = this.options;
    const dirs = cache.accepts(need.size) ? this.cacheDirs : null;
    const cacheable = dirs !== null;
    const dest = dirs ? `${dirs.dir}/${need.sha256}` : join(stagingDir, need.sha256);
    const partial = `${dirs ? dirs.partial : stagingDir}/${need.sha256}.partial`;
    const attempts = this.options.attempts ?? 3;
    let bytes = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const got = await this.transfer(need, partial, signal);
        bytes += got.received;
        log.debug("download file success", { sha256: need.sha256, size: need.size, cached: cacheable });
        if (got.data) return { bytes, data: got.data };
        await rename(partial, dest);
        return { path: dest, bytes };
      } catch (err) {
        const code = errnoOf(err);
        const diskFull = code === "ENOSPC" || code === "EDQUOT";
        // A partial file is kept only to resume a cut transfer; never after a local failure.
        if (err instanceof IntegrityError || isLocalError(err)) await unlink(partial).catch(() => undefined);
        if (diskFull && cache.enabled) {
          // The cache gives way first: oldest blobs go until this one fits, then it is tried again.
          const freed = await cache.evict(need.size);
          log.warn("disk full, cache blobs removed to make room", { sha256: need.sha256, freedBytes: freed });
        }
        if (attempt >= attempts || signal?.aborted) throw err;
        log.warn("download failed, retrying", { sha256: need.sha256, attempt, error: cache.withRealPaths(err as Error).message });
      }
    }
  }

  /** One transfer of `need` into `partial` (agent/transfer.ts), resumed when the partial was there before this fetch. */
  private transfer(need: BlobNeed, partial: string, signal?: AbortSignal): Promise<{ received: number; data?: Buffer }> {
    const resumable = this.knownPartials.has(basename(partial));
    this.knownPartials.add(basename(partial)); // a retry resumes what this attempt wrote
    return receiveBlob(this.options.feed, need, partial, resumable, signal);
  }
}

/**
 * Writes `data` to a new private file (0600) at `path`: whatever had the name is unlinked first,
 * so neither a planted symlink nor a planted hard link is written through.
 */
async function writePrivate(path: string, data: Buffer): Promise<void> {
  const handle = await createFresh(path);
  try {
    await handle.writeFile(data);
  } finally {
    await handle.close();
  }
}

