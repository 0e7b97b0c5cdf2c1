/**
 * `npm run bench:feed [-- --n 1000,10000 --db pglite,postgres --runtime node --repeat 1 --api-port on]`
 *
 * For each N, `--repeat K` rounds of: the floor (bench/floor.ts, a bare node:http server of the same
 * routes), then each server as its own process (embedded PGlite; Postgres on a throwaway database).
 * A second process opens N long-polls of N distinct uids at once (node:http, keep-alive agent).
 * Printed per row, each figure the median of the K rounds beside the median of its K ratios to the
 * floor of the same round: the herd (time from the client's start until the server holds all N, and
 * errors), the wake (publish request → each poller holding its manifest, p50/p99), how long the
 * publish took to answer, RSS per held poll; and, each round on a fresh server (the floor too), a
 * publish made while half the herd is held (median and slowest answer, and whether all N got the
 * new manifest). Every publish goes on a new connection, as the CLI makes it, to the API's own
 * listener unless `--api-port off`. Client and server are
 * separate processes because each side needs N sockets (hard open-files limit 20,000).
 */
import { spawn } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { createTestDatabase } from "../test/helpers/database";
import { startServer } from "../test/helpers/server";
import { startBenchWorker } from "../test/helpers/worker";
import { causeText } from "../functions/core/log";
import { startDurableObjectFloor } from "./do-floor";

const now = () => performance.timeOrigin + performance.now();
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
};

/**
 * A server under test: where it listens, how big it is, how to stop it; `waiting(serviceId)`: its
 * held-polls gauge where /metrics has none (the Worker's polls are held by Durable Objects).
 */
type Server = { url: string; apiUrl: string; adminToken: string; rssBytes(): Promise<number>; waiting?(serviceId: number): Promise<number>; stop(): Promise<void> };
/**
 * One starter per runtime. `--runtime worker` is for the Workers engineer to add here: start the Worker
 * (Miniflare / unstable_startWorker, not `wrangler dev`) on the given database and return a Server.
 */
/**
 * `--api-port on` (the default): the Node server's console and admin API on their own listener
 * (EDGECONF_API_PORT, as README "Two listeners" advises for a fleet), the floor likewise; every
 * publish, seed and gauge read goes there, the polls to PORT. `off`: one listener for everything.
 */
const apiPort = arg("api-port", "on") !== "off";
const runtimes: Record<string, (db: "pglite" | "postgres", databaseUrl?: string) => Promise<Server>> = {
  node: async (db, databaseUrl) => startServer({ databaseUrl: db === "postgres" ? databaseUrl : undefined, env: apiPort ? { EDGECONF_API_PORT: "0" } : {} }),
  // workerd through Miniflare (R2, Durable Objects simulated), Postgres through the Neon driver + PgBouncer.
  worker: async (db, databaseUrl) => {
    if (db !== "postgres") throw new Error("--runtime worker runs on postgres only (--db postgres)");
    const w = await startBenchWorker(databaseUrl!, { pgbouncer: arg("pgbouncer", "on") !== "off" });
    return { ...w, apiUrl: w.url };
  },
};

const CONTROL_RETRIES = 3;

/**
 * One control-plane request (seeding, publishing, reading a gauge): `attempt` sends it and reads its
 * answer, and is run again, up to 3 more times 200/400/600 ms apart, when the network fails. Why: under
 * the herd's load workerd now and then closes a keep-alive socket just as a request goes out on it
 * (undici: `TypeError: terminated`, cause `SocketError: other side closed`), and one dropped socket
 * must not lose a whole run. Only fetch's network failures (TypeError) are retried, never an HTTP
 * error answer; sending and reading the body are one attempt, as the socket can close between them.
 */
async function control<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof TypeError) || tries > CONTROL_RETRIES) throw err;
      console.error(`${what}: network failure (${causeText(err)}), retry ${tries} of ${CONTROL_RETRIES}`);
      await new Promise((r) => setTimeout(r, 200 * tries));
    }
  }
}

