import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import { sql } from "drizzle-orm";
import path from "node:path";
import * as schema from "../schema/index";
import type { Db } from "../types";

export const migrationsFolder = fileURLToPath(new URL("../migrations", import.meta.url));

export type NodeDatabase = {
  db: Db;
  kind: "pglite" | "postgres";
  /**
   * This handle's tag (a random UUID), set on every transaction it runs as `edgeconf.origin`: the
   * NOTIFYs the database's triggers send on commit (db/migrations/0006_notify_triggers.sql) carry it,
   * so the notifier on this handle knows its own news when it comes back.
   */
  origin: string;
  migrate(): Promise<void>;
  /** LISTEN on a channel; returns an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Postgres: runs `fn(lostAt)` each time the LISTEN connection, lost at `lostAt`, is open again
   * (it reconnects by itself, 0.1 s then doubling up to 5 s between tries): notifications sent
   * meanwhile were not received. PGlite's LISTEN is in-process and is never lost.
   */
  onListenGap?(fn: (lostAt: Date) => void): () => void;
  close(): Promise<void>;
};

/** Postgres through node-postgres when `databaseUrl` is set, else PGlite in `dataDir` (memory when dataDir is "memory://"). */
export async function openNodeDatabase(opts: { databaseUrl?: string; dataDir?: string }): Promise<NodeDatabase> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl) : openPglite(opts.dataDir ?? "memory://");
}

async function openPostgres(url: string): Promise<NodeDatabase> {
  const { default: pg } = await import("pg");
  const { drizzle } = await import("drizzle-orm/node-postgres");
  const { migrate } = await import("drizzle-orm/node-postgres/migrator");
  const pool = new pg.Pool({ connectionString: url, max: Number(process.env.EDGECONF_DB_POOL ?? 10) });
  // An idle connection can be cut by the server (restart, database dropped); the pool replaces it.
  pool.on("error", (err) => logConnectionError(err));
  const origin = randomUUID();
  const db = taggingTransactions(drizzle(pool, { schema }) as unknown as Db, origin);
  const { pgListenConnection } = await import("./pg-listen");
  const listening = pgListenConnection(pg.Client, url, {
    checkSeconds: Number(process.env.EDGECONF_LISTEN_CHECK_SECONDS ?? 30) || 30,
    logError: logConnectionError,
    logLine: (level, msg, fields) =>
      console.error(`time=${new Date().toISOString()} level=${level} msg=${JSON.stringify(msg)}${Object.entries(fields).map(([k, v]) => ` ${k}=${v}`).join("")}`),
  });
  return {
    db,
    kind: "postgres",
    origin,
    migrate: () => migrate(drizzle(pool, { schema }), { migrationsFolder }),
    listen: (channel, onPayload) => listening.listen(channel, onPayload),
    onListenGap: (fn) => listening.onGap(fn),
    async close() {
      await listening.close();
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string): Promise<NodeDatabase> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  if (dataDir !== "memory://") mkdirSync(path.resolve(dataDir), { recursive: true });
  // A small shared_buffers keeps the embedded database ~110 MB lighter; its data is small.
  const fs = dataDir === "memory://" ? undefined : await privateNodeFs(path.resolve(dataDir, "pg"));
  const client = await PGlite.create({ fs, postgresqlconf: ["shared_buffers=16MB"] });
  const origin = randomUUID();
  const db = taggingTransactions(drizzle(client, { schema }) as unknown as Db, origin);
  return {
    db,
    kind: "pglite",
    origin,
    migrate: () => migrate(drizzle(client, { schema }), { migrationsFolder }),
    async listen(channel, onPayload) {
      const unsub = await client.listen(channel, onPayload);
      return async () => unsub();
    },
    close: () => client.close(),
  };
}

/**
 * `db`, whose transactions first set `edgeconf.origin` to `origin` for their own duration
 * (`set_config(..., true)`: local to the transaction, so a pooler that hands the connection to
 * another client next (PgBouncer in transaction mode) never carries it over). One round trip more
 * per transaction; statements outside a transaction carry no origin, so the triggers' news of them
 * comes back to this handle too (harmless: one more wake).
 */
function taggingTransactions(db: Db, origin: string): Db {
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn, config) =>
    transaction(async (tx) => {
      await tx.execute(sql`select set_config('edgeconf.origin', ${origin}, true)`);
      return fn(tx);
    }, config)) as Db["transaction"];
  return db;
}

/**
 * PGlite's Node filesystem, with every mode it sets kept owner-only. Its emscripten layer creates
 * files through Node (so the process umask applies) but then `chmod`s them to the modes Postgres
 * asked for inside the wasm, which knows no umask: ~970 files came out 0666. Masking the group and
 * other bits of those chmods keeps the database's files 0600 and its folders 0700.
 */
async function privateNodeFs(dir: string) {
  const { NodeFS } = await import("@electric-sql/pglite/nodefs");
  type SetAttr = (arg: unknown, node: unknown, attr: { mode?: number }, ...rest: unknown[]) => void;
  type EmscriptenModule = { NODEFS: { doSetAttr: SetAttr } };
  type InitArgs = Parameters<InstanceType<typeof NodeFS>["init"]>;
  class PrivateNodeFS extends NodeFS {
    override async init(pg: InitArgs[0], opts: InitArgs[1]) {
      const out = await super.init(pg, opts);
      const preRun = (out.emscriptenOpts.preRun ?? []) as ((m: EmscriptenModule) => void)[];
      preRun.push((m) => {
        const setAttr = m.NODEFS.doSetAttr;
        m.NODEFS.doSetAttr = (arg, node, attr, ...rest) => setAttr.call(m.NODEFS, arg, node, attr.mode === undefined ? attr : { ...attr, mode: attr.mode & ~0o077 }, ...rest);
      });
      out.emscriptenOpts.preRun = preRun;
      return out;
    }
  }
  return new PrivateNodeFS(dir);
}

function logConnectionError(err: Error & { code?: string }) {
  if (err.code === "57P01") return; // terminated by administrator: expected when a database is dropped
  // JSON.stringify escapes quotes and control characters, so the message stays one logfmt value.
  console.error(`time=${new Date().toISOString()} level=WARN msg="postgres connection error" error=${JSON.stringify(err.message)}`);
}
