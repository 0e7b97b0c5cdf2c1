import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { clientEvents, clients, releases, type HookRun } from "../../db/schema/index";
import { invalid, notFound } from "./errors";
import { targetReleaseOf } from "./feed";
import { feedCacheFor } from "./feed-cache";
import { causeFields, log } from "./log";
import { capClientEvents, pruneOnWrite } from "./retention";
import type { AppDeps, Db } from "./ports";
import type { ServiceRow } from "./services";
import { sightingsFor } from "./sightings";

export type ClientStatus = "SUCCESS" | "FAILED" | "PROCESSING";
export type AgentInfo = { uid: string; labels: Record<string, string>; agentVersion?: string; mode?: "pull" | "watch"; ip?: string };
export type EventInput = AgentInfo & {
  releaseId: number | null;
  status: ClientStatus;
  message?: string;
  preHook?: HookRun | null;
  postHook?: HookRun | null;
  filesCount?: number;
  bytesDownloaded?: number;
  timings?: Record<string, number>;
};

/**
 * What one event keeps of the text an agent sends (characters): the start of its message and the
 * end of each hook's output (the agent sends the last 4 KiB). Longer text is cut, never refused.
 */
export const EVENT_MESSAGE_CHARS = 8192;
export const EVENT_OUTPUT_TAIL_CHARS = 8192;
/** Named timings an event keeps (name length and count), so one event stays a few KiB. */
export const EVENT_TIMING_NAME_CHARS = 64;
export const EVENT_TIMINGS = 32;

/** A client is online when it polled or sent a heartbeat within two maximal waits and 30 s. */
export const ONLINE_WINDOW_MS = (2 * 60 + 30) * 1000;
function agentColumns(a: AgentInfo, now: Date) {
  return {
    labels: a.labels,
    ...(a.agentVersion !== undefined ? { agentVersion: a.agentVersion } : {}),
    ...(a.mode !== undefined ? { mode: a.mode } : {}),
    ...(a.ip !== undefined ? { ip: a.ip } : {}),
    lastHeartbeatAt: now,
  };
}

async function upsertClient(db: Db, service: ServiceRow, a: AgentInfo, now: Date, extra: Partial<typeof clients.$inferInsert>) {
  const cols = { ...agentColumns(a, now), ...extra };
  await db
    .insert(clients)
    .values({ bizId: service.bizId, serviceId: service.id, uid: a.uid, ...cols })
    .onConflictDoUpdate({ target: [clients.serviceId, clients.uid], set: cols });
}

/**
 * A long-poll counts as a sign of life. Noted in memory and written with the next batch of sightings
 * (core/sightings.ts), at most every 30 s per client and never on a wake-up: no database round trip
 * on the poll's path.
 */
export function notePoll(deps: Pick<AppDeps, "db" | "cacheScope" | "defer">, service: ServiceRow, a: AgentInfo & { currentReleaseId: number | null }, now: Date) {
  sightingsFor(deps).noteClient(deps, { bizId: service.bizId, serviceId: service.id, uid: a.uid, labels: a.labels, agentVersion: a.agentVersion, mode: a.mode, currentReleaseId: a.currentReleaseId, at: now });
}

type WriteDeps = Pick<AppDeps, "db" | "notifier" | "limits" | "cacheScope" | "scheduler">;

/**
 * Agents' reports a rollout waits for are batched: the evaluation runs this long after a report
 * (later reports within it join the same run), so a wave of many agents costs a few evaluations.
 */
export const ROLLOUT_REPORT_DELAY_MS = 250;

/** Retention must never cost an agent its report: a failed prune is logged, the write stands. */
async function pruneQuietly(deps: WriteDeps, now: Date) {
  await pruneOnWrite(deps, now).catch((err: unknown) => log("WARN", "retention prune failed", causeFields(err)));
}

export async function recordHeartbeat(deps: WriteDeps, service: ServiceRow, a: AgentInfo & { currentReleaseId: number | null }, now: Date) {
  await assertVersionOf(deps.db, service, a.currentReleaseId, "currentReleaseId");
  const target = await targetReleaseOf(deps, service.id, a);
  sightingsFor(deps).forgetClient(service.id, a.uid);
  await upsertClient(deps.db, service, a, now, { currentReleaseId: a.currentReleaseId, targetReleaseId: target });
  await pruneQuietly(deps, now);
}

