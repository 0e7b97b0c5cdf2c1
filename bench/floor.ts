/**
 * The floor of `npm run bench:feed`: a bare `node:http` server of the feed's routes, run as its own
 * process like the real server, measured by the same client in the same run. It holds
 * `GET .../release?current=` while `current` is the target, answers every held poll with a manifest
 * built once per publish on `POST .../publishes`, and reports `edgeconf_feed_waiting` on `/metrics`.
 * No auth, no database, no validation: what edgeconf costs above it is ours to remove. Its answers
 * carry the feed protocol's headers (docs/feed-protocol.md: request id, applied wait, no-store, ETag,
 * content length), so the client parses the same bytes from both; with only an ETag its wake read
 * ~150 ms faster at the p50 of 10,000, all of it the client's parsing.
 *
 *   tsx bench/floor.ts         → prints "floor listening on http://127.0.0.1:PORT"
 *   tsx bench/floor.ts --api   → also "floor api listening on http://127.0.0.1:PORT2": the same
 *                                routes on a second listener, as edgeconf's EDGECONF_API_PORT
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

let target = 1;
let body = manifest(target);
const held = new Set<(body: string) => void>();

function manifest(releaseId: number) {
  const file = { path: "/etc/bench", name: "app.conf", sha256: "0".repeat(64), size: 12, fileType: "text", permission: { user: "root", group: "root", privilege: "644" } };
  return JSON.stringify({ biz: 10, app: "service_bench", configType: "file", wait: 60, release: { id: releaseId, name: `V${releaseId}`, publishId: releaseId, publishedAt: new Date().toISOString() }, files: [file], hooks: { pre: null, post: null } });
}

const routes: http.RequestListener = (req, res) => {
  const url = new URL(req.url ?? "/", "http://floor");
  if (req.method === "GET" && url.pathname.endsWith("/release")) {
    const current = Number(url.searchParams.get("current"));
    const requestId = randomUUID();
    const answer = (b: string) => res.writeHead(200, { "x-request-id": requestId, "x-edgeconf-wait": "60", "cache-control": "no-store", etag: `"r${target}"`, "content-type": "application/json", "content-length": Buffer.byteLength(b) }).end(b);
    if (current !== target) return answer(body);
    const wake = (b: string) => {
      clearTimeout(timer);
      held.delete(wake);
      answer(b);
    };
    const timer = setTimeout(() => {
      held.delete(wake);
      res.writeHead(304, { "x-request-id": requestId, "x-edgeconf-wait": "60", "cache-control": "no-store", etag: `"r${target}"` }).end();
    }, Number(url.searchParams.get("wait") ?? 30) * 1000);
    req.socket.once("close", () => {
      clearTimeout(timer);
      held.delete(wake);
    });
    held.add(wake);
    return;
  }
  if (req.method === "POST" && url.pathname.endsWith("/publishes")) {
    req.resume();
    req.once("end", () => {
      body = manifest(++target);
      for (const w of [...held]) w(body);
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ id: target }));
    });
    return;
  }
  if (url.pathname === "/metrics") return res.writeHead(200, { "content-type": "text/plain" }).end(`edgeconf_feed_waiting ${held.size}\n`);
  res.writeHead(404).end();
};

/** A listener of `routes` on a free loopback port; resolves its URL. */
function listen(): Promise<string> {
  const server = http.createServer(routes);
  server.setTimeout(0);
  server.requestTimeout = 0;
  return new Promise((resolve) => server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}
const url = await listen();
if (process.argv.includes("--api")) console.log(`floor api listening on ${await listen()}`);
console.log(`floor listening on ${url}`);
process.on("SIGTERM", () => process.exit(0));
