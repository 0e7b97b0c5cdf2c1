import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { seedDataDir } from "./template";

const root = fileURLToPath(new URL("../..", import.meta.url));

export type ServerProcess = {
  /** Where agents poll (PORT). */
  url: string;
  /** Where the console and admin API listen: `url`, or EDGECONF_API_PORT's listener when `env` sets it. */
  apiUrl: string;
  port: number;
  pid: number;
  adminToken: string;
  dataDir: string;
  databaseUrl?: string;
  /** Resident memory of the server process, bytes (Linux /proc). */
  rssBytes(): Promise<number>;
  /** Everything the server printed so far. */
  output(): string;
  stop(): Promise<void>;
};

function serverEnv(opts: { databaseUrl?: string; env?: Record<string, string>; dataDir: string; port?: number; adminToken: string }): Record<string, string> {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    HOST: "127.0.0.1",
    PORT: String(opts.port ?? 0),
    EDGECONF_DATA_DIR: opts.dataDir,
    EDGECONF_ADMIN_TOKEN: opts.adminToken,
    ...opts.env,
  };
  delete env.DATABASE_URL;
  if (opts.databaseUrl) env.DATABASE_URL = opts.databaseUrl;
  return env;
}

/**
 * A process expected to exit on its own (a refused second server, `tools/create-admin-token.ts`):
 * the Node entry unless `script` is given, with the same environment as {@link startServer}.
 * Resolves with its exit code and everything it printed.
 */
export function runToExit(opts: { dataDir: string; script?: string; args?: string[]; env?: Record<string, string>; adminToken?: string }): Promise<{ code: number | null; output: string }> {
  const env = serverEnv({ ...opts, adminToken: opts.adminToken ?? "eca_unused-preset-0123456789" });
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, opts.script ?? "functions/entries/node.ts"), ...(opts.args ?? [])], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const runaway = setTimeout(() => child.kill("SIGKILL"), 120_000); // it should have exited: a test never hangs on it
  return new Promise((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(runaway);
      resolve({ code, output: out });
    }),
  );
}

/**
 * The Node entry (`functions/entries/node.ts`) as its own process on loopback: PGlite in a data
 * folder (a temp one, removed on stop, unless `dataDir` is given), or `databaseUrl` (never the
 * caller's DATABASE_URL itself: tests use databases of their own). `port` (default: any free one)
 * and `dataDir` let a test restart "the same" server. Resolves once it prints its "listening on" line.
 * An embedded data folder without a database starts with a copy of the migrated template
 * (test/helpers/template.ts) unless `fresh`: only tests of that first start need the server to create it.
 */
export async function startServer(
  opts: { databaseUrl?: string; env?: Record<string, string>; dataDir?: string; port?: number; adminToken?: string; fresh?: boolean } = {},
): Promise<ServerProcess> {
  const ownDataDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), "edgeconf-server-")));
  if (!opts.databaseUrl && !opts.fresh) await seedDataDir(dataDir);
  const adminToken = opts.adminToken ?? `eca_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const env = serverEnv({ ...opts, dataDir, adminToken });
  const script = "functions/entries/node.ts";
  const child: ChildProcess = spawn(process.execPath, [...(process.env.EDGECONF_BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? []), "--import", "tsx", path.join(root, script)], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const [url, apiUrl] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 120 s:\n${out}`)), 120_000);
    const check = () => {
      // The console's line comes after every listener is up, and names the API's.
      const m = /edgeconf listening on (http:\/\/\S+)/.exec(out);
      const api = /^console: (http:\/\/\S+)\/$/m.exec(out);
      if (m && api) {
        clearTimeout(timer);
        resolve([m[1], api[1]]);
      }
    };
    child.stdout!.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    apiUrl,
    port: Number(new URL(url).port),
    pid: child.pid!,
    adminToken,
    dataDir,
    databaseUrl: opts.databaseUrl,
    async rssBytes() {
      const status = await readFile(`/proc/${child.pid}/status`, "utf8").catch(() => "");
      const kb = /VmRSS:\s+(\d+) kB/.exec(status);
      return kb ? Number(kb[1]) * 1024 : 0;
    },
    output: () => out,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const forced = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(forced);
      }
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
