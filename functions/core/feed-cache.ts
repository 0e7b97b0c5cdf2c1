/**
 * What the feed keeps in memory per process (per isolate on Workers): each service's publish list,
 * release manifests and serialized manifest bodies, and the news a publish hands the polls it wakes.
 * The feed's answers are built from these in core/feed.ts.
 */
import { and, asc, desc, eq, gte, sql } from "drizzle-orm";
import { publishes, releaseFiles, releaseHooks, releases, type GroupSnapshot, type PublishRollout } from "../../db/schema/index";
import { storedKvs, type StoredKv } from "./kv-versions";
import type { AppDeps, Db, ReleaseNotifier } from "./ports";
import { loadService, type ServiceRow } from "./services";
import { SingleFlight } from "./single-flight";

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


/** A publish list read for a notify: `before`, the notifies of the service seen when the read began. */
type PrimedList = { serviceId: number; before: number; list: PublishEntry[] };

/** Publish lists are re-read at most this often even without a notify (a safety net, not the wake path). */
const PUBLISH_TTL_MS = 60_000;
const MAX_BODIES = 5_000;
const MAX_RELEASES = 2_000;
const SERVICE_TTL_MS = 10_000;
const LIST_COPY_TTL_MS = 5_000;
/** Node: a list is read again for clients ahead of it at most this often per service. */
const RELOAD_MS = 100;
const MAX_SERVICES = 10_000;

