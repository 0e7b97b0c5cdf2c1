/**
 * Retention of what agents report: events older than `eventRetentionDays`, clients not seen for
 * `clientRetentionDays` (with their events), and per client only the newest `eventsPerClient`
 * events. Without it one agent token could grow the database without bound (new uids, an event
 * per second, kept forever). Node prunes on a timer; every runtime also prunes cheaply on writes.
 */
import { sql } from "drizzle-orm";
import { rowsOf } from "../../db/types";
import type { AppDeps, AppLimits, Db } from "./ports";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Rows one prune statement deletes at most, so a first prune of a large backlog never holds long locks. */
export const PRUNE_BATCH = 1000;
/** A write triggers a prune at most this often per database and process (isolate on Workers). */
const PRUNE_ON_WRITE_INTERVAL_MS = 10 * 60 * 1000;

export type Retention = Pick<AppLimits, "eventRetentionDays" | "clientRetentionDays" | "eventsPerClient">;

/**
 * One round of the time-based prune: at most `batch` old events and `batch` unseen clients (and
 * their events). Returns how many rows of each went; call again while either equals `batch`.
 */
export async function pruneOnce(db: Db, r: Retention, now: Date, batch = PRUNE_BATCH): Promise<{ events: number; clients: number }> {
  const eventCutoff = new Date(now.getTime() - r.eventRetentionDays * DAY_MS).toISOString();
  const clientCutoff = new Date(now.getTime() - r.clientRetentionDays * DAY_MS).toISOString();
  const events = rowsOf<{ id: number }>(
    await db.execute(sql`delete from client_events where id in (select id from client_events where created_at < ${eventCutoff}::timestamptz limit ${batch}) returning id`),
  ).length;
  const clients = rowsOf<{ n: number }>(
    await db.execute(sql`
      with gone as (
        delete from clients where id in (
          select id from clients where coalesce(last_heartbeat_at, created_at) < ${clientCutoff}::timestamptz limit ${batch}
        ) returning service_id, uid
      ), events as (
        delete from client_events e using gone where e.service_id = gone.service_id and e.client_uid = gone.uid returning e.id
      )
      select (select count(*) from gone)::int as n`),
  )[0]?.n;
  return { events, clients: Number(clients ?? 0) };
}

/** Prunes until nothing old is left (the Node timer). */
export async function pruneAll(db: Db, r: Retention, now: Date): Promise<{ events: number; clients: number }> {
  const total = { events: 0, clients: 0 };
  for (;;) {
    const round = await pruneOnce(db, r, now);
    total.events += round.events;
    total.clients += round.clients;
    if (round.events < PRUNE_BATCH && round.clients < PRUNE_BATCH) return total;
  }
}

/** Keeps only the newest `keep` events of one client (index `client_events_service_idx`). */
export async function capClientEvents(db: Db, serviceId: number, uid: string, keep: number): Promise<void> {
  await db.execute(sql`
    delete from client_events where service_id = ${serviceId} and client_uid = ${uid} and id < (
      select id from client_events where service_id = ${serviceId} and client_uid = ${uid} order by id desc offset ${keep - 1} limit 1
    )`);
}

const lastPrune = new WeakMap<object, number>();

/**
 * The prune that runs on writes (events, heartbeats), so Workers, which have no timer, keep the
 * same retention: one bounded round at most every 10 minutes per database in this process.
 */
export async function pruneOnWrite(deps: Pick<AppDeps, "db" | "limits" | "cacheScope">, now: Date): Promise<void> {
  const key = deps.cacheScope ?? deps.db;
  const last = lastPrune.get(key);
  if (last !== undefined && now.getTime() - last < PRUNE_ON_WRITE_INTERVAL_MS) return;
  lastPrune.set(key, now.getTime());
  await pruneOnce(deps.db, deps.limits, now);
}

/**
 * Retention settings from the environment (`EDGECONF_EVENT_RETENTION_DAYS`,
 * `EDGECONF_CLIENT_RETENTION_DAYS`, `EDGECONF_EVENTS_PER_CLIENT`); unset keeps the default.
 * Throws an Error naming the variable when one is not a positive number.
 */
export function retentionFromEnv(env: object): Partial<Retention> {
  const out: Partial<Retention> = {};
  const read = (name: string, key: keyof Retention, integer: boolean) => {
    const raw = (env as Record<string, unknown>)[name];
    if (raw === undefined || raw === "") return;
    const n = Number(raw);
    if (!(n > 0) || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new Error(`${name}: must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(raw)}`);
    out[key] = n;
  };
  read("EDGECONF_EVENT_RETENTION_DAYS", "eventRetentionDays", false);
  read("EDGECONF_CLIENT_RETENTION_DAYS", "clientRetentionDays", false);
  read("EDGECONF_EVENTS_PER_CLIENT", "eventsPerClient", true);
  return out;
}