/** An id an agent reports must be a version of the service it reports on (else 400 naming `field`): no event points at another service's version. */
async function assertVersionOf(db: Db, service: ServiceRow, releaseId: number | null | undefined, field: string) {
  if (releaseId == null) return;
  const [r] = await db.select({ id: releases.id }).from(releases).where(and(eq(releases.id, releaseId), eq(releases.serviceId, service.id)));
  if (!r) throw invalid(field, `version ${releaseId} is not a version of service '${service.name}'`);
}

/**
 * Stores the event and points the client at it; a SUCCESS makes its release the client's current
 * one. The client keeps its newest `limits.eventsPerClient` events (see core/retention.ts).
 */
export async function recordEvent(deps: WriteDeps, service: ServiceRow, e: EventInput, now: Date): Promise<{ id: number }> {
  await assertVersionOf(deps.db, service, e.releaseId, "releaseId");
  const target = await targetReleaseOf(deps, service.id, e);
  sightingsFor(deps).forgetClient(service.id, e.uid);
  const stored = await deps.db.transaction(async (tx) => {
    const [ev] = await tx
      .insert(clientEvents)
      .values({
        bizId: service.bizId,
        serviceId: service.id,
        clientUid: e.uid,
        releaseId: e.releaseId,
        status: e.status,
        message: e.message ?? "",
        preHook: e.preHook ?? null,
        postHook: e.postHook ?? null,
        filesCount: e.filesCount ?? 0,
        bytesDownloaded: e.bytesDownloaded ?? 0,
        timings: e.timings ?? {},
        createdAt: now,
      })
      .returning({ id: clientEvents.id });
    await upsertClient(tx, service, e, now, {
      lastStatus: e.status,
      lastEventId: ev.id,
      targetReleaseId: target,
      ...(e.status === "SUCCESS" ? { currentReleaseId: e.releaseId } : {}),
    });
    await capClientEvents(tx, service.id, e.uid, deps.limits.eventsPerClient);
    return { id: ev.id };
  });
  // A report of a version a rollout carries may move it (the publish list is the feed's cached copy: no query).
  if (deps.scheduler && e.status !== "PROCESSING" && e.releaseId !== null) {
    const list = await feedCacheFor(deps).publishesOf(deps.db, service.id);
    if (list.some((p) => p.rollout !== null && p.releaseId === e.releaseId)) await deps.scheduler.schedule(service.id, new Date(now.getTime() + ROLLOUT_REPORT_DELAY_MS));
  }
  await pruneQuietly(deps, now);
  return stored;
}

type EventRow = typeof clientEvents.$inferSelect;
function eventView(e: EventRow, names: Map<number, string>) {
  return {
    id: e.id,
    uid: e.clientUid,
    release: e.releaseId === null ? null : { id: e.releaseId, name: names.get(e.releaseId) ?? null },
    status: e.status,
    message: e.message,
    preHook: e.preHook ?? null,
    postHook: e.postHook ?? null,
    filesCount: e.filesCount,
    bytesDownloaded: e.bytesDownloaded,
    timings: e.timings,
    createdAt: e.createdAt.toISOString(),
  };
}

async function releaseNames(db: Db, ids: (number | null)[]): Promise<Map<number, string>> {
  const want = [...new Set(ids.filter((x): x is number => x !== null))];
  if (!want.length) return new Map();
  const rows = await db.select({ id: releases.id, name: releases.name }).from(releases).where(inArray(releases.id, want));
  return new Map(rows.map((r) => [r.id, r.name]));
}

export type ClientFilter = { status?: ClientStatus; labels?: Record<string, string>; online?: boolean; limit: number; offset: number };

