/**
 * Runs the Worker (functions/entries/worker.ts) in workerd through Miniflare, with the bindings of
 * wrangler.toml (R2 and the Durable Object simulated in memory), Postgres reached by the Neon driver
 * through tools/neon-ws-proxy.ts. Used by test/helpers/app.ts (EDGECONF_TEST_RUNTIME=worker),
 * test/worker/*.test.ts and bench/feed.ts. Loopback only: no request leaves the machine.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { addressOf, startNeonWsProxy, type NeonWsProxy } from "../../tools/neon-ws-proxy";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The four variables that keep wrangler/Miniflare from calling out (stack notes). */
export function offlineWranglerEnv() {
  process.env.WRANGLER_SEND_METRICS = "false";
  process.env.WRANGLER_SEND_ERROR_REPORTS = "false";
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_HIDE_BANNER = "true";
}

let bundled: Promise<{ dir: string; script: string }> | undefined;

/** esbuild bundle of the Worker entry, as wrangler would make it (workerd conditions, ESM); once per process. */
export function bundleWorker(): Promise<{ dir: string; script: string }> {
  bundled ??= (async () => {
    const { build } = await import("esbuild");
    const dir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-worker-"));
    const script = path.join(dir, "worker.mjs");
    const result = await build({
      entryPoints: [path.join(root, "functions/entries/worker.ts")],
      outfile: script,
      bundle: true,
      format: "esm",
      platform: "neutral",
      target: "es2022",
      conditions: ["workerd", "worker", "browser"],
      mainFields: ["module", "main"],
      logLevel: "silent",
      metafile: true,
    });
    const nodeImports = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.path.startsWith("node:") || i.external));
    if (nodeImports.length) throw new Error(`the Worker bundle imports ${nodeImports.map((i) => i.path).join(", ")}`);
    process.once("exit", () => void rm(dir, { recursive: true, force: true }));
    return { dir, script };
  })();
  return bundled;
}

const disconnectProbeScript = `
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(count, ok) {
  let n = await count();
  for (let i = 0; i < 1000 && !ok(n); i++) { await sleep(10); n = await count(); }
  return n;
}
export default {
  async fetch(request, env) {
    const { path, headers, serviceId } = await request.json();
    const stub = env.RELEASE_WAITERS.get(env.RELEASE_WAITERS.idFromName(String(serviceId)));
    const count = async () => (await (await stub.fetch("https://release-waiters/waiters")).json()).waiters;
    const before = await count();
    const gone = new AbortController();
    const call = env.APP.fetch("http://edgeconf" + path, { headers, signal: gone.signal }).then(
      (res) => "answered " + res.status,
      () => "aborted",
    );
    const held = await until(count, (n) => n > before);
    gone.abort();
    const outcome = await call;
    const after = await until(count, (n) => n <= before);
    return Response.json({ before, held, after, outcome });
  },
};
`;

export type TestWorker = {
  /** Loopback URL of the Worker, without a trailing slash. */
  url: string;
  /** Requests held by the service's Durable Object right now. */
  waiters(serviceId: number): Promise<number>;
  /**
   * Sends `path` to the app from inside workerd, waits until the service's Durable Object holds it,
   * then gives up on it like a disconnecting client; answers the waiter counts before, while held
   * and after the abort.
   */
  abandon(path: string, init: { headers: Record<string, string>; serviceId: number }): Promise<{ before: number; held: number; after: number; outcome: string }>;
  /** Keys in the R2 bucket under `prefix`. */
  blobKeys(prefix: string): Promise<string[]>;
  /** Tells the service's Durable Object to wake its waiters, as the publish path does. */
  notify(serviceId: number): Promise<number>;
  proxy: NeonWsProxy;
  close(): Promise<void>;
};