/** A notifier that tells listeners synchronously before it wakes waiters (the Node pg notifier does). */
type Observable = ReleaseNotifier & { onNotify?: (l: (serviceId: number, gone: boolean) => void) => () => void; onResync?: (l: () => void) => () => void };

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
  /** Workers: a herd's first polls make one read of each (core/single-flight.ts). */
  private flight = new SingleFlight();
  private gone = new Set<number>();
  /** Node: when each service's list was last read again for a client ahead of it (`atLeast`). */
  private reloads = new Map<number, number>();
  private newsParsed = new Map<number, { news: string; parsed: { publishes: PublishEntry[]; contents: ReleaseContent[] } }>();
  readonly cachesPublishes: boolean;

  constructor(notifier: Observable) {
    this.cachesPublishes = typeof notifier.onNotify === "function";
    notifier.onNotify?.((serviceId, gone) => {
      const count = this.notifies.get(serviceId) ?? 0;
      const primed = this.primed?.serviceId === serviceId ? this.primed : undefined;
      this.primed = undefined;
      // The list read for this very notify (announcePublish), with no other notify since it began:
      // current, so the polls this notify wakes answer from memory. Any other notify drops the list.
      if (primed && primed.before === count && !gone) this.publishLists.set(serviceId, { at: Date.now(), list: Promise.resolve(primed.list), value: primed.list });
      else this.publishLists.delete(serviceId);
      this.notifies.set(serviceId, count + 1);
      if (gone) this.forgetService(serviceId);
    });
    // Notifies may have been missed: every list goes, and a read in flight counts as made before a
    // notify; service rows go too (one deleted meanwhile must answer 404, not an empty list).
    notifier.onResync?.(() => {
      for (const id of new Set([...this.publishLists.keys(), ...this.notifies.keys()])) this.notifies.set(id, (this.notifies.get(id) ?? 0) + 1);
      this.publishLists.clear();
      this.services.clear();
    });
  }

  /** Node: the list announcePublish read for the notify it is about to send (see {@link readForNotify}). */
  private primed: PrimedList | undefined;

  /**
   * Node, before a publish's notify: reads the service's publish list and the manifests of its
   * newest releases (kept: they are immutable), noting how many notifies of the service this process
   * had seen when the read began. Hand the result to {@link notifyPrimed}.
   */
  async readForNotify(db: Db, serviceId: number): Promise<PrimedList> {
    const before = this.notifies.get(serviceId) ?? 0;
    const list = await loadPublishes(db, serviceId);
    await Promise.all(newestReleaseIds(list).map((id) => this.contentOf(db, id)));
    return { serviceId, before, list };
  }

  /**
   * Sends the notify with the list read for it: the notifier's listener (run synchronously inside
   * `notify`, before it wakes anyone) installs the list instead of dropping it, so a wake of 10,000
   * polls makes no database read and each answers in its first step after the wake (issue 11). Only
   * when no other notify of the service came since the read began: a list read before another
   * publish's notify could miss that publish. Nothing is installed by a later notify.
   */
  notifyPrimed(notifier: ReleaseNotifier, primed: PrimedList, news?: string): Promise<void> {
    this.primed = primed;
    try {
      return notifier.notify(primed.serviceId, news);
    } finally {
      this.primed = undefined;
    }
  }

  /**
   * A deleted service: its cached row, publish list and copy go, and its id is remembered as gone,
   * so a poll that resolved the service just before the deletion is not held on it, and the next
   * poll of its name reads the database (404, or the service created again under that name).
   */
  forgetService(serviceId: number) {
    for (const [key, hit] of this.services) if (hit.row.id === serviceId) this.services.delete(key);
    this.publishLists.delete(serviceId);
    this.listCopies.delete(serviceId);
    if (this.gone.size >= MAX_SERVICES) this.gone.delete(this.gone.values().next().value!);
    this.gone.add(serviceId);
  }

  /** Whether this process (isolate) has heard that the service was deleted. */
  isGone(serviceId: number): boolean {
    return this.gone.has(serviceId);
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
  async listOf(db: Db, serviceId: number, opts: { now?: number; notifier?: ReleaseNotifier; fresh?: boolean; atLeast?: number } = {}): Promise<{ list: PublishEntry[]; asOf?: number; cached: boolean }> {
    const now = opts.now ?? Date.now();
    const atLeast = opts.atLeast ?? 0;
    // A wake that brought the publish list (Durable Objects) needs no database read.
    const news = this.cachesPublishes ? undefined : opts.notifier?.newsFor?.(serviceId);
    if (news) {
      const { publishes, contents } = this.parsedNews(serviceId, news);
      // Manifests are immutable: the ones the news brought serve every later poll of this isolate too.
      for (const c of contents) this.remember(c);
      if ((publishes[0]?.id ?? 0) >= atLeast) return { list: publishes, cached: false };
    }
    if (this.cachesPublishes) {
      const hit = this.publishLists.get(serviceId);
      if (hit && now - hit.at < PUBLISH_TTL_MS) {
        const list = await hit.list;
        // A client has seen a newer publish than this list (another instance published and its
        // NOTIFY is on its way): read again, at most once per RELOAD_MS per service (a client
        // claiming a publish that does not exist gets no more reads than that); meanwhile the list
        // is a copy (`cached`): good for holding on, not for answering.
        if ((list[0]?.id ?? 0) >= atLeast || hit.at >= now) return { list, cached: false };
        if (now - (this.reloads.get(serviceId) ?? 0) < RELOAD_MS) return { list, cached: true };
        if (this.reloads.size >= MAX_SERVICES) this.reloads.clear();
        this.reloads.set(serviceId, now);
        if (this.publishLists.get(serviceId) === hit) this.publishLists.delete(serviceId);
        return this.listOf(db, serviceId, { ...opts, atLeast: 0 });
      }
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
    const readCopy = async () => {
      const at = Date.now();
      const list = await loadPublishes(db, serviceId);
      if (this.listCopies.size >= MAX_SERVICES) this.listCopies.delete(this.listCopies.keys().next().value!);
      const entry = { at, list };
      this.listCopies.set(serviceId, entry);
      return entry;
    };
    // A fresh read must have started after the caller asked (then it may answer): one started by
    // another request since serves too, so a herd that must be answered at once makes a few reads.
    if (opts.fresh) {
      const got = await this.flight.run(`list:${serviceId}`, () => {
        const c = this.listCopies.get(serviceId);
        return c && c.at >= now ? c : undefined;
      }, readCopy);
      return { list: got.list, asOf: got.at, cached: false };
    }
    const got = await this.flight.run(`list:${serviceId}`, () => {
      const c = this.listCopies.get(serviceId);
      return c && Date.now() - c.at < LIST_COPY_TTL_MS ? c : undefined;
    }, readCopy);
    // Read by another request that started before this one: a copy.
    return { list: got.list, asOf: got.at, cached: got.at < now };
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
    const store = (row: ServiceRow) => {
      if (this.services.size >= MAX_SERVICES) this.services.delete(this.services.keys().next().value!);
      this.services.set(key, { at: now, row });
      return row;
    };
    // A herd of polls of one service makes one read: sharing the pending read on Node, through the
    // cache on Workers (core/single-flight.ts).
    if (!this.cachesPublishes) {
      const peek = () => {
        const h = this.services.get(key);
        return h && Date.now() - h.at < SERVICE_TTL_MS ? h.row : undefined;
      };
      return this.flight.run(`service:${key}`, peek, async () => store(await loadService(db, bizId, app)));
    }
    let load = this.serviceLoads.get(key);
    if (!load) {
      load = loadService(db, bizId, app);
      this.serviceLoads.set(key, load);
      const clear = () => this.serviceLoads.get(key) === load && this.serviceLoads.delete(key);
      load.then(clear, clear);
    }
    return store(await load);
  }

  contentOf(db: Db, releaseId: number): Promise<ReleaseContent | null> {
    // Where the cache outlives a request (Workers), share only loaded values: a promise pending on
    // one request's I/O must not be awaited by another request.
    if (!this.cachesPublishes) {
      const done = this.loaded.get(releaseId);
      if (done) return Promise.resolve(done);
      return this.flight.run(`content:${releaseId}`, () => this.loaded.get(releaseId), async () => {
        const c = await loadReleaseContent(db, releaseId);
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
const newestReleaseIds = (list: PublishEntry[]) => [...new Set(list.map((p) => p.releaseId))].slice(0, NEWS_CONTENTS);

/**
 * Tells every instance that a service was deleted (call after the deletion commits): this process
 * (isolate) forgets it at once, held polls of it end with 404 everywhere the notifier reaches, and
 * other instances forget it (Node: NOTIFY; Workers: other isolates when a poll of theirs held on
 * the service ends, else when their 10 s copy of the service expires).
 */
export async function announceServiceDeleted(deps: Pick<AppDeps, "notifier" | "cacheScope">, serviceId: number): Promise<void> {
  feedCacheFor(deps).forgetService(serviceId);
  await deps.notifier.removeService?.(serviceId);
}

/**
 * Wakes the service's long-polls after a publish (call it after the commit). On Node the publishing
 * process reads the new publish list and manifests once, before the notify, and the notify installs
 * them (`FeedCache.notifyPrimed`): the polls it wakes read nothing. Notifiers that carry news
 * (Durable Objects) get the fresh publish list and the manifests of its newest releases with the
 * notify (`{"publishes":[...],"contents":[...]}`), so the polls they wake need no database read at all.
 */
export async function announcePublish(deps: Pick<AppDeps, "db" | "notifier">, serviceId: number): Promise<void> {
  if ((deps.notifier as Observable).onNotify) {
    const cache = feedCacheFor(deps);
    return cache.notifyPrimed(deps.notifier, await cache.readForNotify(deps.db, serviceId));
  }
  let news: string | undefined;
  if (deps.notifier.wantsNews) {
    const publishes = await loadPublishes(deps.db, serviceId);
    const contents = (await Promise.all(newestReleaseIds(publishes).map((id) => loadReleaseContent(deps.db, id)))).filter((c): c is ReleaseContent => c !== null);
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
