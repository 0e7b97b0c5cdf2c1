import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createApp } from "../../functions/app";
import { systemActor } from "../../functions/core/audit";
import { ensureFirstAdmin } from "../../functions/core/credentials";
import type { AppDeps } from "../../functions/core/ports";
import { buildNodeRuntime, type NodeConfig, type NodeRuntime } from "../../functions/node/deps";
import { createTestDatabase } from "./database";
import { seedDataDir } from "./template";
import type { TestWorker } from "./worker";

/** `EDGECONF_TEST_RUNTIME=worker` runs the same suites against the Worker in workerd (needs DATABASE_URL). */
export const testRuntime: "node" | "worker" = process.env.EDGECONF_TEST_RUNTIME === "worker" ? "worker" : "node";

/**
 * For a test that reaches into the Node process (api.deps, api.node): true on the Worker runtime,
 * where it is skipped, printing why. `it.skipIf(nodeOnly("reads api.deps.notifier"))("...", ...)`.
 */
export function nodeOnly(reason: string): boolean {
  if (testRuntime !== "worker") return false;
  console.log(`skipped on the worker runtime: ${reason}`);
  return true;
}

/**
 * `EDGECONF_TEST_NODE_SERVER=1`: on the Node runtime, requests go over loopback HTTP to the server the
 * Node entry runs (node/serve.ts: the release long-poll fast path in front of the app) instead of
 * `app.request`, so the same suites check that both answer alike.
 */
const overNodeServer = process.env.EDGECONF_TEST_NODE_SERVER === "1";

/** Serves `app` like the Node entry on a free loopback port; `request` takes a path or a full URL. */
async function nodeServerOf(app: { fetch: (req: Request, env: any) => Response | Promise<Response> }, deps: AppDeps) {
  const { createNodeServer } = await import("../../functions/node/serve");
  const server = createNodeServer(app, deps);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const request = (p: string, init?: RequestInit) => {
    if (!/^https?:\/\//i.test(p)) return fetch(base + p, init);
    // A full URL keeps its origin as the Host the server sees.
    const u = new URL(p);
    const headers = new Headers(init?.headers);
    headers.set("host", u.host);
    return fetch(base + u.pathname + u.search, { ...init, headers });
  };
  const close = () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
  return { base, request, close };
}

/**
 * For a test that needs in-process requests (`app.request`), e.g. to set the source address with a
 * header: true, printing why, on the Worker runtime and with EDGECONF_TEST_NODE_SERVER=1.
 */
export function inProcessOnly(reason: string): boolean {
  if (testRuntime !== "worker" && !overNodeServer) return false;
  console.log(`skipped over a real socket: ${reason}`);
  return true;
}

export type CallResult<T = any> = { status: number; body: T; headers: Headers };

export type TestApi = {
  runtime: "node" | "worker";
  adminToken: string;
  /** Raw request, as a client would send it. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** JSON call with the admin token unless `token` is given (null: no Authorization header). */
  call<T = any>(method: string, path: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string> }): Promise<CallResult<T>>;
  /** The deps behind the app. On the Worker runtime only `db` (a Node connection to the same database), clock, limits and secretKey; blobs and notifier throw there. */
  deps: AppDeps;
  /** Node runtime only; throws on the Worker runtime. */
  node: NodeRuntime;
  /** Worker runtime only: the Worker in workerd (URL, Durable Object waiter counts). */
  worker?: TestWorker;
  /** Base URL when the app listens on a real socket (Worker runtime), else undefined. */
  baseUrl?: string;
  /** Long-polls held right now, for one service or all: the in-process notifier on Node, the Durable Objects on the Worker. */
  waiting(serviceId?: number): Promise<number>;
  /** SHA-256s of the blobs stored for `biz`: the blob folder on Node, the R2 bucket on the Worker. */
  blobKeys(biz: number): Promise<string[]>;
  dataDir: string;
  close(): Promise<void>;
};

/**
 * An app on a fresh database: a new database on DATABASE_URL's server, else PGlite in a temp data
 * folder holding a copy of the migrated template (test/helpers/template.ts; in memory without one).
 */