export async function startTestWorker(opts: { databaseUrl: string; secretKey: string; maxFileBytes?: number; vars?: Record<string, string> }): Promise<TestWorker> {
  offlineWranglerEnv();
  const [{ dir, script }, { Miniflare }, { unstable_getMiniflareWorkerOptions }] = await Promise.all([bundleWorker(), import("miniflare"), import("wrangler")]);
  const proxy = await startNeonWsProxy({ allow: [addressOf(opts.databaseUrl)] });
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.toml"));
  const app = {
    ...(workerOptions as object),
    name: "edgeconf",
    modules: true,
    scriptPath: script,
    modulesRoot: dir,
    bindings: {
      ...(workerOptions.bindings ?? {}),
      DATABASE_URL: opts.databaseUrl,
      EDGECONF_SECRET_KEY: opts.secretKey,
      NEON_WS_PROXY: proxy.url,
      ...(opts.maxFileBytes ? { EDGECONF_MAX_FILE_BYTES: String(opts.maxFileBytes) } : {}),
      ...opts.vars,
    },
  };
  // A second, test-only Worker that calls the app through a service binding and gives up on the
  // call, as Cloudflare's edge does when an agent disconnects (local workerd does not notice a
  // loopback TCP client closing while a body-less request waits).
  const client = {
    name: "disconnect-probe",
    modules: true,
    script: disconnectProbeScript,
    compatibilityDate: workerOptions.compatibilityDate,
    serviceBindings: { APP: "edgeconf" },
    durableObjects: { RELEASE_WAITERS: { className: "ReleaseWaiters", scriptName: "edgeconf", useSQLite: true } },
  };
  const mf = new Miniflare({ host: "127.0.0.1", port: 0, ...(process.env.EDGECONF_WORKER_INSPECTOR_PORT ? { inspectorPort: Number(process.env.EDGECONF_WORKER_INSPECTOR_PORT) } : {}), r2Persist: false, durableObjectsPersist: false, workers: [app, client] } as ConstructorParameters<typeof Miniflare>[0]);
  let url: URL;
  try {
    url = await mf.ready;
  } catch (err) {
    await proxy.close();
    throw err;
  }
  const stub = async (serviceId: number) => {
    const ns = (await mf.getDurableObjectNamespace("RELEASE_WAITERS")) as unknown as {
      idFromName(name: string): unknown;
      get(id: unknown): { fetch(url: string, init?: { method?: string }): Promise<{ json(): Promise<unknown> }> };
    };
    return ns.get(ns.idFromName(String(serviceId)));
  };
  return {
    url: url.origin,
    proxy,
    async waiters(serviceId) {
      const res = await (await stub(serviceId)).fetch("https://release-waiters/waiters");
      return ((await res.json()) as { waiters: number }).waiters;
    },
    async blobKeys(prefix) {
      const bucket = (await mf.getR2Bucket("BLOBS")) as unknown as {
        list(o: { prefix: string; cursor?: string }): Promise<{ objects: { key: string }[]; truncated: boolean; cursor?: string }>;
      };
      const keys: string[] = [];
      for (let cursor: string | undefined; ; ) {
        const page = await bucket.list({ prefix, cursor });
        keys.push(...page.objects.map((o) => o.key));
        if (!page.truncated) return keys;
        cursor = page.cursor;
      }
    },
    async abandon(path, init) {
      const probe = (await mf.getWorker("disconnect-probe")) as unknown as { fetch(url: string, init: { method: string; body: string }): Promise<Response> };
      const res = await probe.fetch("http://probe/abandon", { method: "POST", body: JSON.stringify({ path, headers: init.headers, serviceId: init.serviceId }) });
      if (res.status !== 200) throw new Error(`disconnect probe: ${res.status} ${await res.text()}`);
      return (await res.json()) as { before: number; held: number; after: number; outcome: string };
    },
    async notify(serviceId) {
      const res = await (await stub(serviceId)).fetch("https://release-waiters/notify", { method: "POST" });
      return ((await res.json()) as { woken: number }).woken;
    },
    async close() {
      await mf.dispose();
      await proxy.close();
    },
  };
}

