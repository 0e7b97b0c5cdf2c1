import { and, asc, desc, eq, gte, sql } from "drizzle-orm";
import { publishes, releaseFiles, releaseHooks, releases, services, type GroupSnapshot, type PublishRollout } from "../../db/schema/index";
import { invalid } from "./errors";
import { revealKvs, storedKvs, type StoredKv } from "./kv-versions";
import type { AppDeps, Db, ReleaseNotifier } from "./ports";
import { loadService, type ServiceRow } from "./services";
import { resolveTarget, type TargetClient } from "./targeting";

/** `rollout`: set on a rollout's publish, the released share (core/rollouts.ts); part of the cached list, so membership costs a poll no read. */
export type PublishEntry = { id: number; releaseId: number; groups: GroupSnapshot[]; rollout: PublishRollout | null; createdAt: Date };

/**
 * A publish that reaches every client: no groups, and not a rollout short of 100 %. Publishes older
 * than the newest such one can be nobody's target.
 */
export const reachesEveryone = () => sql`(${publishes.groups} = '[]'::jsonb and (${publishes.rollout} is null or (${publishes.rollout}->>'percent')::numeric >= 100))`;

type HookSnapshot = { type: "shell" | "python"; scriptName: string; versionName: string; content: string };
/** What a release carries to agents; immutable once the release exists. */
export type ReleaseContent = {
  id: number;
  name: string;
  files: { path: string; name: string; sha256: string; size: number; fileType: "text" | "binary"; permission: { user: string; group: string; privilege: string } }[];
  hooks: { pre: HookSnapshot | null; post: HookSnapshot | null; validate: HookSnapshot | null };
  /** Items of a kv service's release, secrets still sealed (decrypted only into the manifest body). */
  kvs?: StoredKv[];
};

/**
 * `asOf`: epoch ms before the publish list behind the answer was read (absent when it came with a
 * wake or from a cache kept current by notifies); `cached`: read from a copy that may be stale, so
 * fine for holding on, not for answering. `publishId`: the publish behind the answer (a re-publish
 * of the same version has a new one: see `seenPublish` in docs/feed-protocol.md).
 */
export type FeedAnswer = { etag: string; releaseId: number | null; publishId: number | null; body: string; asOf?: number; cached: boolean };

export const MAX_WAIT_SECONDS = 60;
export const DEFAULT_WAIT_SECONDS = 30;

/** Publish lists are re-read at most this often even without a notify (a safety net, not the wake path). */
const PUBLISH_TTL_MS = 60_000;
const MAX_BODIES = 5_000;
const MAX_RELEASES = 2_000;
const SERVICE_TTL_MS = 10_000;
const LIST_COPY_TTL_MS = 5_000;
const MAX_SERVICES = 10_000;

/** A notifier that tells listeners synchronously before it wakes waiters (the Node pg notifier does). */
type Observable = ReleaseNotifier & { onNotify?: (l: (serviceId: number) => void) => () => void };

/**
 * Per process: each service's publish list (dropped on notify) and each release's content (immutable,
 * so never dropped except to bound memory), plus the serialized manifest per (publish, release,
 * service, wait). A wake-up of 10,000 waiters then costs one database read, not 10,000.
 */
export class FeedCache {
  /** `value`: the list once read, so a poll can answer from it without a promise (`cachedAnswer`). */
  private publishLists = new Map<number, { at: number; list: Promise<PublishEntry[]>; value?: PublishEntry[] }>();
  private contents = new Map<number, Promise<ReleaseContent | null>>();
  private loaded = new Map<number, ReleaseContent>();
  private bodies = new Map<string, string>();
  private notifies = new Map<number, number>();
  private services = new Map<string, { at: number; row: ServiceRow }>();
  private serviceLoads = new Map<string, Promise<ServiceRow>>();
  /** Workers: resolved publish lists per service, read at most LIST_COPY_TTL_MS ago (never a pending read). */
  private listCopies = new Map<number, { at: number; list: PublishEntry[] }>();
  private newsParsed = new Map<number, { news: string; parsed: { publishes: PublishEntry[]; contents: ReleaseContent[] } }>();
  readonly cachesPublishes: boolean;

