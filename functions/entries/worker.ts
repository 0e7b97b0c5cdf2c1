/**
 * Cloudflare Workers entry (wrangler.toml `main`): the same `createApp` as Node, with
 *   - Postgres through @neondatabase/serverless, a Pool per request, ended once the response is
 *     made and the request's deferred writes are done;
 *   - blobs in the R2 binding BLOBS;
 *   - long-poll wake-up through the Durable Object RELEASE_WAITERS, one per service.
 * It never migrates: `npm run db:migrate` runs before `npm run deploy`.
 * No `node:*` imports anywhere below this file.
 */
import { openNeonDatabase, useNeonWsProxy, type NeonDatabase } from "../../db/drivers/neon";
import { createApp } from "../app";
import { durableObjectNotifier, durableObjectScheduler, type DurableObjectNamespaceLike } from "../adapters/durable-object-notifier";
import { ReleaseWaiters as Waiters } from "../adapters/release-waiters-do";
import { evaluateServiceRollouts } from "../core/rollouts";
import { r2BlobStore, type R2BucketLike } from "../adapters/r2-blobs";
import { defaultLimits, type AppDeps, type Db } from "../core/ports";
import { retentionFromEnv } from "../core/retention";

/**
 * The waiters object of a service, whose alarm judges that service's rollouts (design.md "Rollouts":
 * a Durable Object alarm on Workers). Inside the object, notifies and re-arms for its own service go
 * to itself directly (a request to itself would wait on itself).
 */
export class ReleaseWaiters extends Waiters {
  constructor(
    state: unknown,
    private readonly env: WorkerEnv,
  ) {
    super(state, env);
  }

  protected override async onAlarm(serviceId: number): Promise<void> {
    const env = this.env;
    useNeonWsProxy(env.NEON_WS_PROXY);
    const database = openNeonDatabase(env.DATABASE_URL, { isolateConnections: 2 });
    const remote = durableObjectNotifier(env.RELEASE_WAITERS);
    const others = durableObjectScheduler(env.RELEASE_WAITERS);
    const deps: AppDeps = {
      db: database.db,
      blobs: r2BlobStore(env.BLOBS),
      notifier: {
        ...remote,
        notify: async (id, news) => {
          if (id !== serviceId) return remote.notify(id, news);
          this.wake(news ?? "", news ? ((JSON.parse(news) as { publishes: { id: number }[] }).publishes[0]?.id ?? 0) : 0);
        },
      },
      scheduler: { schedule: (id, at) => (id === serviceId ? this.arm(id, at.getTime()) : others.schedule(id, at)) },
      clock: () => new Date(),
      limits: { ...defaultLimits, ...retentionFromEnv(env) },
      secretKey: env.EDGECONF_SECRET_KEY,
    };
    try {
      await evaluateServiceRollouts(deps, serviceId);
    } finally {
      await database.close();
    }
  }
}

export type WorkerEnv = {
  /** Secret: the Postgres (Neon) connection string. */
  DATABASE_URL: string;
  /** Secret: the server key from which webhook secrets are derived. */
  EDGECONF_SECRET_KEY: string;
  BLOBS: R2BucketLike;
  RELEASE_WAITERS: DurableObjectNamespaceLike;
  /** Largest uploaded config file, bytes (default 32 MiB: a Worker holds an upload in its 128 MB of memory). */
  EDGECONF_MAX_FILE_BYTES?: string;
  /** Retention (core/retention.ts): days of events kept (default 30), days a client may go unseen (30), events kept per client (100). */
  EDGECONF_EVENT_RETENTION_DAYS?: string;
  EDGECONF_CLIENT_RETENTION_DAYS?: string;
  EDGECONF_EVENTS_PER_CLIENT?: string;
  /** Postgres connections one isolate may have open at once, across its requests (default 20); a herd of requests queues for them. */
  EDGECONF_DB_CONNECTIONS?: string;
  /** Local development only: "127.0.0.1:PORT" of tools/neon-ws-proxy.ts. Never set in production. */
  NEON_WS_PROXY?: string;
};

type ExecutionContextLike = { waitUntil(p: Promise<unknown>): void; passThroughOnException?(): void };

/** Per-request state the deps factory fills in, read back by `fetch` to end the pool. */
type Scope = { startedAt: number; database?: RequestDatabase; deferred: Promise<unknown>[] };

/**
 * The request's Postgres, opened on first use. `idle()` ends its pool before a long-poll waits, so a
 * held poll takes no connection while it waits (a herd of held polls would exhaust the server's
 * connections); a use after that (a woken poll reading a new manifest) opens a new one.
 */
