/**
 * Dev/test tool: a WebSocket→TCP proxy so the Neon serverless driver (which speaks the Postgres
 * protocol over WebSockets) can reach a local Postgres from Node or from inside workerd.
 *
 * The driver is pointed at it with `neonConfig.wsProxy = (h, p) => "127.0.0.1:PORT/v1?address=h:p"`
 * (see db/drivers/neon.ts). Only allow-listed `host:port` targets are connected to; anything else is
 * refused, so this never becomes an open relay. It listens on loopback only.
 *
 *   npx tsx tools/neon-ws-proxy.ts [--port 5433] [--allow 127.0.0.1:5432,...]
 *   (default allow-list: the host:port of DATABASE_URL)
 */
import net from "node:net";
import { fileURLToPath } from "node:url";
import { WebSocketServer, type WebSocket } from "ws";

/** `connections`: database connections opened through the proxy so far (tests count a herd's). */
export type NeonWsProxy = { port: number; url: string; readonly connections: number; close(): Promise<void> };

/** `host:port` of a postgres URL (port 5432 when absent). */
export function addressOf(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  return `${u.hostname.replace(/^\[|\]$/g, "")}:${u.port || "5432"}`;
}

export async function startNeonWsProxy(opts: { allow: string[]; port?: number; host?: string; log?: (msg: string) => void }): Promise<NeonWsProxy> {
  const allow = new Set(opts.allow.map((a) => a.toLowerCase()));
  const host = opts.host ?? "127.0.0.1";
  const wss = new WebSocketServer({ host, port: opts.port ?? 0, perMessageDeflate: false });
  const sockets = new Set<net.Socket>();
  let connections = 0;
  wss.on("connection", (ws: WebSocket, req) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const address = (url.searchParams.get("address") ?? "").toLowerCase();
    const m = /^(.+):(\d{1,5})$/.exec(address);
    if (!m || !allow.has(address)) {
      opts.log?.(`neon-ws-proxy: refused target ${JSON.stringify(address)} (allowed: ${[...allow].join(", ")})`);
      ws.close(1008, "target not allowed");
      return;
    }
    connections++;
    const tcp = net.connect({ host: m[1], port: Number(m[2]) });
    tcp.setNoDelay(true);
    sockets.add(tcp);
    const pending: Buffer[] = [];
    let connected = false;
    tcp.on("connect", () => {
      connected = true;
      for (const b of pending.splice(0)) tcp.write(b);
    });
    tcp.on("data", (d) => {
      if (ws.readyState === ws.OPEN) ws.send(d);
    });
    const end = () => {
      sockets.delete(tcp);
      tcp.destroy();
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close();
    };
    tcp.on("close", end);
    tcp.on("error", end);
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (connected) tcp.write(buf);
      else pending.push(buf);
    });
    ws.on("close", end);
    ws.on("error", end);
  });
  await new Promise<void>((resolve, reject) => {
    wss.once("listening", resolve);
    wss.once("error", reject);
  });
  const port = (wss.address() as net.AddressInfo).port;
  return {
    port,
    url: `${host}:${port}`,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const allow = (arg("allow") ?? (process.env.DATABASE_URL ? addressOf(process.env.DATABASE_URL) : "127.0.0.1:5432")).split(",").filter(Boolean);
  const proxy = await startNeonWsProxy({ allow, port: Number(arg("port") ?? 5433), log: console.error });
  console.log(`neon-ws-proxy listening on ws://${proxy.url}/v1 → ${allow.join(", ")}`);
  const stop = () => proxy.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
