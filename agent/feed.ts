/**
 * The feed client (docs/feed-protocol.md) and the watcher: a long-poll loop with exponential
 * backoff and jitter that fails over across `feed_addrs`, after consul-template's `watch/view.go`.
 */
import type { IncomingMessage } from "node:http";
import { AGENT_VERSION } from "./config.js";
import { HttpError, errorMessage, openRequest, request, type BufferedResponse } from "./http.js";
import type { Logger } from "./log.js";
import { releaseIdOf } from "./manifest.js";

export type Mode = "pull" | "watch";

/** An error answer from the server (4xx other than 404 on a blob): retrying the same call will not help soon. */
export class FeedError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Every address failed to answer (connection refused, timeout, 5xx). */
export class UnreachableError extends Error {}

/** Exponential backoff 0.5 s → 30 s with jitter: each delay is drawn in [d/2, d]. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly minMs = 500,
    private readonly maxMs = 30_000,
    private readonly random: () => number = Math.random,
  ) {}
  next(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** this.attempt);
    this.attempt++;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }
  reset(): void {
    this.attempt = 0;
  }
}

export interface FeedOptions {
  addrs: string[];
  token: string;
  biz: number;
  uid: string;
  labels: Record<string, string>;
  mode: Mode;
  log: Logger;
}

/** `manifest` is the JSON as received: the runner checks it, so a refused one is still reported. */
export type ReleaseAnswer = { changed: true; manifest: unknown; etag: string } | { changed: false; etag: string };

export class FeedClient {
  private active = 0;
  constructor(private readonly options: FeedOptions) {}

  get currentAddr(): string {
    return this.options.addrs[this.active];
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      authorization: `Bearer ${this.options.token}`,
      "x-edgeconf-agent-version": AGENT_VERSION,
      "x-edgeconf-mode": this.options.mode,
      ...extra,
    };
  }

  /**
   * Tries each address once, starting with the one that last worked. Connection errors and 5xx
   * move to the next address; other answers are returned to the caller.
   */
  private async failover<T extends { statusCode?: number; status?: number }>(
    what: string,
    call: (base: string) => Promise<T>,
    drain: (answer: T) => void = () => undefined,
  ): Promise<T> {
    const { addrs, log } = this.options;
    const errors: string[] = [];
    for (let i = 0; i < addrs.length; i++) {
      const index = (this.active + i) % addrs.length;
      try {
        const answer = await call(addrs[index]);
        const status = answer.statusCode ?? answer.status ?? 0;
        if (status >= 500) {
          errors.push(`${addrs[index]}: HTTP ${status}`);
          drain(answer);
          continue;
        }
        if (index !== this.active) log.info("fail over to feed address", { upstream: addrs[index] });
        this.active = index;
        return answer;
      } catch (err) {
        if (err instanceof HttpError && err.message === "aborted") throw err;
        errors.push(`${addrs[index]}: ${(err as Error).message || (err as NodeJS.ErrnoException).code}`);
      }
    }
    throw new UnreachableError(`${what}: no feed address answered (${errors.join("; ")})`);
  }

  async release(app: string, opts: { current?: number | null; seen?: number | null; etag?: string; wait: number; signal?: AbortSignal }): Promise<ReleaseAnswer> {
    const { biz, uid, labels } = this.options;
    const query = new URLSearchParams({ uid, wait: String(opts.wait) });
    if (Object.keys(labels).length > 0) query.set("labels", JSON.stringify(labels));
    if (opts.current !== undefined && opts.current !== null) query.set("current", String(opts.current));
    if (opts.seen !== undefined && opts.seen !== null) query.set("seen", String(opts.seen));
    const path = `/feed/v1/bizs/${biz}/apps/${encodeURIComponent(app)}/release?${query}`;
    const headers = this.headers(opts.etag ? { "if-none-match": opts.etag } : {});
    const res = await this.failover<BufferedResponse>("release", (base) =>
      request(base + path, { headers, timeoutMs: (opts.wait + 15) * 1000, signal: opts.signal }),
    );
    const etag = String(res.headers.etag ?? "");
    if (res.status === 304) return { changed: false, etag };
    if (res.status !== 200) throw new FeedError(`release of ${app}: ${errorMessage(res)}`, res.status);
    let body: unknown;
    try {
      body = JSON.parse(res.body.toString("utf8"));
    } catch {
      throw new FeedError(`release of ${app}: answer is not JSON`, res.status);
    }
    return { changed: true, manifest: body, etag };
  }

  /** Opens a blob download, from `offset` when resuming (`Range: bytes=N-`). */
  async openBlob(sha256: string, offset: number, signal?: AbortSignal): Promise<IncomingMessage> {
    const path = `/feed/v1/bizs/${this.options.biz}/blobs/${sha256}`;
    const headers = this.headers(offset > 0 ? { range: `bytes=${offset}-` } : {});
    return this.failover(
      "blob",
      (base) => openRequest(base + path, { headers, timeoutMs: 60_000, signal }),
      (res) => res.resume(),
    );
  }

  async postEvent(app: string, event: object): Promise<void> {
    await this.post(`/feed/v1/bizs/${this.options.biz}/apps/${encodeURIComponent(app)}/events`, event, "event");
  }

  async heartbeat(app: string, currentReleaseId: number | null): Promise<void> {
    const { uid, labels, mode } = this.options;
    const body = { uid, currentReleaseId, labels, agentVersion: AGENT_VERSION, mode };
    await this.post(`/feed/v1/bizs/${this.options.biz}/apps/${encodeURIComponent(app)}/heartbeat`, body, "heartbeat");
  }

  private async post(path: string, body: object, what: string): Promise<void> {
    const res = await this.failover<BufferedResponse>(what, (base) =>
      request(base + path, {
        method: "POST",
        headers: this.headers({ "content-type": "application/json" }),
        body: JSON.stringify(body),
        timeoutMs: 15_000,
      }),
    );
    if (res.status >= 300) throw new FeedError(`${what}: ${errorMessage(res)}`, res.status);
  }
}