type RequestDatabase = { db: Db; idle(): void; close(): Promise<void> };
function requestDatabase(url: string, isolateConnections: number): RequestDatabase {
  let current: NeonDatabase | undefined;
  const closing: Promise<void>[] = [];
  const open = () => (current ??= openNeonDatabase(url, { isolateConnections }));
  const db = new Proxy({} as Db, {
    get(_target, prop) {
      const real = open().db as unknown as Record<PropertyKey, unknown>;
      const value = real[prop];
      return typeof value === "function" ? value.bind(real) : value;
    },
  });
  const idle = () => {
    if (current) closing.push(current.close());
    current = undefined;
  };
  return {
    db,
    idle,
    async close() {
      idle();
      await Promise.allSettled(closing);
    },
  };
}
const SCOPE = Symbol("edgeconf.scope");
type ScopedEnv = WorkerEnv & { [SCOPE]: Scope };

const WORKER_DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024;
/** Postgres connections one isolate opens at once, across its requests (EDGECONF_DB_CONNECTIONS). */
const DEFAULT_ISOLATE_CONNECTIONS = 20;

function configError(env: Partial<WorkerEnv>): string | null {
  if (!env.DATABASE_URL) return "DATABASE_URL is not set (wrangler secret put DATABASE_URL)";
  if (!env.EDGECONF_SECRET_KEY || env.EDGECONF_SECRET_KEY.length < 16) return "EDGECONF_SECRET_KEY is not set or shorter than 16 characters (wrangler secret put EDGECONF_SECRET_KEY)";
  if (!env.BLOBS) return "the R2 binding BLOBS is missing (wrangler.toml [[r2_buckets]])";
  if (!env.RELEASE_WAITERS) return "the Durable Object binding RELEASE_WAITERS is missing (wrangler.toml [[durable_objects.bindings]])";
  try {
    retentionFromEnv(env);
  } catch (err) {
    return `${(err as Error).message} (wrangler.toml [vars])`;
  }
  return null;
}

/** One cache scope per database per isolate: release manifests are immutable, so requests share them. */
const cacheScopes = new Map<string, object>();
function cacheScopeOf(databaseUrl: string): object {
  let scope = cacheScopes.get(databaseUrl);
  if (!scope) cacheScopes.set(databaseUrl, (scope = {}));
  return scope;
}

const app = createApp((c): AppDeps => {
  const env = c.env as unknown as ScopedEnv;
  const scope = env[SCOPE];
  const database = (scope.database ??= requestDatabase(env.DATABASE_URL, Number(env.EDGECONF_DB_CONNECTIONS) || DEFAULT_ISOLATE_CONNECTIONS));
  const maxFileBytes = Number(env.EDGECONF_MAX_FILE_BYTES) || WORKER_DEFAULT_MAX_FILE_BYTES;
  return {
    db: database.db,
    idle: database.idle,
    blobs: r2BlobStore(env.BLOBS),
    notifier: durableObjectNotifier(env.RELEASE_WAITERS, scope.startedAt),
    scheduler: durableObjectScheduler(env.RELEASE_WAITERS),
    clock: () => new Date(),
    limits: { ...defaultLimits, ...retentionFromEnv(env), maxFileBytes },
    secretKey: env.EDGECONF_SECRET_KEY,
    cacheScope: cacheScopeOf(env.DATABASE_URL),
    // Batched writes (client sightings, token uses) run after the response, before the pool ends.
    defer: (work) => void scope.deferred.push(work.catch(() => {})),
  };
});

/**
 * Ends `database` once the deferred writes are done. The response goes out as the app made it: no
 * body reads the database (they are strings or R2 streams), and piping each body through a stream
 * of our own cost a wake of 1,000 held polls about a third of its time (bench:feed, issue 11).
 */
function releaseAfter(res: Response, database: RequestDatabase, deferred: Promise<unknown>[], ctx: ExecutionContextLike): Response {
  ctx.waitUntil(Promise.allSettled(deferred).then(() => database.close()));
  return res;
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContextLike): Promise<Response> {
    const problem = configError(env);
    if (problem) return Response.json({ error: { code: "internal", message: `worker misconfigured: ${problem}` } }, { status: 503 });
    useNeonWsProxy(env.NEON_WS_PROXY);
    const scope: Scope = { startedAt: Date.now(), deferred: [] };
    const scoped = Object.assign(Object.create(env) as WorkerEnv, { [SCOPE]: scope }) as ScopedEnv;
    const res = await app.fetch(request, scoped, ctx as never);
    if (scope.database) return releaseAfter(res, scope.database, scope.deferred, ctx);
    if (scope.deferred.length) ctx.waitUntil(Promise.allSettled(scope.deferred));
    return res;
  },
};
