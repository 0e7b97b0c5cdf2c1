import { eq } from "drizzle-orm";
import { services } from "../../db/schema/index";
import type { Actor } from "./audit";
import { authenticateHash } from "./credentials";
import { sha256Hex } from "./crypto";
import type { AppDeps, Db } from "./ports";
import { sightingsFor } from "./sightings";
import { SingleFlight } from "./single-flight";
import { FailureThrottle } from "./throttle";

/**
 * Verified tokens per process (by SHA-256), so a known token costs no database round trip per
 * request. Where revocations are observable (Node: in-process and pg NOTIFY) a cached copy is used
 * until its credential is revoked, re-checked every 10 minutes as a safety net; where they are not
 * (Workers, one cache per isolate) for 10 seconds, and held polls are ended by the Durable Object.
 *
 * An expired copy is kept (not used) so the process still knows the hash: its re-verification is
 * never throttled (`knows`), or agents behind one NAT with a guesser would get 429 every time their
 * copies expire. A hash is unknown again once its credential is revoked here (`forgetCredential`),
 * its re-verification finds nothing (`forget`), or it is evicted (at most MAX_TOKENS hashes, the
 * least recently verified evicted first).
 */
export class TokenCache {
  /** SHA-256 (hex) → its actor and when it was last verified (ms since the epoch, by the deps' clock). */
  private byHash = new Map<string, { actor: Actor; at: number }>();
  /** Bumped on every revocation: a lookup that raced one is not cached. */
  private epoch = 0;
  private lookups = new Map<string, Promise<Actor | null>>();
  private flight = new SingleFlight();
  readonly ttlMs: number;
  readonly throttle = new FailureThrottle();

  constructor(private readonly observable: boolean) {
    this.ttlMs = observable ? OBSERVED_TTL_MS : UNOBSERVED_TTL_MS;
  }

  /**
   * Looks the token up in the database (the caller caches what it finds); a herd reconnecting with
   * one token makes one read. Node: requests share the pending read. Workers: a promise pending on
   * one request's I/O must not be awaited by another (it hangs if that request ends first), so the
   * others wait for the cache on their own timers (core/single-flight.ts).
   */
  lookup(db: Db, hash: string): Promise<Actor | null> {
    if (!this.observable) return this.flight.run(hash, () => this.get(hash, Date.now()), () => authenticateHash(db, hash));
    let p = this.lookups.get(hash);
    if (!p) {
      p = authenticateHash(db, hash);
      this.lookups.set(hash, p);
      const clear = () => this.lookups.get(hash) === p && this.lookups.delete(hash);
      p.then(clear, clear);
    }
    return p;
  }

  /** The cached actor of `hash` if verified less than `ttlMs` before `now` (ms); an expired copy is kept for `knows`. */
  get(hash: string, now: number): Actor | undefined {
    const hit = this.byHash.get(hash);
    return hit && now - hit.at < this.ttlMs ? hit.actor : undefined;
  }

  /** Whether this process verified `hash` and has not forgotten it since, even if its copy expired. */
  knows(hash: string): boolean {
    return this.byHash.has(hash);
  }

  /**
   * Caches `actor` for `hash` as verified at `now` (ms) unless a revocation arrived since
   * `epochAtStart` (the row read may predate it). Re-verified hashes move to the back of the eviction order.
   */
  set(hash: string, actor: Actor, now: number, epochAtStart: number) {
    if (epochAtStart !== this.epoch) return;
    this.byHash.delete(hash);
    if (this.byHash.size >= MAX_TOKENS) this.byHash.delete(this.byHash.keys().next().value!);
    this.byHash.set(hash, { actor, at: now });
  }

  /** Makes `hash` unknown: its re-verification found no valid credential (revoked where this process did not hear of it). */
  forget(hash: string) {
    this.byHash.delete(hash);
  }

  currentEpoch() {
    return this.epoch;
  }

  /** Makes every hash of `credentialId` unknown (copies expired or not): it was revoked. */
  forgetCredential(credentialId: number) {
    this.epoch++;
    for (const [hash, e] of this.byHash) if (e.actor.credentialId === credentialId) this.byHash.delete(hash);
  }
}

/** How long a cached copy is used without a database read (ms). */
const OBSERVED_TTL_MS = 10 * 60_000;
const UNOBSERVED_TTL_MS = 10_000;
/** Hashes held (copies in use or expired); the least recently verified is evicted past it. */
const MAX_TOKENS = 50_000;