export interface WatchOptions {
  app: string;
  feed: FeedClient;
  waitSeconds: number;
  recheckMs: number;
  log: Logger;
  signal: AbortSignal;
  /** The release id applied now (null when none). */
  current: () => number | null;
  /** Called with every manifest the server sends; re-checks pass `recheck: true`. False = apply failed. */
  onManifest: (manifest: unknown, recheck: boolean) => Promise<boolean>;
  onError?: (err: Error) => void;
  onPoll?: () => void;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  backoff?: Backoff;
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/**
 * Long-polls one service until `signal` aborts. A full re-check (no `current`, so the server
 * answers at once with the manifest) runs at start and every `recheckMs`, even without change.
 */
export async function watchService(options: WatchOptions): Promise<void> {
  const { app, feed, log, signal } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  const backoff = options.backoff ?? new Backoff();
  let etag: string | undefined;
  let nextRecheck = 0;
  let failedRelease: number | null | undefined;
  const failedBackoff = new Backoff(1000, 30_000);
  while (!signal.aborted) {
    const recheck = now() >= nextRecheck;
    try {
      const wait = recheck ? 0 : options.waitSeconds;
      const current = recheck ? null : options.current();
      // After a failed apply, hold on the failed release (`seen`): a newer publish still arrives at
      // once, and the failed one is retried at the next re-check.
      const seen = recheck || failedRelease === undefined ? undefined : failedRelease;
      const answer = await feed.release(app, { current, seen, etag: recheck ? undefined : etag, wait, signal });
      options.onPoll?.();
      if (recheck) nextRecheck = now() + options.recheckMs;
      backoff.reset();
      etag = answer.etag || etag;
      if (!answer.changed || signal.aborted) continue;
      const id = releaseIdOf(answer.manifest);
      if (!recheck && id === failedRelease) {
        // A server that does not know `seen` answers the failed release again: poll slowly until
        // the next re-check retries it, still noticing a newer publish.
        await sleep(failedBackoff.next(), signal);
        continue;
      }
      const ok = await options.onManifest(answer.manifest, recheck);
      failedRelease = ok ? undefined : id;
      if (ok) failedBackoff.reset();
    } catch (err) {
      if (signal.aborted) break;
      const delay = backoff.next();
      log.warn("feed request failed, retrying", { app, error: (err as Error).message, retryInMs: delay });
      options.onError?.(err as Error);
      await sleep(delay, signal);
    }
  }
}
