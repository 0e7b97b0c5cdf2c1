import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import path from "node:path";
import * as schema from "../schema/index";
import type { Db } from "../types";

export const migrationsFolder = fileURLToPath(new URL("../migrations", import.meta.url));

export type NodeDatabase = {
  db: Db;
  kind: "pglite" | "postgres";
  migrate(): Promise<void>;
  /** LISTEN on a channel; returns an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
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
  const db = drizzle(pool, { schema }) as unknown as Db;
  let listener: import("pg").Client | undefined;
  const handlers = new Map<string, Set<(p: string) => void>>();
  return {
    db,
    kind: "postgres",
    migrate: () => migrate(drizzle(pool, { schema }), { migrationsFolder }),
    async listen(channel, onPayload) {
      if (!listener) {
        listener = new pg.Client({ connectionString: url });
        listener.on("error", (err) => logConnectionError(err));
        await listener.connect();
        listener.on("notification", (n) => handlers.get(n.channel)?.forEach((h) => h(n.payload ?? "")));
      }
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        await listener.query(`LISTEN "${channel.replace(/"/g, "")}"`);
      }
      set.add(onPayload);
      return async () => {
        set!.delete(onPayload);
      };
    },
    async close() {
      await listener?.end().catch(() => {});
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
  const db = drizzle(client, { schema }) as unknown as Db;
  return {
    db,
    kind: "pglite",
    migrate: () => migrate(drizzle(client, { schema }), { migrationsFolder }),
    async listen(channel, onPayload) {
      const unsub = await client.listen(channel, onPayload);
      return async () => unsub();
    },
    close: () => client.close(),
  };
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