const caches = new WeakMap<object, TokenCache>();

/** The token cache of these deps: per notifier on Node, per `cacheScope` (database, isolate) on Workers. */
export function tokenCacheFor(deps: Pick<AppDeps, "notifier" | "cacheScope">): TokenCache {
  const key = deps.cacheScope ?? deps.notifier;
  let c = caches.get(key);
  if (!c) {
    c = new TokenCache(typeof deps.notifier.onRevoke === "function");
    const cache = c;
    deps.notifier.onRevoke?.((id) => cache.forgetCredential(id));
    caches.set(key, c);
  }
  return c;
}

/**
 * Tells every instance that a credential was revoked (call after the revocation commits): token
 * caches forget it and the long-polls held with it end at once (401), the way publishes wake them.
 */
export async function announceRevocation(deps: Pick<AppDeps, "db" | "notifier" | "cacheScope">, credential: { id: number; kind: string; bizId: number | null }) {
  // This process (or isolate) forgets it now, whatever the notifier reaches.
  tokenCacheFor(deps).forgetCredential(credential.id);
  if (!deps.notifier.revoke) return;
  // Notifiers that hold polls per service elsewhere (Durable Objects) need the services it could read.
  const where = credential.kind === "agent" && credential.bizId !== null ? eq(services.bizId, credential.bizId) : undefined;
  const ids = (await deps.db.select({ id: services.id }).from(services).where(where)).map((r) => r.id);
  await deps.notifier.revoke(credential.id, ids);
}

/**
 * The actor of a token this process already verified (by its SHA-256, hex) whose cached copy is
 * live, with its use noted as `verifyToken` notes it; undefined when the cache holds no live copy
 * (then only `verifyToken` may say, since it may read the database and counts failures).
 * Synchronous: the Node fast path of the long-poll (node/feed-long-poll.ts) takes known tokens
 * without a promise.
 */
export function knownToken(deps: Pick<AppDeps, "db" | "notifier" | "cacheScope" | "clock" | "defer">, hash: string): Actor | undefined {
  const now = deps.clock();
  const actor = tokenCacheFor(deps).get(hash, now.getTime());
  if (actor && actor.credentialId !== null) sightingsFor(deps).noteToken(deps, actor.credentialId, now);
  return actor;
}

export type TokenCheck = { actor: Actor } | { actor: null; retryAfterSeconds?: number };

/**
 * Resolves a bearer token for a request from `address` (the client's IP as the runtime sees it).
 * A token with a live cached copy is taken from the cache. A token this process verified before
 * (`TokenCache.knows`: its copy expired) is looked up again whatever the throttle says for its
 * address, so an agent behind the same NAT as a guesser is never refused 429. Only an unknown token
 * is throttled: looked up unless the address failed too often (then `retryAfterSeconds`, seconds,
 * and no lookup). A lookup that finds nothing counts a failure for the address (issue 10 item 6)
 * and makes the hash unknown, so a token revoked where this process did not hear of it is refused
 * 401 once, then throttled like any unknown token. A use is recorded for `lastUsedAt` off the
 * request path, at most once a minute per token.
 */
export async function verifyToken(deps: Pick<AppDeps, "db" | "notifier" | "cacheScope" | "clock" | "defer">, token: string, address: string): Promise<TokenCheck> {
  if (!token || token.length > 200) return { actor: null };
  const hash = await sha256Hex(token);
  const known = knownToken(deps, hash);
  if (known) return { actor: known };
  const cache = tokenCacheFor(deps);
  const now = deps.clock();
  if (!cache.knows(hash)) {
    const retryAfterSeconds = cache.throttle.retryAfterSeconds(address, now.getTime());
    if (retryAfterSeconds > 0) return { actor: null, retryAfterSeconds };
  }
  const epoch = cache.currentEpoch();
  const actor = await cache.lookup(deps.db, hash);
  if (!actor) {
    cache.forget(hash);
    cache.throttle.fail(address, now.getTime());
    return { actor: null };
  }
  cache.set(hash, actor, now.getTime(), epoch);
  if (actor.credentialId !== null) sightingsFor(deps).noteToken(deps, actor.credentialId, now);
  return { actor };
}
