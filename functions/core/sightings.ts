import { causeFields, log } from "./log";
import { sql } from "drizzle-orm";
import type { AppDeps, Db } from "./ports";

/** A long-poll seen from a client: written to its `clients` row in the next batch. */
export type ClientSighting = {
  bizId: number;
  serviceId: number;
  uid: string;
  labels: Record<string, string>;
  agentVersion?: string;
  mode?: "pull" | "watch";
  currentReleaseId: number | null;
  at: Date;
};

/** A client's row is refreshed by its polls at most this often; a wake of 10,000 waiters writes nothing. */
const CLIENT_WRITE_INTERVAL_MS = 30_000;
/** `lastUsedAt` of a token is written at most this often (issue 10 item 6). */
const TOKEN_WRITE_INTERVAL_MS = 60_000;
/**
 * Pending sightings are written in batches of at most `BATCH_ROWS`, one batch per `FLUSH_AFTER_MS`:
 * a herd of 10,000 new clients is written over 20 s rather than in one burst, since on PGlite a
 * write blocks the event loop that is answering the herd.
 */
const FLUSH_AFTER_MS = 1_000;
const BATCH_ROWS = 500;
const MAX_REMEMBERED = 200_000;

/**
 * Client sightings and token uses, buffered per process (per isolate on Workers) and written in
 * batches off the request path: one multi-row upsert per batch instead of one round trip per poll, so
 * a fleet of 10,000 reconnecting at once costs a handful of statements. Where timers outlive a request
 * (Node) a timer flushes; on Workers the request that finds a batch due hands its write to `defer`
 * (waitUntil). A failed batch is logged and its entries noted again by the next polls.
 */
export class Sightings {
  private clients = new Map<string, ClientSighting>();
  private tokens = new Map<number, Date>();
  private clientWritten = new Map<string, number>();
  private tokenWritten = new Map<number, number>();
  private firstPendingAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private flushing: Promise<void> = Promise.resolve();

  /** Notes a poll; `deps.db` writes it with the next batch unless this client was written within 30 s. */
  noteClient(deps: Pick<AppDeps, "db" | "defer">, s: ClientSighting) {
    const key = clientKey(s.serviceId, s.uid);
    const last = this.clientWritten.get(`${key}\u0000${s.currentReleaseId ?? ""}`);
    if (last !== undefined && s.at.getTime() - last < CLIENT_WRITE_INTERVAL_MS) return;
    this.clients.set(key, s);
    this.schedule(deps, s.at.getTime());
  }

  /** Notes a use of a token; written with the next batch at most once a minute per token. */
  noteToken(deps: Pick<AppDeps, "db" | "defer">, credentialId: number, at: Date) {
    const last = this.tokenWritten.get(credentialId);
    if (last !== undefined && at.getTime() - last < TOKEN_WRITE_INTERVAL_MS) return;
    if (this.tokenWritten.size >= MAX_REMEMBERED) this.tokenWritten.clear();
    this.tokenWritten.set(credentialId, at.getTime());
    this.tokens.set(credentialId, at);
    this.schedule(deps, at.getTime());
  }

  /** Drops a pending sighting that a fresher write (event, heartbeat) of the same client supersedes. */
  forgetClient(serviceId: number, uid: string) {
    this.clients.delete(clientKey(serviceId, uid));
  }

  private schedule(deps: Pick<AppDeps, "db" | "defer">, now: number) {
    if (!this.firstPendingAt) this.firstPendingAt = now;
    if (deps.defer) {
      if (now - this.firstPendingAt >= FLUSH_AFTER_MS) deps.defer(this.flush(deps.db, BATCH_ROWS));
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush(deps.db, BATCH_ROWS).then(() => {
          if (this.clients.size + this.tokens.size > 0) this.schedule(deps, Date.now());
        });
      }, FLUSH_AFTER_MS);
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  /**
   * Writes what is pending, everything or the oldest `limit` client rows (and waits for a batch
   * already being written); never throws. Readers (the clients listing) flush everything first.
   */
  flush(db: Db, limit = Infinity): Promise<void> {
    this.firstPendingAt = 0;
    const batch: ClientSighting[] = [];
    for (const [key, s] of this.clients) {
      if (batch.length >= limit) break;
      batch.push(s);
      this.clients.delete(key);
    }
    if (this.clients.size) this.firstPendingAt = Date.now();
    const tokens = [...this.tokens];
    this.tokens.clear();
    const previous = this.flushing;
    this.flushing = previous.then(() => this.write(db, batch, tokens));
    return this.flushing;
  }