/** An admin API call; its JSON answer (null when it has none), or an Error naming the status. Network failures retried ({@link control}). */
async function api(s: Server, method: string, path: string, body?: unknown) {
  const { status, text } = await control(`${method} ${path}`, async () => {
    const res = await fetch(`${s.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${s.adminToken}`, ...(typeof body === "string" ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    // The body is read inside the attempt (a socket closed mid-body is retried), parsed after it.
    return { status: res.status, text: await res.text() };
  });
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  if (status >= 300) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(json ?? text.slice(0, 200))}`);
  return json;
}

/**
 * A publish as an operator's CLI makes it: on a new connection (`agent: false`), which the server
 * accepts behind whatever connections a herd has queued, never on a kept-alive socket that happens
 * to be free. Resolves on a 2xx; an HTTP error rejects with the status; a network failure rejects
 * with a TypeError, so {@link control} retries it like fetch's.
 */
function publishOnNewConnection(url: string, token: string, body: unknown): Promise<void> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", agent: false, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => (res.statusCode! < 300 ? resolve() : reject(new Error(`POST ${url}: ${res.statusCode} ${text.slice(0, 200)}`))));
      res.on("error", (err) => reject(new TypeError(`network: ${err.message}`)));
    });
    req.on("error", (err) => reject(new TypeError(`network: ${err.message}`)));
    req.end(data);
  });
}

/** POST to a floor's publish route, on a new connection; network failures retried. */
const floorPublish = (url: string) => control("floor publish", () => publishOnNewConnection(`${url}/api/v1/bizs/10/apps/service_bench/publishes`, "floor", {}));

/** Long-polls the server holds now: its own gauge (Workers: the service's Durable Object), else its Prometheus gauge. */
async function waitingOn(t: Target): Promise<number> {
  if (t.server.waiting) return t.server.waiting(t.serviceId);
  const text = await control(`${t.label} /metrics`, async () => (await fetch(`${t.server.apiUrl}/metrics`, { headers: { authorization: `Bearer ${t.server.adminToken}` } })).text());
  const m = /^edgeconf_feed_waiting (\d+)$/m.exec(text);
  if (!m) throw new Error(`${t.label}: no held-polls gauge (edgeconf_feed_waiting) on /metrics`);
  return Number(m[1]);
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const mb = (b: number) => `${Math.round(b / 1048576)} MB`;
const ms = (x: number) => `${Math.round(x)} ms`;

/** A poll target: edgeconf (seeded with V1 published, V2 ready) or the bare floor. */
type Target = { label: string; server: Server; serviceId: number; pollPath: string; token: string; current: number; publish(): Promise<void> };

async function seeded(server: Server, label: string): Promise<Target> {
  const biz = 10;
  const app = "service_bench";
  await api(server, "POST", "/api/v1/bizs", { id: biz, name: "bench" });
  const service = await api(server, "POST", `/api/v1/bizs/${biz}/apps`, { name: app, configType: "file" });
  await api(server, "PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?path=/etc/bench/app.conf`, "workers = 4\n");
  const v1 = await api(server, "POST", `/api/v1/bizs/${biz}/apps/${app}/versions`, { name: "V1" });
  await api(server, "POST", `/api/v1/bizs/${biz}/apps/${app}/publishes`, { versionId: v1.id });
  await api(server, "PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?path=/etc/bench/app.conf`, "workers = 8\n");
  const v2 = await api(server, "POST", `/api/v1/bizs/${biz}/apps/${app}/versions`, { name: "V2" });
  const agent = await api(server, "POST", "/api/v1/credentials", { name: "bench-agent", kind: "agent", bizId: biz, apps: ["service_*"] });
  return {
    label,
    server,
    serviceId: service.id,
    pollPath: `/feed/v1/bizs/${biz}/apps/${app}/release`,
    token: agent.token,
    current: v1.id,
    publish: () => control("publish", () => publishOnNewConnection(`${server.apiUrl}/api/v1/bizs/${biz}/apps/${app}/publishes`, server.adminToken, { versionId: v2.id })),
  };
}

/** The Worker's floor (bench/do-floor.ts): a Worker and one Durable Object in workerd, no database. */
async function startWorkerFloor(): Promise<Target> {
  const floor = await startDurableObjectFloor();
  const server: Server = { url: floor.url, apiUrl: floor.url, adminToken: "", rssBytes: floor.rssBytes, stop: floor.stop };
  const pollPath = "/feed/v1/bizs/10/apps/service_bench/release";
  return { label: "floor (Durable Object)", server, serviceId: 0, pollPath, token: "floor", current: 1, publish: () => floorPublish(floor.url) };
}

/** The bare node:http floor (bench/floor.ts) as its own process. */
async function startFloor(): Promise<Target> {
  const child = spawn(process.execPath, [...(process.env.EDGECONF_BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []), "--import", "tsx", fileURLToPath(new URL("./floor.ts", import.meta.url)), ...(apiPort ? ["--api"] : [])], { stdio: ["ignore", "pipe", "inherit"] });
  const [url, apiUrl] = await new Promise<[string, string]>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      // The API's line, when asked for, comes first.
      const m = /floor listening on (\S+)/.exec(out);
      if (m) resolve([m[1], /floor api listening on (\S+)/.exec(out)?.[1] ?? m[1]]);
    });
    child.once("exit", (code) => reject(new Error(`floor exited with ${code}`)));
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const server: Server = {
    url,
    apiUrl,
    adminToken: "",
    rssBytes: () => rssOf(child.pid!),
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
  const pollPath = "/feed/v1/bizs/10/apps/service_bench/release";
  return { label: "floor", server, serviceId: 0, pollPath, token: "floor", current: 1, publish: () => floorPublish(apiUrl) };
}

