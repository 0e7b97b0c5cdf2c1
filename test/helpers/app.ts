import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createApp } from "../../functions/app";
import { systemActor } from "../../functions/core/audit";
import { ensureFirstAdmin } from "../../functions/core/credentials";
import type { AppDeps } from "../../functions/core/ports";
import { buildNodeRuntime, type NodeConfig, type NodeRuntime } from "../../functions/node/deps";
import { createTestDatabase } from "./database";

export type CallResult<T = any> = { status: number; body: T; headers: Headers };

export type TestApi = {
  runtime: "node" | "worker";
  adminToken: string;
  /** Raw request, as a client would send it. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** JSON call with the admin token unless `token` is given (null: no Authorization header). */
  call<T = any>(method: string, path: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string> }): Promise<CallResult<T>>;
  /** Node runtime only: the deps behind the app (database, blobs, notifier). */
  deps: AppDeps;
  node: NodeRuntime;
  dataDir: string;
  close(): Promise<void>;
};

/** An app on a fresh database: PGlite in memory, or a new database on DATABASE_URL's server. */
export async function createTestApi(overrides: Partial<NodeConfig> = {}): Promise<TestApi> {
  const database = await createTestDatabase();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-test-"));
  const node = await buildNodeRuntime({ databaseUrl: database?.url, dataDir: database ? dataDir : "memory://", blobDir: path.join(dataDir, "blobs"), ...overrides });
  const adminToken = (await ensureFirstAdmin(node.deps.db, systemActor))!;
  const app = createApp(node.deps);
  const request = async (p: string, init?: RequestInit) => app.request(p, init);
  return {
    runtime: "node",
    adminToken,
    request,
    call: (method, p, body, opts) => callJson(request, adminToken, method, p, body, opts),
    deps: node.deps,
    node,
    dataDir,
    async close() {
      await node.close();
      await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
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