  constructor(notifier: Observable) {
    this.cachesPublishes = typeof notifier.onNotify === "function";
    notifier.onNotify?.((serviceId) => {
      this.publishLists.delete(serviceId);
      this.notifies.set(serviceId, (this.notifies.get(serviceId) ?? 0) + 1);
    });
  }

  /**
   * How many notifies this process has seen for the service, or undefined when the notifier does not
   * tell (then a long-poll must arm its wait before reading the target, or it could miss a publish).
   */
  notifyCount(serviceId: number): number | undefined {
    return this.cachesPublishes ? (this.notifies.get(serviceId) ?? 0) : undefined;
  }

  /** Newest first, from the latest publish to everyone on (older ones can never be a target). */
  async publishesOf(db: Db, serviceId: number, now = Date.now(), notifier?: ReleaseNotifier): Promise<PublishEntry[]> {
    return (await this.listOf(db, serviceId, { now, notifier, fresh: true })).list;
  }

  /**
   * The publish list with how it was obtained. Node: cached until a notify (authoritative). Workers:
   * the news of the last wake, else (unless `fresh`) a copy read at most 5 s ago by this isolate,
   * which may miss a publish made since: `asOf` (epoch ms, taken before the read) tells a wait to
   * wake at once for a notify after it, and `cached` says an answer must not be given from it.
   */
  async listOf(db: Db, serviceId: number, opts: { now?: number; notifier?: ReleaseNotifier; fresh?: boolean } = {}): Promise<{ list: PublishEntry[]; asOf?: number; cached: boolean }> {
    const now = opts.now ?? Date.now();
    // A wake that brought the publish list (Durable Objects) needs no database read.
    const news = this.cachesPublishes ? undefined : opts.notifier?.newsFor?.(serviceId);
    if (news) {
      const { publishes, contents } = this.parsedNews(serviceId, news);
      // Manifests are immutable: the ones the news brought serve every later poll of this isolate too.
      for (const c of contents) this.remember(c);
      return { list: publishes, cached: false };
    }
    if (this.cachesPublishes) {
      const hit = this.publishLists.get(serviceId);
      if (hit && now - hit.at < PUBLISH_TTL_MS) return { list: await hit.list, cached: false };
      const list = loadPublishes(db, serviceId);
      const entry: { at: number; list: Promise<PublishEntry[]>; value?: PublishEntry[] } = { at: now, list };
      this.publishLists.set(serviceId, entry);
      list.then(
        (value) => void (entry.value = value),
        () => this.publishLists.get(serviceId) === entry && this.publishLists.delete(serviceId),
      );
      return { list: await list, cached: false };
    }
    const copy = this.listCopies.get(serviceId);
    if (!opts.fresh && copy && now - copy.at < LIST_COPY_TTL_MS) return { list: copy.list, asOf: copy.at, cached: true };
    const list = await loadPublishes(db, serviceId);
    if (this.listCopies.size >= MAX_SERVICES) this.listCopies.delete(this.listCopies.keys().next().value!);
    this.listCopies.set(serviceId, { at: now, list });
    return { list, asOf: now, cached: false };
  }

  /** The news of a wake, parsed once per isolate: the polls one notify wakes all bring the same string. */
  private parsedNews(serviceId: number, news: string): { publishes: PublishEntry[]; contents: ReleaseContent[] } {
    const last = this.newsParsed.get(serviceId);
    if (last && last.news === news) return last.parsed;
    const parsed = parseNews(news);
    if (this.newsParsed.size >= MAX_SERVICES) this.newsParsed.delete(this.newsParsed.keys().next().value!);
    this.newsParsed.set(serviceId, { news, parsed });
    return parsed;
  }

  /** Node: the publish list as read and still current (no notify since, within its TTL); else undefined. */
  listNow(serviceId: number, now = Date.now()): PublishEntry[] | undefined {
    const hit = this.cachesPublishes ? this.publishLists.get(serviceId) : undefined;
    return hit && now - hit.at < PUBLISH_TTL_MS ? hit.value : undefined;
  }

  /** A release's content if this cache has it read (never a pending read). */
  contentNow(releaseId: number): ReleaseContent | undefined {
    return this.loaded.get(releaseId);
  }