async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const kb = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""));
  return kb ? Number(kb[1]) * 1024 : 0;
}

type ClientResult = { started: number; times: number[]; statuses: Record<string, number>; wrong: number };

/** Starts the poller process: N distinct agents connecting at once. Resolves its start time (epoch ms) first. */
function startClient(t: Target, n: number) {
  const client = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--client", "--url", t.server.url, "--token", t.token, "--n", String(n), "--path", t.pollPath, "--current", String(t.current)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  let onStart: (t: number) => void;
  const started = new Promise<number>((r) => (onStart = r));
  client.stdout!.on("data", (d) => {
    out += d;
    const m = /^started (\d+(?:\.\d+)?)$/m.exec(out);
    if (m) onStart(Number(m[1]));
  });
  const done = new Promise<ClientResult>((resolve, reject) =>
    client.once("exit", () => {
      try {
        resolve({ ...(JSON.parse(out.trim().split("\n").pop()!) as ClientResult), started: Number(/^started (\S+)$/m.exec(out)?.[1]) });
      } catch (err) {
        reject(err);
      }
    }),
  );
  return { started, done, kill: () => client.kill("SIGKILL") };
}

/** Polls the held-polls gauge until `until(held)`, or until it stalls 10 s; resolves the time it got there. */
async function watchHeld(t: Target, until: (held: number) => boolean): Promise<{ held: number; at: number }> {
  let held = 0;
  for (let last = -1, stalledSince = now(); ; await new Promise((r) => setTimeout(r, 50))) {
    held = await waitingOn(t);
    if (until(held)) return { held, at: now() };
    if (held !== last) [last, stalledSince] = [held, now()];
    else if (held > 0 && now() - stalledSince > 10_000) return { held, at: now() };
  }
}

const errorsOf = (r: ClientResult) => Object.entries(r.statuses).reduce((sum, [k, v]) => (k === "200" || k === "304" ? sum : sum + v), 0);

type HerdWake = Awaited<ReturnType<typeof herdThenWake>>;

/**
 * The median of K runs of one target: timings and sizes the median, correctness figures the worst
 * (fewest held and manifests, most errors and wrong).
 */
function medianOf(runs: HerdWake[]): HerdWake {
  const median = (pick: (r: HerdWake) => number) => {
    const xs = runs.map(pick).sort((a, b) => a - b);
    return xs[(xs.length - 1) >> 1];
  };
  const min = (pick: (r: HerdWake) => number) => Math.min(...runs.map(pick));
  const max = (pick: (r: HerdWake) => number) => Math.max(...runs.map(pick));
  return {
    held: min((r) => r.held),
    herdMs: median((r) => r.herdMs),
    p99FromRequest: median((r) => r.p99FromRequest),
    p50FromRequest: median((r) => r.p50FromRequest),
    publishMs: median((r) => r.publishMs),
    manifests: min((r) => r.manifests),
    wrong: max((r) => r.wrong),
    errors: max((r) => r.errors),
    rssBefore: median((r) => r.rssBefore),
    rssHeld: median((r) => r.rssHeld),
  };
}

