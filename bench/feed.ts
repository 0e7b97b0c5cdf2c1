/**
 * `npm run bench:feed [-- --n 1000,10000 --db pglite,postgres --runtime node]`
 *
 * Starts the server as its own process (embedded PGlite; Postgres on a throwaway database), holds N
 * long-polls from a second process (node:http, keep-alive agent), publishes, and prints the time from
 * the publish response to each poller receiving its manifest (p50/p99/max), plus the server's RSS
 * before the polls, while they are held, and at its peak during the wake-up. Client and server are
 * separate processes because each side needs N sockets (hard open-files limit 20,000).
 */
import { spawn } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { createTestDatabase } from "../test/helpers/database";
import { startServer } from "../test/helpers/server";
import { startBenchWorker } from "../test/helpers/worker";

const now = () => performance.timeOrigin + performance.now();
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
};

/** A server under test: where it listens, how big it is, how to stop it. */
type Server = { url: string; adminToken: string; rssBytes(): Promise<number>; stop(): Promise<void> };
/**
 * One starter per runtime. `--runtime worker` is for the Workers engineer to add here: start the Worker
 * (Miniflare / unstable_startWorker, not `wrangler dev`) on the given database and return a Server.
 */
const runtimes: Record<string, (db: "pglite" | "postgres", databaseUrl?: string) => Promise<Server>> = {
  node: async (db, databaseUrl) => startServer({ databaseUrl: db === "postgres" ? databaseUrl : undefined }),
  // workerd through Miniflare (R2, Durable Objects simulated), Postgres through the Neon driver + PgBouncer.
  worker: async (db, databaseUrl) => {
    if (db !== "postgres") throw new Error("--runtime worker runs on postgres only (--db postgres)");
    return startBenchWorker(databaseUrl!);
  },
};

async function api(s: Server, method: string, path: string, body?: unknown) {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.adminToken}`, ...(typeof body === "string" ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Long-polls the server holds now, from its Prometheus gauge; falls back to the clients listing (Workers). */
async function waitingOn(s: Server): Promise<number> {
  const res = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.adminToken}` } });
  const m = /^edgeconf_feed_waiting (\d+)$/m.exec(await res.text());
  if (m) return Number(m[1]);
  return (await api(s, "GET", "/api/v1/bizs/10/apps/service_bench/clients?limit=1")).total;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const mb = (b: number) => `${Math.round(b / 1048576)} MB`;
const ms = (x: number) => `${Math.round(x)} ms`;