  /**
   * The service a feed path names, cached 10 s (a poll costs no database read for it). Only found
   * services are cached; a deleted service stops answering within that time (its publishes do at once).
   */
  async serviceOf(db: Db, bizId: number, app: string, now = Date.now()): Promise<ServiceRow> {
    const key = `${bizId}\u0000${app}`;
    const hit = this.services.get(key);
    if (hit && now - hit.at < SERVICE_TTL_MS) return hit.row;
    // A herd of polls of one service makes one read, where a pending read may be shared (Node).
    let load = this.cachesPublishes ? this.serviceLoads.get(key) : undefined;
    if (!load) {
      load = loadService(db, bizId, app);
      if (this.cachesPublishes) {
        this.serviceLoads.set(key, load);
        const clear = () => this.serviceLoads.get(key) === load && this.serviceLoads.delete(key);
        load.then(clear, clear);
      }
    }
    const row = await load;
    if (this.services.size >= MAX_SERVICES) this.services.delete(this.services.keys().next().value!);
    this.services.set(key, { at: now, row });
    return row;
  }

  contentOf(db: Db, releaseId: number): Promise<ReleaseContent | null> {
    // Where the cache outlives a request (Workers), share only loaded values: a promise pending on
    // one request's I/O must not be awaited by another request.
    if (!this.cachesPublishes) {
      const done = this.loaded.get(releaseId);
      if (done) return Promise.resolve(done);
      return loadReleaseContent(db, releaseId).then((c) => {
        if (c) this.remember(c);
        return c;
      });
    }
    let hit = this.contents.get(releaseId);
    if (!hit) {
      hit = loadReleaseContent(db, releaseId);
      if (this.contents.size >= MAX_RELEASES) this.contents.delete(this.contents.keys().next().value!);
      this.contents.set(releaseId, hit);
      hit.then(
        (c) => (c === null ? this.contents.delete(releaseId) : this.remember(c)),
        () => this.contents.delete(releaseId),
      );
    }
    return hit;
  }

  private remember(c: ReleaseContent) {
    if (this.loaded.has(c.id)) return;
    if (this.loaded.size >= MAX_RELEASES) this.loaded.delete(this.loaded.keys().next().value!);
    this.loaded.set(c.id, c);
  }

  hasBody(key: string): boolean {
    return this.bodies.has(key);
  }

  body(key: string, build: () => string): string {
    let b = this.bodies.get(key);
    if (b === undefined) {
      b = build();
      if (this.bodies.size >= MAX_BODIES) this.bodies.delete(this.bodies.keys().next().value!);
      this.bodies.set(key, b);
    }
    return b;
  }
}

const caches = new WeakMap<object, FeedCache>();
/**
 * The feed cache of these deps: per notifier on Node (publish lists dropped on its notifies), per
 * `cacheScope` on Workers, where a notifier that does not tell its notifies leaves only the
 * immutable parts (release manifests and their bodies) cached across requests.
 */
export function feedCacheFor(deps: Pick<AppDeps, "notifier" | "cacheScope">): FeedCache {
  const key = deps.cacheScope ?? deps.notifier;
  let c = caches.get(key);
  if (!c) caches.set(key, (c = new FeedCache(deps.notifier)));
  return c;
}

/** The manifests of the newest releases in a publish list travel with the news (the ones a wake hands out). */
const NEWS_CONTENTS = 4;

/**
 * Wakes the service's long-polls after a publish (call it after the commit). Notifiers that carry
 * news get the fresh publish list and the manifests of its newest releases with the notify
 * (`{"publishes":[...],"contents":[...]}`), so the polls they wake need no database read at all.
 */
export async function announcePublish(deps: Pick<AppDeps, "db" | "notifier">, serviceId: number): Promise<void> {
  let news: string | undefined;
  if (deps.notifier.wantsNews) {
    const publishes = await loadPublishes(deps.db, serviceId);
    const ids = [...new Set(publishes.map((p) => p.releaseId))].slice(0, NEWS_CONTENTS);
    const contents = (await Promise.all(ids.map((id) => loadReleaseContent(deps.db, id)))).filter((c): c is ReleaseContent => c !== null);
    news = JSON.stringify({ publishes, contents });
  }
  await deps.notifier.notify(serviceId, news);
}

