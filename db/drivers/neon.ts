/**
 * Postgres through `@neondatabase/serverless` (WebSockets), for Cloudflare Workers.
 * No `node:*` imports: this file is bundled into the Worker.
 *
 * In a Worker, I/O objects cannot outlive the request that made them, so a Pool is opened per
 * request (`openNeonDatabase`) and ended once the response has been sent.
 */
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
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

/** Connections open in this isolate, across its requests (each request has its own pool). */
let openConnections = 0;

/**
 * A Client that opens its connection only while the isolate has fewer than `limit` open: a herd of
 * requests arriving at once (agents reconnecting) then queues here instead of exhausting the
 * server's connections. A waiting request polls with its own timer rather than awaiting a promise
 * another request resolves: a request cancelled while waiting leaves nothing behind.
 */
function gatedClient(limit: number): typeof Client {
  return class GatedClient extends Client {
    connect(callback?: (err?: Error) => void): Promise<void> {
      const run = (async () => {
        for (let delay = 2; openConnections >= limit; delay = Math.min(50, delay * 2)) await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
        openConnections++;
        let counted = true;
        const uncount = () => {
          if (counted) openConnections--;
          counted = false;
        };
        this.once("end", uncount);
        try {
          await super.connect();
        } catch (err) {
          uncount();
          throw err;
        }
      })();
      if (!callback) return run;
      run.then(() => callback(), (err: Error) => callback(err));
      return undefined as unknown as Promise<void>;
    }
  } as unknown as typeof Client;
}

/**
 * `idleTimeoutMillis` is short on purpose: a long-poll waits up to 60 s after its last query, and
 * its connection should go back to the server (Neon's pooler) meanwhile rather than sit idle.
 * `isolateConnections` bounds the connections open at once across all requests of the isolate.
 */
export function openNeonDatabase(url: string, opts: { max?: number; idleTimeoutMillis?: number; isolateConnections?: number } = {}): NeonDatabase {
  const pool = new Pool({ connectionString: url, max: opts.max ?? 4, idleTimeoutMillis: opts.idleTimeoutMillis ?? 2_000 });
  if (opts.isolateConnections) (pool as unknown as { Client: typeof Client }).Client = gatedClient(opts.isolateConnections);
  // A connection cut while idle must not become an unhandled error.
  pool.on("error", () => {});
  const db = drizzle({ client: pool, schema }) as unknown as Db;
  let closed: Promise<void> | undefined;
  return { db, pool, close: () => (closed ??= pool.end().catch(() => {})) };
}
