/**
 * The feed's answers: a client's target release as ETag, release id and serialized manifest
 * (docs/feed-protocol.md), built from what core/feed-cache.ts keeps in memory; labels and ETags as
 * agents send them.
 */
import { and, eq } from "drizzle-orm";
import { releaseFiles, releases, services } from "../../db/schema/index";
import { invalid } from "./errors";
import { feedCacheFor, type FeedCache, type PublishEntry, type ReleaseContent } from "./feed-cache";
import { revealKvs } from "./kv-versions";
import type { AppDeps, Db } from "./ports";
import type { ServiceRow } from "./services";
import { resolveTarget, type TargetClient } from "./targeting";

/**
 * `asOf`: epoch ms before the publish list behind the answer was read (absent when it came with a
 * wake or from a cache kept current by notifies); `cached`: read from a copy that may be stale, so
 * fine for holding on, not for answering. `publishId`: the publish behind the answer (a re-publish
 * of the same version has a new one: see `seenPublish` in docs/feed-protocol.md). `listHead`: the
 * newest publish id in the list the answer was computed from (0 when none), so a client that
 * reports a newer one (`currentPublish`) shows the list to be behind.
 */
export type FeedAnswer = { etag: string; releaseId: number | null; publishId: number | null; body: string; asOf?: number; cached: boolean; listHead: number };

export const MAX_WAIT_SECONDS = 60;
export const DEFAULT_WAIT_SECONDS = 30;

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

/** The ETag of a release (`"r376"`), or `"none"` for no release: `releaseIdOfEtag`'s inverse. */
export const etagOf = (releaseId: number | null | undefined) => (releaseId == null ? `"none"` : `"r${releaseId}"`);

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
export async function targetAnswer(deps: Pick<AppDeps, "db" | "notifier" | "cacheScope" | "secretKey">, service: ServiceRow, client: TargetClient, wait: number, opts: { fresh?: boolean; atLeast?: number } = {}): Promise<FeedAnswer> {
  const cache = feedCacheFor(deps);
  const { list, asOf, cached } = await cache.listOf(deps.db, service.id, { notifier: deps.notifier, fresh: opts.fresh, atLeast: opts.atLeast });
  const pub = resolveTarget(list, client);
  const content = pub ? await cache.contentOf(deps.db, pub.releaseId) : null;
  const key = bodyKey(service, pub, wait);
  // A kv release's secrets are decrypted into the body only (kept in memory, never in the database or the news).
  const kvs = pub && content && service.configType === "kv" && !cache.hasBody(key) ? await revealKvs(deps.secretKey, service.id, content.kvs ?? []) : undefined;
  return { ...answerOf(cache, service, wait, pub, content, kvs), asOf, cached, listHead: list[0]?.id ?? 0 };
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
  // A wake answers thousands of polls of one service alike: the same answer object, not one each.
  const last = lastAnswers.get(cache);
  if (last && last.list === list && last.pub === pub && last.service === service && last.wait === wait) return last.answer;
  const content = pub ? cache.contentNow(pub.releaseId) : null;
  if (content === undefined || (pub && service.configType === "kv" && !cache.hasBody(bodyKey(service, pub, wait)))) return undefined;
  const answer: FeedAnswer = { ...answerOf(cache, service, wait, pub, content), cached: false, listHead: list[0]?.id ?? 0 };
  lastAnswers.set(cache, { list, pub, service, wait, answer });
  return answer;
}

/**
 * Per feed cache, the last answer `cachedAnswer` built and what it was built from. A list is replaced,
 * never changed, when a notify comes, and manifests are immutable: the same list, publish, service row
 * and wait give the same answer. Callers must not change it.
 */
const lastAnswers = new WeakMap<FeedCache, { list: readonly PublishEntry[]; pub: PublishEntry | null; service: ServiceRow; wait: number; answer: FeedAnswer }>();

const bodyKey = (service: ServiceRow, pub: PublishEntry | null, wait: number) => `${service.id}:${service.name}:${service.configType}:${pub?.id ?? 0}:${wait}`;

function answerOf(cache: FeedCache, service: ServiceRow, wait: number, pub: PublishEntry | null, content: ReleaseContent | null, kvs?: { key: string; type: string; value: string }[]) {
  const key = bodyKey(service, pub, wait);
  if (!pub || !content) return { etag: etagOf(null), releaseId: null, publishId: null, body: cache.body(key, () => JSON.stringify(manifest(service, wait, null, null))) };
  return { etag: etagOf(content.id), releaseId: content.id, publishId: pub.id, body: cache.body(key, () => JSON.stringify(manifest(service, wait, pub, content, kvs))) };
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
