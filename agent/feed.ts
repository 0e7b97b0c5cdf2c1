/**
 * The feed client (docs/feed-protocol.md) and the watcher: a long-poll loop with exponential
 * backoff and jitter that fails over across `feed_addrs`, after consul-template's `watch/view.go`.
 */
import type { IncomingMessage } from "node:http";
import { AGENT_VERSION } from "./config.js";
import { HttpError, TooLargeError, errorMessage, openRequest, request, type BufferedResponse } from "./http.js";
import type { Logger } from "./log.js";
import { Hold, MIN_HOLD_SECONDS } from "./hold.js";
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

/** Every address failed to answer (connection refused, timeout, 5xx); `statuses` holds the 5xx answers. */
export class UnreachableError extends Error {
  constructor(
    message: string,
    readonly statuses: number[] = [],
  ) {
    super(message);
  }
}

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
    const statuses: number[] = [];
    for (let i = 0; i < addrs.length; i++) {
      const index = (this.active + i) % addrs.length;
      try {
        const answer = await call(addrs[index]);
        const status = answer.statusCode ?? answer.status ?? 0;
        if (status >= 500) {
          errors.push(`${addrs[index]}: HTTP ${status}`);
          statuses.push(status);
          drain(answer);
          continue;
        }
        if (index !== this.active) log.info("fail over to feed address", { upstream: addrs[index] });
        this.active = index;
        return answer;
      } catch (err) {
        if (err instanceof HttpError && err.message === "aborted") throw err;
        if (err instanceof TooLargeError) throw new FeedError(`${what}: ${err.message}`, err.status ?? 0);
        errors.push(`${addrs[index]}: ${(err as Error).message || (err as NodeJS.ErrnoException).code}`);
        statuses.push(0);
      }
    }
    throw new UnreachableError(`${what}: no feed address answered (${errors.join("; ")})`, statuses);
  }

  async release(
    app: string,
    opts: { current?: number | null; currentPublish?: number | null; seen?: number | null; seenPublish?: number | null; full?: boolean; etag?: string; wait: number; signal?: AbortSignal },
  ): Promise<ReleaseAnswer> {
    const { biz, uid, labels } = this.options;
    const query = new URLSearchParams({ uid, wait: String(opts.wait) });
    if (Object.keys(labels).length > 0) query.set("labels", JSON.stringify(labels));
    if (opts.current !== undefined && opts.current !== null) query.set("current", String(opts.current));
    // The publish that brought `current`: an instance whose copy of the publish list is older than
    // it reads the list again rather than send this host back to an older release (feed protocol).
    const publish = opts.currentPublish;
    if (opts.current != null && publish != null && Number.isInteger(publish) && publish >= 1 && publish <= 2_147_483_647) query.set("currentPublish", String(publish));
    // `seen=0` holds on no release: the manifest comes at once, while `current` still tells the
    // server what this host has applied (a re-check never shows the host as having none).
    if (opts.full) query.set("seen", "0");
    else if (opts.seen !== undefined && opts.seen !== null) query.set("seen", String(opts.seen));
    if (opts.seenPublish !== undefined && opts.seenPublish !== null) query.set("seenPublish", String(opts.seenPublish));
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
  /** The publish id that brought the applied release, when known. */
  currentPublish?: () => number | null;
  /** Called with every manifest the server sends; re-checks pass `recheck: true`. False = apply failed. */
  onManifest: (manifest: unknown, recheck: boolean) => Promise<boolean>;
  onError?: (err: Error) => void;
  onPoll?: () => void;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  backoff?: Backoff;
  /** Retries of a failed release: 2 s doubling to 5 min, with jitter. */
  retryBackoff?: Backoff;
}

/** A gateway error that comes sooner than this after the request is a server failure, not a cut hold. */
const CUT_AFTER_MS = 900;

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

function publishIdOf(raw: unknown): number | null {
  const id = (raw as { release?: { publishId?: unknown } } | null)?.release?.publishId;
  return typeof id === "number" ? id : null;
}

/** Every address answered 502 or 504: what a proxy says when it cuts a request it thinks hangs. */
function isGatewayCut(err: unknown): boolean {
  return err instanceof UnreachableError && err.statuses.length > 0 && err.statuses.every((s) => s === 502 || s === 504);
}

/**
 * Long-polls one service until `signal` aborts. A full re-check (no `current`, so the server
 * answers at once with the manifest) runs at start and every `recheckMs`, even without change.
 * A release that failed is held on (`seen` + `seenPublish`: a newer publish, or the same release
 * published again, arrives at once) and retried after a growing backoff (design invariant 5).
 * Held polls cut by a proxy (502/504 after a while) shorten the hold (`Hold`), instead of
 * counting as server failures; the hold grows back once held polls get through again.
 */
export async function watchService(options: WatchOptions): Promise<void> {
  const { app, feed, log, signal } = options;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  const backoff = options.backoff ?? new Backoff();
  const retryBackoff = options.retryBackoff ?? new Backoff(2_000, 300_000);
  let etag: string | undefined;
  let nextRecheck = 0;
  let failed: { id: number | null; publishId: number | null; retryAt: number } | null = null;
  const hold = new Hold(options.waitSeconds, log, app);
  while (!signal.aborted) {
    const t = now();
    const retry = failed !== null && t >= failed.retryAt;
    const recheck = t >= nextRecheck || retry;
    let wait = recheck ? 0 : hold.seconds;
    if (!recheck && failed) wait = Math.max(1, Math.min(wait, Math.ceil((failed.retryAt - t) / 1000)));
    const held = !recheck && failed ? { seen: failed.id, seenPublish: failed.publishId } : {};
    const sent = now();
    try {
      // A re-check asks for the whole manifest (`full`) and still reports what is applied.
      const answer = await feed.release(app, { current: options.current(), currentPublish: options.currentPublish?.(), ...held, full: recheck, etag: recheck ? undefined : etag, wait, signal });
      options.onPoll?.();
      if (wait > 0) hold.gotThrough(wait, answer.changed);
      if (recheck) nextRecheck = now() + options.recheckMs;
      backoff.reset();
      etag = answer.etag || etag;
      if (!answer.changed || signal.aborted) continue;
      const id = releaseIdOf(answer.manifest);
      const publishId = publishIdOf(answer.manifest);
      if (!recheck && failed && id === failed.id && publishId === failed.publishId) {
        // A server that does not know `seen` answers the failed release again: wait for the retry.
        await sleep(Math.max(0, failed.retryAt - now()), signal);
        continue;
      }
      if (!recheck && failed && id === failed.id) log.info("release published again: retrying it now", { app, releaseID: id });
      const ok = await options.onManifest(answer.manifest, recheck);
      if (ok) {
        failed = null;
        retryBackoff.reset();
        continue;
      }
      // A new release (or a new publish of it) starts the retries from the shortest delay.
      if (!failed || failed.id !== id || failed.publishId !== publishId) retryBackoff.reset();
      const delay = retryBackoff.next();
      failed = { id, publishId, retryAt: now() + delay };
      log.info("release failed; it will be retried", { app, releaseID: id, retryInMs: delay });
    } catch (err) {
      if (signal.aborted) break;
      if (wait > 0 && isGatewayCut(err) && now() - sent >= CUT_AFTER_MS && hold.seconds > MIN_HOLD_SECONDS) {
        hold.cut(now() - sent);
        continue;
      }
      const delay = backoff.next();
      log.warn("feed request failed, retrying", { app, error: (err as Error).message, retryInMs: delay });
      options.onError?.(err as Error);
      await sleep(delay, signal);
    }
  }
}