/** A service's clients with current and target version (target as the feed would answer now) and last event. */
export async function listClients(deps: Pick<AppDeps, "db" | "notifier" | "cacheScope">, service: ServiceRow, f: ClientFilter, now: Date) {
  // Polls this process has noted but not yet written are part of the answer.
  await sightingsFor(deps).flush(deps.db);
  const conds = [eq(clients.serviceId, service.id)];
  if (f.status) conds.push(eq(clients.lastStatus, f.status));
  if (f.labels && Object.keys(f.labels).length) conds.push(sql`${clients.labels} @> ${JSON.stringify(f.labels)}::jsonb`);
  const cutoff = new Date(now.getTime() - ONLINE_WINDOW_MS);
  if (f.online === true) conds.push(sql`${clients.lastHeartbeatAt} >= ${cutoff.toISOString()}::timestamptz`);
  if (f.online === false) conds.push(sql`(${clients.lastHeartbeatAt} is null or ${clients.lastHeartbeatAt} < ${cutoff.toISOString()}::timestamptz)`);
  const where = and(...conds);
  const [{ total }] = await deps.db.select({ total: sql<number>`count(*)::int` }).from(clients).where(where);
  const rows = await deps.db.select().from(clients).where(where).orderBy(clients.uid).limit(f.limit).offset(f.offset);
  const eventIds = rows.map((r) => r.lastEventId).filter((x): x is number => x !== null);
  const events = eventIds.length ? await deps.db.select().from(clientEvents).where(inArray(clientEvents.id, eventIds)) : [];
  const targets = await Promise.all(rows.map((r) => targetReleaseOf(deps, service.id, { uid: r.uid, labels: r.labels })));
  const names = await releaseNames(deps.db, [...rows.map((r) => r.currentReleaseId), ...targets, ...events.map((e) => e.releaseId)]);
  const ref = (id: number | null) => (id === null ? null : { id, name: names.get(id) ?? null });
  const byId = new Map(events.map((e) => [e.id, e]));
  const items = rows.map((r, i) => {
    const ev = r.lastEventId !== null ? byId.get(r.lastEventId) : undefined;
    return {
      uid: r.uid,
      labels: r.labels,
      agentVersion: r.agentVersion,
      mode: r.mode,
      ip: r.ip,
      currentRelease: ref(r.currentReleaseId),
      targetRelease: ref(targets[i]),
      upToDate: r.currentReleaseId === targets[i],
      lastHeartbeatAt: r.lastHeartbeatAt?.toISOString() ?? null,
      online: r.lastHeartbeatAt !== null && r.lastHeartbeatAt >= cutoff,
      lastStatus: r.lastStatus,
      lastEvent: ev ? eventView(ev, names) : null,
      firstSeenAt: r.createdAt.toISOString(),
    };
  });
  return { items, total, limit: f.limit, offset: f.offset };
}

/** One client's events, newest first; `before` pages by event id. */
export async function listClientEvents(db: Db, service: ServiceRow, uid: string, page: { limit: number; before?: number }) {
  await sightingsFor({ db }).flush(db);
  const [client] = await db.select({ id: clients.id }).from(clients).where(and(eq(clients.serviceId, service.id), eq(clients.uid, uid))).limit(1);
  if (!client) throw notFound(`client '${uid}' of service '${service.name}'`);
  const conds = [eq(clientEvents.serviceId, service.id), eq(clientEvents.clientUid, uid)];
  if (page.before) conds.push(lt(clientEvents.id, page.before));
  const rows = await db.select().from(clientEvents).where(and(...conds)).orderBy(desc(clientEvents.id)).limit(page.limit);
  const names = await releaseNames(db, rows.map((r) => r.releaseId));
  return { items: rows.map((r) => eventView(r, names)), nextBefore: rows.length === page.limit ? rows[rows.length - 1].id : null };
}

/** One word for where a client stands, the same on every screen (console table, fleet overview). */
export type ClientState = "applied" | "failed" | "pending" | "offline";

/**
 * A client's state from what `listClients` gives: `offline` when it has not polled or beaten within
 * the online window (what it runs may have changed since); `failed` when its last event is a FAILED
 * for the version it should run (a post-script failure leaves the files in place, so the version can
 * be current and still failed: "applied" means its post-script succeeded, design invariant 5);
 * `applied` when it runs its target; otherwise `pending` (behind, or applying now).
 */
export function clientState(k: { online: boolean; currentRelease: { id: number } | null; targetRelease: { id: number } | null; lastEvent: { status: string; release: { id: number } | null } | null }): ClientState {
  if (!k.online) return "offline";
  const target = k.targetRelease?.id ?? null;
  if (k.lastEvent?.status === "FAILED" && (k.lastEvent.release?.id ?? null) === target) return "failed";
  if ((k.currentRelease?.id ?? null) === target) return "applied";
  return "pending";
}