async function runOne(runtime: string, db: "pglite" | "postgres", n: number) {
  const pg = db === "postgres" ? await createTestDatabase() : undefined;
  if (db === "postgres" && !pg) throw new Error("postgres: set DATABASE_URL");
  const server = await runtimes[runtime](db, pg?.url);
  let stopClient = () => {};
  try {
    const biz = 10;
    const app = "service_bench";
    await api(server, "POST", "/api/v1/bizs", { id: biz, name: "bench" });
    await api(server, "POST", `/api/v1/bizs/${biz}/apps`, { name: app, configType: "file" });
    await api(server, "PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?path=/etc/bench/app.conf`, "workers = 4\n");
    const v1 = await api(server, "POST", `/api/v1/bizs/${biz}/apps/${app}/versions`, { name: "V1" });
    await api(server, "POST", `/api/v1/bizs/${biz}/apps/${app}/publishes`, { versionId: v1.id });
    await api(server, "PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?path=/etc/bench/app.conf`, "workers = 8\n");
    const v2 = await api(server, "POST", `/api/v1/bizs/${biz}/apps/${app}/versions`, { name: "V2" });
    const agent = await api(server, "POST", "/api/v1/credentials", { name: "bench-agent", kind: "agent", bizId: biz, apps: ["service_*"] });
    const rssBefore = await server.rssBytes();

    const client = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--client", "--url", server.url, "--token", agent.token, "--n", String(n), "--path", `/feed/v1/bizs/${biz}/apps/${app}/release`, "--current", String(v1.id)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    client.stdout!.on("data", (d) => (out += d));
    const clientDone = new Promise<void>((r) => client.once("exit", () => r()));
    stopClient = () => client.kill("SIGKILL");
    // Wait until the server holds all N polls (its /metrics gauge); if the count stalls short of N
    // for 10 s, publish anyway: polls not held then still count, answered when they get through.
    let held = 0;
    for (let last = -1, stalledSince = now(); held < n; await new Promise((r) => setTimeout(r, 250))) {
      held = await waitingOn(server);
      if (held !== last) [last, stalledSince] = [held, now()];
      else if (held > 0 && now() - stalledSince > 10_000) break;
    }
    await new Promise((r) => setTimeout(r, 1000));
    const rssHeld = await server.rssBytes();
    let rssPeak = rssHeld;
    const sampler = setInterval(async () => (rssPeak = Math.max(rssPeak, await server.rssBytes())), 50);
    const sent = now();
    await api(server, "POST", `/api/v1/bizs/${biz}/apps/${app}/publishes`, { versionId: v2.id });
    const answered = now();
    await clientDone;
    clearInterval(sampler);
    const result = JSON.parse(out.trim().split("\n").pop()!) as { times: number[]; statuses: Record<string, number>; wrong: number };
    const fromResponse = result.times.map((t) => Math.max(0, t - answered)).sort((a, b) => a - b);
    const fromRequest = result.times.map((t) => t - sent).sort((a, b) => a - b);
    const row = {
      runtime,
      db,
      n,
      "held at publish": held,
      manifests: result.times.length,
      wrong: result.wrong,
      p50: ms(pct(fromResponse, 50)),
      p99: ms(pct(fromResponse, 99)),
      max: ms(fromResponse[fromResponse.length - 1]),
      "max from publish request": ms(fromRequest[fromRequest.length - 1]),
      "publish took": ms(answered - sent),
      "rss before": mb(rssBefore),
      "rss held": mb(rssHeld),
      "rss peak": mb(rssPeak),
    };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    stopClient();
    await server.stop();
    await pg?.drop();
  }
}

/** The poller process: N long-polls; a 304 is polled again (as an agent would); a 200 is timed. */
async function client() {
  const n = Number(arg("n", "1000"));
  const url = `${arg("url", "")}${arg("path", "")}`;
  const current = arg("current", "");
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const times: number[] = [];
  const statuses: Record<string, number> = {};
  let wrong = 0;
  let pending = n;
  const done = new Promise<void>((resolve) => {
    const poll = (i: number): http.ClientRequest => {
      const req = http.get(`${url}?uid=bench-${i}&current=${current}&wait=60`, { agent, headers: { authorization: `Bearer ${arg("token", "")}`, "x-edgeconf-mode": "watch" } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => {
          statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
          if (res.statusCode === 304) return poll(i);
          if (res.statusCode !== 200) return void setTimeout(() => poll(i), 200);
          times.push(now());
          if (String(JSON.parse(body).release?.id) === current) wrong++;
          if (--pending === 0) resolve();
        });
      });
      req.on("error", (err) => {
        statuses[err.message] = (statuses[err.message] ?? 0) + 1;
        setTimeout(() => poll(i), 200);
      });
      return req;
    };
    // Open the polls with at most 200 connections in their handshake at a time, as a fleet of agents
    // arriving over a few seconds would, so the server's accept queue is never flooded.
    let i = 0;
    let connecting = 0;
    const open = () => {
      for (; i < n && connecting < 200; i++) {
        connecting++;
        const req = poll(i);
        req.once("socket", (sock) => {
          const settle = () => {
            connecting--;
            setImmediate(open);
          };
          if (!sock.connecting) return settle();
          sock.once("connect", settle);
          sock.once("error", settle);
        });
      }
    };
    open();
  });
  const progress = setInterval(() => process.stderr.write(`bench client: ${n - pending}/${n} manifests, statuses ${JSON.stringify(statuses)}\n`), 10_000);
  await done;
  clearInterval(progress);
  agent.destroy();
  process.stdout.write(JSON.stringify({ times, statuses, wrong }) + "\n");
}

async function main() {
  const runtime = arg("runtime", "node");
  if (!runtimes[runtime]) throw new Error(`--runtime ${runtime}: not wired in bench/feed.ts yet (have: ${Object.keys(runtimes).join(", ")})`);
  // `--runtime worker` runs Node first on the same database and N, so both rows come from one run.
  const worker = runtime === "worker";
  const ns = arg("n", worker ? "1000" : "1000,10000").split(",").map(Number);
  const dbs = arg("db", worker ? "postgres" : "pglite,postgres").split(",") as ("pglite" | "postgres")[];
  process.env.DATABASE_URL ??= "postgres://postgres@127.0.0.1:5432/postgres";
  const rows = [];
  for (const db of dbs) for (const n of ns) for (const r of worker ? ["node", "worker"] : [runtime]) rows.push(await runOne(r, db, n));
  console.log("\ntime from the publish response to each poller receiving its manifest:");
  console.table(rows);
}

if (process.argv.includes("--client")) await client();
else await main();