function parseNews(news: string): { publishes: PublishEntry[]; contents: ReleaseContent[] } {
  const parsed = JSON.parse(news) as { publishes: (Omit<PublishEntry, "createdAt"> & { createdAt: string })[]; contents?: ReleaseContent[] };
  return { publishes: parsed.publishes.map((p) => ({ ...p, createdAt: new Date(p.createdAt) })), contents: parsed.contents ?? [] };
}

async function loadPublishes(db: Db, serviceId: number): Promise<PublishEntry[]> {
  const lastToAll = sql`coalesce((select max(${publishes.id}) from ${publishes} where ${publishes.serviceId} = ${serviceId} and ${reachesEveryone()}), 0)`;
  return db
    .select({ id: publishes.id, releaseId: publishes.releaseId, groups: publishes.groups, rollout: publishes.rollout, createdAt: publishes.createdAt })
    .from(publishes)
    .where(and(eq(publishes.serviceId, serviceId), gte(publishes.id, lastToAll)))
    .orderBy(desc(publishes.id));
}

async function loadReleaseContent(db: Db, releaseId: number): Promise<ReleaseContent | null> {
  const [rel] = await db.select({ id: releases.id, name: releases.name }).from(releases).where(eq(releases.id, releaseId)).limit(1);
  if (!rel) return null;
  const files = await db.select().from(releaseFiles).where(eq(releaseFiles.releaseId, releaseId)).orderBy(asc(releaseFiles.path), asc(releaseFiles.name));
  const hooks = await db.select().from(releaseHooks).where(eq(releaseHooks.releaseId, releaseId));
  const kvs = await storedKvs(db, releaseId);
  const hook = (kind: "pre" | "post" | "validate"): HookSnapshot | null => {
    const h = hooks.find((x) => x.kind === kind);
    return h ? { type: h.type, scriptName: h.scriptName, versionName: h.versionName, content: h.content } : null;
  };
  return {
    id: rel.id,
    name: rel.name,
    files: files.map((f) => ({ path: f.path, name: f.name, sha256: f.sha256, size: f.size, fileType: f.fileType, permission: { user: f.user, group: f.group, privilege: f.privilege } })),
    hooks: { pre: hook("pre"), post: hook("post"), validate: hook("validate") },
    ...(kvs.length ? { kvs } : {}),
  };
}

/** `k=v,k2=v2` or a JSON object; keys and values are short strings without control characters. */
export function parseLabels(text: string | undefined, field = "labels"): Record<string, string> {
  if (!text) return {};
  let pairs: [string, unknown][];
  if (text.trim().startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      throw invalid(field, "not valid JSON");
    }
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) throw invalid(field, "must be a JSON object of strings");
    pairs = Object.entries(obj);
  } else {
    pairs = text
      .split(",")
      .filter((p) => p.trim())
      .map((p) => {
        const i = p.indexOf("=");
        if (i <= 0) throw invalid(field, `'${p}' is not key=value`);
        return [p.slice(0, i).trim(), p.slice(i + 1).trim()];
      });
  }
  if (pairs.length > 64) throw invalid(field, "at most 64 labels");
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) {
    if (typeof v !== "string") throw invalid(field, `label '${k}' must be a string`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.\/-]{0,62}$/.test(k)) throw invalid(field, `label key '${k}' must be letters, digits, '_', '-', '.', '/'`);
    if (v.length > 256 || /[\u0000-\u001f,]/.test(v)) throw invalid(field, `label '${k}' value must be at most 256 characters, no commas or control characters`);
    out[k] = v;
  }
  return out;
}

/**
 * `"r376"` → 376, `"none"` → null, anything else → undefined (unknown: answer at once). An id past
 * int4 (2^31 − 1) is no release of ours: unknown, so it is never written as a client's current one.
 */
export function releaseIdOfEtag(etag: string | undefined): number | null | undefined {
  const m = /^(?:W\/)?"(r(\d{1,10})|none)"$/.exec((etag ?? "").split(",")[0].trim());
  if (!m) return undefined;
  if (!m[2]) return null;
  const id = Number(m[2]);
  return id >= 1 && id <= 2_147_483_647 ? id : undefined;
}

