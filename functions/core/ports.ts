import type { Db } from "../../db/types";

export type { Db };

/** Bytes addressed by key (`{biz}/{sha256}`). Adapters: fs (Node), S3, R2. */
export interface BlobStore {
  put(key: string, body: Uint8Array): Promise<void>;
  /** `range.end` is inclusive, as in HTTP. Returns null when the key is absent. */
  get(key: string, range?: { start: number; end?: number }): Promise<BlobObject | null>;
  head(key: string): Promise<{ size: number } | null>;
  delete(key: string): Promise<void>;
}

export type BlobObject = { body: ReadableStream<Uint8Array>; size: number };

/**
 * Wakes long-polls when a publish changes a service's targets.
 * Adapters: in-process, Postgres LISTEN/NOTIFY (+ in-process), Durable Object per service.
 */
export interface ReleaseNotifier {
  /** `news`: the service's publish list, serialized, for notifiers that hand it to the waiters they wake. */
  notify(serviceId: number, news?: string): Promise<void>;
  /**
   * True when `wait` honours `holder.since`: a notify at or after that time, even one made before the
   * wait arrived, wakes it at once (Durable Objects). A poll may then hold on a publish list read
   * earlier (a per-isolate copy) without missing a publish made since.
   */
  readonly wakesSince?: boolean;
  /** True when `notify` should be given the news (it saves every woken poll a database read). */
  readonly wantsNews?: boolean;
  /** The news the last wake of this notifier brought for the service, if any. */
  newsFor?(serviceId: number): string | undefined;
  /**
   * Resolves true when notified, false on timeout or abort, "revoked" when `holder.credentialId` is
   * revoked meanwhile (or was already), "replaced" when a newer wait of the same `(serviceId,
   * holder.uid)` arrives (one held poll per client and service; issue 10 item 8).
   */
  wait(serviceId: number, timeoutMs: number, signal?: AbortSignal, holder?: WaitHolder): Promise<WaitOutcome>;
  /**
   * `wait` without a promise or a signal, for notifiers whose waiters live in this process: `done`
   * runs once with the outcome (at once for a revoked credential); `cancel()` ends the wait with
   * false. Ten thousand held polls cost ten thousand of these, so they are kept small.
   */
  hold?(serviceId: number, timeoutMs: number, holder: WaitHolder | undefined, done: (outcome: WaitOutcome) => void): { cancel(): void };
  /**
   * Ends, everywhere this notifier reaches, the waits held with the credential and tells every
   * instance to forget it (token caches). `serviceIds`: the services it could read, for notifiers
   * that keep waiters per service elsewhere (Durable Objects); call after the revocation commits.
   */
  revoke?(credentialId: number, serviceIds: number[]): Promise<void>;
  /**
   * Ends, everywhere this notifier reaches, the waits held on a deleted service (outcome "gone"),
   * and tells every instance to forget the service (feed caches), so no poll is answered from the
   * deleted service's releases nor held on its id when a service of the same name is created again.
   * Call after the deletion commits.
   */
  removeService?(serviceId: number): Promise<void>;
  /** Runs synchronously when a revocation arrives (local or from another instance), before waits end. */
  onRevoke?(listener: (credentialId: number) => void): () => void;
  /** Long-polls held by this process (all services, or one); absent where waiters live elsewhere (Durable Objects). */
  waiting?(serviceId?: number): number;
}

/** Who holds a wait: the token's credential and the client's uid (either may be absent). */
export type WaitHolder = { credentialId?: number | null; uid?: string; since?: number };
/** `gone`: the service was deleted (`removeService`) while the poll was held. */
export type WaitOutcome = boolean | "revoked" | "replaced" | "gone";

/**
 * Runs a service's rollout evaluation (core/rollouts.ts `evaluateServiceRollouts`) at or soon after a
 * time: bake and report deadlines, and shortly after agents report. Requests coalesce (the earliest
 * wins); evaluation is idempotent, so an extra or duplicated run is harmless. Adapters: in-process
 * timers (Node), a Durable Object alarm per service (Workers).
 */
export interface RolloutScheduler {
  schedule(serviceId: number, at: Date): Promise<void>;
}

export type AppLimits = {
  /** Largest JSON body, bytes. */
  maxJsonBytes: number;
  /** Largest uploaded config file, bytes. */
  maxFileBytes: number;
  /** Largest script content, bytes. */
  maxScriptBytes: number;
  /** Agents' events older than this are deleted (days; EDGECONF_EVENT_RETENTION_DAYS). */
  eventRetentionDays: number;
  /** Clients not seen (no poll, heartbeat or event) for this long are deleted with their events (days; EDGECONF_CLIENT_RETENTION_DAYS). */
  clientRetentionDays: number;
  /** Events kept per client, newest first (EDGECONF_EVENTS_PER_CLIENT). */
  eventsPerClient: number;
};

export type AppDeps = {
  db: Db;
  blobs: BlobStore;
  notifier: ReleaseNotifier;
  clock: () => Date;
  limits: AppLimits;
  /** Wakes rollout evaluation at deadlines; absent, rollouts move only on agents' reports and operators' calls. */
  scheduler?: RolloutScheduler;
  /** Server key from which webhook secrets are derived (never stored in the database). */
  secretKey: string;
  /**
   * Identifies the database across requests, so immutable data read from it (release manifests)
   * can be cached beyond one request. Workers, where deps are built per request, pass one object per
   * database per isolate; without it the cache lives as long as the notifier.
   */
  cacheScope?: object;
  /**
   * Runs work after the response without holding it up, where the runtime needs to be told
   * (Workers: `ctx.waitUntil`). Absent on Node, where timers outlive requests.
   */
  defer?: (work: Promise<unknown>) => void;
  /**
   * Called before a long-poll waits: the request will not touch the database until it wakes, so it
   * gives back its connections (Workers, a pool per request; a later use opens a new one). Absent on
   * Node, where one shared pool serves every request.
   */
  idle?: () => void;
};

export const defaultLimits: AppLimits = {
  maxJsonBytes: 2 * 1024 * 1024,
  maxFileBytes: 100 * 1024 * 1024,
  maxScriptBytes: 1024 * 1024,
  eventRetentionDays: 30,
  clientRetentionDays: 30,
  eventsPerClient: 100,
};