export async function createTestApi(overrides: Partial<NodeConfig> = {}): Promise<TestApi> {
  if (testRuntime === "worker") return createWorkerTestApi(overrides);
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-test-"));
  const embedded = !database && (await seedDataDir(dataDir)) ? dataDir : "memory://";
  const node = await buildNodeRuntime({ databaseUrl: database?.url, dataDir: database ? dataDir : embedded, blobDir: path.join(dataDir, "blobs"), ...overrides });
  const adminToken = (await ensureFirstAdmin(node.deps.db, systemActor))!;
  const app = createApp(node.deps);
  const served = overNodeServer ? await nodeServerOf(app, node.deps) : undefined;
  const request = served?.request ?? (async (p: string, init?: RequestInit) => app.request(p, init));
  return {
    runtime: "node",
    baseUrl: served?.base,
    adminToken,
    request,
    call: (method, p, body, opts) => callJson(request, adminToken, method, p, body, opts),
    deps: node.deps,
    node,
    async waiting(serviceId?: number) {
      const notifier = node.deps.notifier as Partial<{ waiting(serviceId?: number): number }>;
      if (typeof notifier.waiting !== "function") throw new Error("api.waiting(): this notifier cannot count its waiters");
      return notifier.waiting(serviceId);
    },
    async blobKeys(biz: number) {
      if (overrides.blobs) throw new Error("api.blobKeys(): not available with a blobs override");
      return readdir(path.join(overrides.blobDir ?? path.join(dataDir, "blobs"), String(biz))).catch(() => []);
    },
    dataDir,
    async close() {
      await served?.close();
      await node.close();
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The Worker runtime: a fresh database migrated from Node (the Worker never migrates), the first
 * admin token, then the Worker in workerd (R2 and the Durable Object simulated) over loopback HTTP.
 */
async function createWorkerTestApi(overrides: Partial<NodeConfig>): Promise<TestApi> {
  if (!process.env.DATABASE_URL) throw new Error("EDGECONF_TEST_RUNTIME=worker needs DATABASE_URL (a Postgres server; the Worker reaches it through tools/neon-ws-proxy.ts)");
  const unsupported = (["blobs", "notifier", "blobDir", "databaseUrl"] as const).filter((k) => overrides[k] !== undefined);
  if (unsupported.length) throw new Error(`createTestApi: ${unsupported.join(", ")} cannot be overridden on the worker runtime; skip this test there with nodeOnly(reason)`);
  const { startTestWorker } = await import("./worker");
  const { openNodeDatabase } = await import("../../db/drivers/node");
  const { randomToken } = await import("../../functions/core/crypto");
  const { defaultLimits } = await import("../../functions/core/ports");
  const { rowsOf } = await import("../../db/types");
  const { sql } = await import("drizzle-orm");
  const database = (await createTestDatabase())!;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-test-"));
  // The Worker never migrates: do it here, as `npm run db:migrate` does before a deploy. This
  // node-postgres handle on the same database stays open as `api.deps.db` for tests that look at rows.
  const handle = await openNodeDatabase({ databaseUrl: database.url });
  let adminToken: string;
  let worker: TestWorker;
  const secretKey = overrides.secretKey ?? randomToken(32);
  try {
    await handle.migrate();
    adminToken = (await ensureFirstAdmin(handle.db, systemActor))!;
    worker = await startTestWorker({ databaseUrl: database.url, secretKey, maxFileBytes: overrides.maxFileBytes, vars: retentionVars(overrides.limits) });
  } catch (err) {
    await handle.close();
    await database.drop();
    throw err;
  }
  // A full URL (as app.request takes on Node) keeps its origin: Miniflare's entry rebuilds it from MF-Original-URL.
  const request = (p: string, init?: RequestInit) => {
    if (!/^https?:\/\//i.test(p)) return fetch(worker.url + p, init);
    const u = new URL(p);
    const headers = new Headers(init?.headers);
    headers.set("MF-Original-URL", u.toString());
    return fetch(worker.url + u.pathname + u.search, { ...init, headers });
  };
  const workerOnly = (name: string) => () => {
    throw new Error(`api.${name} is not available on the worker runtime (the app runs in workerd); skip this test there with nodeOnly(reason)`);
  };
  const deps = { db: handle.db, clock: () => new Date(), limits: { ...defaultLimits, ...overrides.limits, ...(overrides.maxFileBytes ? { maxFileBytes: overrides.maxFileBytes } : {}) }, secretKey };
  Object.defineProperty(deps, "blobs", { get: workerOnly("deps.blobs (R2 lives in workerd)"), enumerable: false });
  // The Durable Objects live in workerd: `notify` reaches them as the publish path does; waiters are counted by api.waiting().
  const notifier = {
    notify: async (serviceId: number) => void (await worker.notify(serviceId)),
    wait: () => Promise.reject(new Error("api.deps.notifier.wait is not available on the worker runtime: long-poll through the feed instead")),
  };
  Object.assign(deps, { notifier });
  const api = {
    runtime: "worker" as const,
    adminToken,
    request,
    call: (method: string, p: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string> }) => callJson(request, adminToken, method, p, body, opts),
    deps,
    worker,
    baseUrl: worker.url,
    dataDir,
    async waiting(serviceId?: number) {
      const ids = serviceId !== undefined ? [serviceId] : rowsOf<{ id: number }>(await handle.db.execute(sql`select id from services`)).map((r) => Number(r.id));
      let n = 0;
      for (const id of ids) n += await worker.waiters(id);
      return n;
    },
    async blobKeys(biz: number) {
      return (await worker.blobKeys(`${biz}/`)).map((k) => k.slice(`${biz}/`.length));
    },
    async close() {
      await worker.close();
      await handle.close();
      await database.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  Object.defineProperty(api, "node", { get: workerOnly("node"), enumerable: false });
  return api as unknown as TestApi;
}

/** `limits` retention overrides as the Worker's environment variables (the only limits it reads from its env). */
function retentionVars(limits: NodeConfig["limits"]): Record<string, string> {
  const vars: Record<string, string> = {};
  if (limits?.eventRetentionDays !== undefined) vars.EDGECONF_EVENT_RETENTION_DAYS = String(limits.eventRetentionDays);
  if (limits?.clientRetentionDays !== undefined) vars.EDGECONF_CLIENT_RETENTION_DAYS = String(limits.clientRetentionDays);
  if (limits?.eventsPerClient !== undefined) vars.EDGECONF_EVENTS_PER_CLIENT = String(limits.eventsPerClient);
  return vars;
}

export async function callJson(
  request: (p: string, init?: RequestInit) => Promise<Response>,
  adminToken: string,
  method: string,
  p: string,
  body?: unknown,
  opts: { token?: string | null; headers?: Record<string, string> } = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? adminToken : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let payload: BodyInit | undefined;
  if (body instanceof Uint8Array || typeof body === "string") payload = body as BodyInit;
  else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["content-type"] ??= "application/json";
  }
  const res = await request(p, { method, headers, body: payload });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
