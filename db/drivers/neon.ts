/**
 * Postgres through `@neondatabase/serverless` (WebSockets), for Cloudflare Workers.
 * No `node:*` imports: this file is bundled into the Worker.
 *
 * In a Worker, I/O objects cannot outlive the request that made them, so a Pool is opened per
 * request (`openNeonDatabase`) and ended once the response has been sent.
 */
import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import * as schema from "../schema/index";
import type { Db } from "../types";

export type NeonDatabase = { db: Db; pool: Pool; close(): Promise<void> };

/**
 * Local development and tests: route the driver's WebSockets through tools/neon-ws-proxy.ts
 * (`proxy` = "127.0.0.1:PORT") in plain ws, without Neon's TLS pipelining. Unset = Neon's defaults.
 */
export function useNeonWsProxy(proxy: string | undefined, webSocketConstructor?: unknown) {
  if (webSocketConstructor) neonConfig.webSocketConstructor = webSocketConstructor as typeof neonConfig.webSocketConstructor;
  if (!proxy) return;
  neonConfig.wsProxy = (host, port) => `${proxy}/v1?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
}

/**
 * `idleTimeoutMillis` is short on purpose: a long-poll waits up to 60 s after its last query, and
 * its connection should go back to the server (Neon's pooler) meanwhile rather than sit idle.
 */
export function openNeonDatabase(url: string, opts: { max?: number; idleTimeoutMillis?: number } = {}): NeonDatabase {
  const pool = new Pool({ connectionString: url, max: opts.max ?? 4, idleTimeoutMillis: opts.idleTimeoutMillis ?? 2_000 });
  // A connection cut while idle must not become an unhandled error.
  pool.on("error", () => {});
  const db = drizzle({ client: pool, schema }) as unknown as Db;
  let closed: Promise<void> | undefined;
  return { db, pool, close: () => (closed ??= pool.end().catch(() => {})) };
}