/**
 * A figure of K runs as a ratio to the floor: the median of the K paired ratios (run i over the
 * floor's run i of the same round). `--repeat K` runs rounds of floor-then-servers, so each ratio
 * compares runs made minutes apart, not a server with a floor measured before it: on a shared
 * 2-core machine the floor alone moves by a third over an hour.
 */
function pairedRatio(runs: HerdWake[], floors: HerdWake[], pick: (r: HerdWake) => number): string {
  const xs = runs.map((r, i) => pick(r) / pick(floors[i])).filter(Number.isFinite).sort((a, b) => a - b);
  return xs.length ? `${xs[(xs.length - 1) >> 1].toFixed(2)}×` : "-";
}

/** Herd then wake: N agents connect at once (time until all are held), then a publish wakes them all. */
async function herdThenWake(t: Target, n: number) {
  const rssBefore = await t.server.rssBytes();
  const client = startClient(t, n);
  try {
    const started = await client.started;
    const all = await watchHeld(t, (h) => h >= n);
    await new Promise((r) => setTimeout(r, 1000));
    const rssHeld = await t.server.rssBytes();
    const sent = now();
    await t.publish();
    const answered = now();
    const result = await client.done;
    const fromRequest = result.times.map((x) => x - sent).sort((a, b) => a - b);
    return { held: all.held, herdMs: all.at - started, p50FromRequest: pct(fromRequest, 50), p99FromRequest: pct(fromRequest, 99), publishMs: answered - sent, manifests: result.times.length, wrong: result.wrong, errors: errorsOf(result), rssBefore, rssHeld };
  } finally {
    client.kill();
  }
}

/** A publish while the herd is still connecting (half held): how long it takes, and whether it reaches all N. */
async function publishDuringHerd(t: Target, n: number) {
  const client = startClient(t, n);
  try {
    await client.started;
    await watchHeld(t, (h) => h >= n / 2);
    const sent = now();
    await t.publish();
    const publishMs = now() - sent;
    const result = await client.done;
    return { publishMs, manifests: result.times.length, wrong: result.wrong, errors: errorsOf(result) };
  } finally {
    client.kill();
  }
}

async function withTarget<T>(start: () => Promise<Target>, run: (t: Target) => Promise<T>): Promise<T> {
  const t = await start();
  try {
    return await run(t);
  } finally {
    await t.server.stop();
  }
}

async function withDatabase<T>(db: "pglite" | "postgres", run: (url?: string) => Promise<T>): Promise<T> {
  const pg = db === "postgres" ? await createTestDatabase() : undefined;
  if (db === "postgres" && !pg) throw new Error("postgres: set DATABASE_URL");
  try {
    return await run(pg?.url);
  } finally {
    await pg?.drop();
  }
}

const ratio = (x: number, floor: number) => (floor > 0 ? `${(x / floor).toFixed(2)}×` : "-");
const kb = (b: number) => `${Math.round(b / 1024)} KB`;

/**
 * Embedded memory: RSS of `npm start` 3 s after its first start on a new data folder, then after a
 * restart on the same folder (issue 11: within 1.2×).
 */