  private async write(db: Db, batch: ClientSighting[], tokens: [number, Date][]) {
    try {
      for (let i = 0; i < batch.length; i += BATCH_ROWS) await upsertIsolated(db, batch.slice(i, i + BATCH_ROWS));
      if (this.clientWritten.size + batch.length > MAX_REMEMBERED) this.clientWritten.clear();
      for (const s of batch) this.clientWritten.set(`${clientKey(s.serviceId, s.uid)}\u0000${s.currentReleaseId ?? ""}`, s.at.getTime());
      if (tokens.length) {
        const values = sql.join(
          tokens.map(([id, at]) => sql`(${id}::int, ${at.toISOString()}::timestamptz)`),
          sql`, `,
        );
        await db.execute(sql`update credentials c set last_used_at = greatest(c.last_used_at, v.t) from (values ${values}) as v(id, t) where c.id = v.id`);
      }
    } catch (err) {
      for (const [id] of tokens) this.tokenWritten.delete(id);
      log("WARN", "writing client sightings failed", { clients: batch.length, tokens: tokens.length, ...causeFields(err) });
    }
  }
}

/**
 * Writes a batch; if the database refuses it, each row alone, dropping (with one line) the rows it
 * still refuses: one agent's odd value must never keep the other hosts' sightings from being recorded.
 */
async function upsertIsolated(db: Db, rows: ClientSighting[]) {
  try {
    await upsertSightings(db, rows);
  } catch (err) {
    if (rows.length === 1) throw err;
    let dropped = 0;
    for (const row of rows) await upsertSightings(db, [row]).catch(() => dropped++);
    if (dropped) log("WARN", "client sightings refused by the database were dropped", { rows: dropped, ...causeFields(err) });
  }
}

const clientKey = (serviceId: number, uid: string) => `${serviceId}\u0000${uid}`;

/**
 * One insert per shape of row (with or without agent version, with or without mode), so a column a
 * poll did not send keeps its stored value instead of being reset to its default. Each column goes
 * as one array parameter (`unnest`): a batch of 500 rows is a statement of 6–8 parameters, cheap
 * to build and to plan (on PGlite the planning blocks the event loop that answers the herd).
 */
async function upsertSightings(db: Db, rows: ClientSighting[]) {
  const shapes = new Map<string, ClientSighting[]>();
  for (const r of rows) {
    const shape = `${r.agentVersion !== undefined}${r.mode !== undefined}`;
    const group = shapes.get(shape);
    if (group) group.push(r);
    else shapes.set(shape, [r]);
  }
  for (const group of shapes.values()) {
    const withVersion = group[0].agentVersion !== undefined;
    const withMode = group[0].mode !== undefined;
    const column = <T>(pick: (r: ClientSighting) => T) => sql.param(group.map(pick));
    await db.execute(sql`
      insert into clients (biz_id, service_id, uid, labels, current_release_id, last_heartbeat_at${withVersion ? sql`, agent_version` : sql``}${withMode ? sql`, mode` : sql``})
      select b, s, u, l::jsonb, c, t${withVersion ? sql`, v` : sql``}${withMode ? sql`, m` : sql``}
      from unnest(${column((r) => r.bizId)}::int[], ${column((r) => r.serviceId)}::int[], ${column((r) => r.uid)}::text[], ${column((r) => JSON.stringify(r.labels))}::text[],
        ${column((r) => r.currentReleaseId)}::int[], ${column((r) => r.at.toISOString())}::timestamptz[]${withVersion ? sql`, ${column((r) => r.agentVersion!)}::text[]` : sql``}${withMode ? sql`, ${column((r) => r.mode!)}::text[]` : sql``})
        as x(b, s, u, l, c, t${withVersion ? sql`, v` : sql``}${withMode ? sql`, m` : sql``})
      on conflict (service_id, uid) do update set
        labels = excluded.labels,
        current_release_id = excluded.current_release_id,
        last_heartbeat_at = greatest(clients.last_heartbeat_at, excluded.last_heartbeat_at)${withVersion ? sql`, agent_version = excluded.agent_version` : sql``}${withMode ? sql`, mode = excluded.mode` : sql``}`);
  }
}

const all = new WeakMap<object, Sightings>();

/** The sightings buffer of these deps: per database on Node, per `cacheScope` on Workers. */
export function sightingsFor(deps: Pick<AppDeps, "db" | "cacheScope">): Sightings {
  const key = deps.cacheScope ?? deps.db;
  let s = all.get(key);
  if (!s) all.set(key, (s = new Sightings()));
  return s;
}