/** The client's target as the feed answers it now: ETag, release id and the serialized manifest. */
export async function targetAnswer(deps: Pick<AppDeps, "db" | "notifier" | "cacheScope" | "secretKey">, service: ServiceRow, client: TargetClient, wait: number, opts: { fresh?: boolean } = {}): Promise<FeedAnswer> {
  const cache = feedCacheFor(deps);
  const { list, asOf, cached } = await cache.listOf(deps.db, service.id, { notifier: deps.notifier, fresh: opts.fresh });
  const pub = resolveTarget(list, client);
  const content = pub ? await cache.contentOf(deps.db, pub.releaseId) : null;
  const key = bodyKey(service, pub, wait);
  // A kv release's secrets are decrypted into the body only (kept in memory, never in the database or the news).
  const kvs = pub && content && service.configType === "kv" && !cache.hasBody(key) ? await revealKvs(deps.secretKey, service.id, content.kvs ?? []) : undefined;
  return { ...answerOf(cache, service, wait, pub, content, kvs), asOf, cached };
}

/**
 * What `targetAnswer` answers, when everything it needs is in memory (Node, once the publish list
 * and the target's manifest are read): no promise, no database. Undefined otherwise.
 */
export function cachedAnswer(deps: Pick<AppDeps, "notifier" | "cacheScope">, service: ServiceRow, client: TargetClient, wait: number): FeedAnswer | undefined {
  const cache = feedCacheFor(deps);
  const list = cache.listNow(service.id);
  if (!list) return undefined;
  const pub = resolveTarget(list, client);
  const content = pub ? cache.contentNow(pub.releaseId) : null;
  if (content === undefined || (pub && service.configType === "kv" && !cache.hasBody(bodyKey(service, pub, wait)))) return undefined;
  return { ...answerOf(cache, service, wait, pub, content), cached: false };
}

const bodyKey = (service: ServiceRow, pub: PublishEntry | null, wait: number) => `${service.id}:${service.name}:${service.configType}:${pub?.id ?? 0}:${wait}`;

function answerOf(cache: FeedCache, service: ServiceRow, wait: number, pub: PublishEntry | null, content: ReleaseContent | null, kvs?: { key: string; type: string; value: string }[]) {
  const key = bodyKey(service, pub, wait);
  if (!pub || !content) return { etag: `"none"`, releaseId: null, publishId: null, body: cache.body(key, () => JSON.stringify(manifest(service, wait, null, null))) };
  return { etag: `"r${content.id}"`, releaseId: content.id, publishId: pub.id, body: cache.body(key, () => JSON.stringify(manifest(service, wait, pub, content, kvs))) };
}

function manifest(service: ServiceRow, wait: number, pub: PublishEntry | null, content: ReleaseContent | null, kvs?: { key: string; type: string; value: string }[]) {
  return {
    biz: service.bizId,
    app: service.name,
    configType: service.configType,
    wait,
    release: pub && content ? { id: content.id, name: content.name, publishId: pub.id, publishedAt: pub.createdAt.toISOString() } : null,
    files: content?.files ?? [],
    hooks: content?.hooks ?? { pre: null, post: null, validate: null },
    ...(service.configType === "kv" ? { kvs: kvs ?? [] } : {}),
  };
}

/** The target release id of a client, for listings (same rule as the feed). */
export async function targetReleaseOf(deps: Pick<AppDeps, "db" | "notifier" | "cacheScope">, serviceId: number, client: TargetClient): Promise<number | null> {
  return resolveTarget(await feedCacheFor(deps).publishesOf(deps.db, serviceId), client)?.releaseId ?? null;
}

/**
 * Whether a blob is part of some release of a service the caller may read, in this biz.
 * Returns the size recorded for it, or null.
 */
export async function readableBlob(db: Db, bizId: number, sha256: string, mayRead: (serviceName: string) => boolean): Promise<number | null> {
  const rows = await db
    .selectDistinct({ name: services.name, size: releaseFiles.size })
    .from(releaseFiles)
    .innerJoin(releases, eq(releases.id, releaseFiles.releaseId))
    .innerJoin(services, eq(services.id, releases.serviceId))
    .where(and(eq(releases.bizId, bizId), eq(releaseFiles.sha256, sha256)));
  const ok = rows.find((r) => mayRead(r.name));
  return ok ? ok.size : null;
}