async function embeddedMemory() {
  const { mkdtemp, rm } = await import("node:fs/promises");
  const os = await import("node:os");
  const path = await import("node:path");
  const dir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-bench-mem-"));
  const settled = async (s: Server) => (await new Promise((r) => setTimeout(r, 3000)), s.rssBytes());
  try {
    const first = await startServer({ dataDir: dir });
    const firstRss = await settled(first);
    await first.stop();
    const again = await startServer({ dataDir: dir });
    const restartRss = await settled(again);
    await again.stop();
    return { "first start": mb(firstRss), restart: mb(restartRss), ratio: ratio(firstRss, restartRss) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const perPoll = (r: HerdWake) => (r.rssHeld - r.rssBefore) / Math.max(1, r.held);

type During = Awaited<ReturnType<typeof publishDuringHerd>>;

/** Publishes made during K herds: the median and the slowest answer, the worst reach. */
function duringOf(runs: During[], n: number): string {
  const times = runs.map((r) => r.publishMs).sort((a, b) => a - b);
  const worst = (pick: (r: During) => number, most = true) => (most ? Math.max : Math.min)(...runs.map(pick));
  return `${ms(times[(times.length - 1) >> 1])} (slowest ${ms(times[times.length - 1])}); ${worst((r) => r.manifests, false)}/${n} manifests, ${worst((r) => r.wrong)} wrong, ${worst((r) => r.errors)} errors`;
}

/** One row per (runtime, db, n): each figure the median of its runs, beside its paired ratio to the floor's runs. */
function rowOf(runtime: string, db: string, n: number, runs: HerdWake[], floors: HerdWake[] | null, durings: During[]) {
  const wake = medianOf(runs);
  const vs = (pick: (r: HerdWake) => number) => (floors ? ` (${pairedRatio(runs, floors, pick)})` : "");
  const row = {
    runtime,
    db,
    n,
    "herd: all held": `${ms(wake.herdMs)}${vs((r) => r.herdMs)}`,
    "held / errors": `${wake.held} / ${wake.errors}`,
    "wake p50": ms(wake.p50FromRequest),
    "wake p99": `${ms(wake.p99FromRequest)}${vs((r) => r.p99FromRequest)}`,
    "publish answered": ms(wake.publishMs),
    "manifests (wrong)": `${wake.manifests} (${wake.wrong})`,
    "rss held": mb(wake.rssHeld),
    "rss per held poll": `${kb(perPoll(wake))}${vs(perPoll)}`,
    "publish during herd": duringOf(durings, n),
  };
  console.log(JSON.stringify(row));
  return row;
}

/** The poller process: N long-polls; a 304 is polled again (as an agent would); a 200 is timed. */
async function client() {
  const n = Number(arg("n", "1000"));
  const url = `${arg("url", "")}${arg("path", "")}`;
  const current = arg("current", "");
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  process.stdout.write(`started ${now()}\n`);
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
  const k = Math.max(1, Number(arg("repeat", "1")) || 1);
  const targets = dbs.flatMap((db) => (worker ? ["node", "worker"] : [runtime]).map((r) => ({ runtime: r, db })));
  const rows = [];
  for (const n of ns) {
    // Rounds of: the floors (the same client against a bare node:http server of the same routes and,
    // for the Worker, a Worker + Durable Object without a database), then every server, in turn.
    const floors: Record<string, HerdWake[]> = {};
    const floorDurings: Record<string, During[]> = {};
    const runs: HerdWake[][] = targets.map(() => []);
    const durings: During[][] = targets.map(() => []);
    for (let round = 0; round < k; round++) {
      for (const [name, start] of [["node", startFloor], ...(worker ? [["worker", startWorkerFloor] as const] : [])] as const) {
        (floors[name] ??= []).push(await withTarget(start, (t) => herdThenWake(t, n)));
        // A publish during the herd, on a fresh target: the herd is the fleet reconnecting after a restart.
        (floorDurings[name] ??= []).push(await withTarget(start, (t) => publishDuringHerd(t, n)));
      }
      for (const [i, { runtime: r, db }] of targets.entries()) {
        const target = (url?: string) => async () => seeded(await runtimes[r](db, url), r);
        runs[i].push(await withDatabase(db, (url) => withTarget(target(url), (t) => herdThenWake(t, n))));
        durings[i].push(await withDatabase(db, (url) => withTarget(target(url), (t) => publishDuringHerd(t, n))));
      }
    }
    for (const [name, runsOfFloor] of Object.entries(floors)) rows.push(rowOf(name === "node" ? "floor (bare node:http)" : "floor (Durable Object only)", "-", n, runsOfFloor, null, floorDurings[name]));
    for (const [i, { runtime: r, db }] of targets.entries()) rows.push(rowOf(r, db, n, runs[i], floors[r], durings[i]));
  }
  console.log(`\nN distinct agents connecting at once (200 in their TCP handshake at a time), then a publish; wake: from the publish request to each agent holding its manifest; medians of ${k} round(s), each ratio the median of the rounds' ratios to the floor of the same N; publish during herd: a publish on a new connection once half the herd is held${apiPort ? ", sent to the API port (EDGECONF_API_PORT; the floor's likewise)" : ""}:`);
  console.table(rows);
  if (dbs.includes("pglite") && !worker) {
    console.log("\nembedded server (PGlite) resident memory, first start on a new data folder vs. restart on it:");
    console.table([await embeddedMemory()]);
  }
}

if (process.argv.includes("--client")) await client();
else await main();