/**
 * PgBouncer in transaction mode in front of a local Postgres: the local stand-in for Neon's pooled
 * connection string, which the Worker (a Pool per request) needs once hundreds of requests are in
 * flight. Undefined when `pgbouncer` is not installed (`apt-get install pgbouncer`).
 */
export async function startPgBouncer(databaseUrl: string, opts: { maxClients?: number; poolSize?: number } = {}): Promise<{ url: string; stop(): Promise<void> } | undefined> {
  const { spawn, spawnSync } = await import("node:child_process");
  const { chmod, writeFile } = await import("node:fs/promises");
  const net = await import("node:net");
  const bin = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((b) => spawnSync(b, ["--version"]).status === 0);
  if (!bin) return undefined;
  const target = new URL(databaseUrl);
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as import("node:net").AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-pgbouncer-"));
  await chmod(dir, 0o755);
  const user = decodeURIComponent(target.username || "postgres");
  await writeFile(path.join(dir, "users.txt"), `"${user}" "${decodeURIComponent(target.password)}"\n`);
  await writeFile(
    path.join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${target.hostname} port=${target.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      `auth_type = ${target.password ? "plain" : "trust"}`,
      `auth_file = ${path.join(dir, "users.txt")}`,
      "pool_mode = transaction",
      `max_client_conn = ${opts.maxClients ?? 5000}`,
      `default_pool_size = ${opts.poolSize ?? 20}`,
      "ignore_startup_parameters = extra_float_digits,options",
      "logfile =",
      "",
    ].join("\n"),
  );
  const asRoot = process.getuid?.() === 0;
  const proc = spawn(bin, [...(asRoot ? ["-u", "postgres"] : []), path.join(dir, "pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr!.on("data", (d) => (log += d));
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    if (ok) break;
    if (i > 100 || proc.exitCode !== null) throw new Error(`pgbouncer did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: url.toString(),
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once("exit", r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resident memory of the workerd processes this process started (Miniflare's runtime). */
export async function workerdRssBytes(): Promise<number> {
  const { readdir, readFile } = await import("node:fs/promises");
  let total = 0;
  for (const pid of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const m = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
    if (!m || m[1] !== "workerd" || Number(m[2]) !== process.pid) continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  }
  return total;
}

/**
 * The Worker for bench/feed.ts on an empty, migrated database: through PgBouncer (Neon's pooler
 * stand-in) when it is installed, else straight to Postgres (fine for a few hundred polls).
 */
export async function startBenchWorker(
  databaseUrl: string,
  opts: { pgbouncer?: boolean } = {},
): Promise<{ url: string; adminToken: string; pooled: boolean; rssBytes(): Promise<number>; waiting(serviceId: number): Promise<number>; stop(): Promise<void> }> {
  const [{ openNodeDatabase }, { ensureFirstAdmin }, { systemActor }, { randomToken }] = await Promise.all([
    import("../../db/drivers/node"),
    import("../../functions/core/credentials"),
    import("../../functions/core/audit"),
    import("../../functions/core/crypto"),
  ]);
  const handle = await openNodeDatabase({ databaseUrl });
  let adminToken: string;
  try {
    await handle.migrate();
    adminToken = (await ensureFirstAdmin(handle.db, systemActor))!;
  } finally {
    await handle.close();
  }
  const bouncer = opts.pgbouncer === false ? undefined : await startPgBouncer(databaseUrl);
  if (!bouncer && opts.pgbouncer !== false) console.error("bench: pgbouncer is not installed (apt-get install pgbouncer); the Worker connects to Postgres directly and may exhaust max_connections");
  const worker = await startTestWorker({ databaseUrl: bouncer?.url ?? databaseUrl, secretKey: randomToken(32) });
  return {
    url: worker.url,
    adminToken,
    pooled: !!bouncer,
    rssBytes: workerdRssBytes,
    // The held-polls gauge of the Worker: its service's Durable Object counts the polls it holds.
    waiting: (serviceId) => worker.waiters(serviceId),
    async stop() {
      await worker.close();
      await bouncer?.stop();
    },
  };
}
