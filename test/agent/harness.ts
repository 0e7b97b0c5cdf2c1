/**
 * End-to-end harness for the agent: a real edgeconf server process (embedded default: PGlite and
 * local blobs in a temp folder), the agent bundle built once with esbuild, and agent processes.
 * Each test file seeds its own biz and services through the admin API.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { createTestDatabase } from "../helpers/database";
import { startServer as startNodeServer, type ServerProcess } from "../helpers/server";

export const ROOT = resolve(import.meta.dirname, "../..");
export const ADMIN_TOKEN = "agent-e2e-admin-token-0123456789";
export const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value (no timing assertion: only a generous cap). */
export async function until<T>(check: () => Promise<T> | T, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await sleep(50);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}

/** Builds agent/main.ts to a single ESM file, as `npm run build:agent` does. */
export async function buildAgent(outDir: string): Promise<string> {
  const outfile = join(outDir, "agent.mjs");
  await build({
    entryPoints: [join(ROOT, "agent/main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    banner: { js: "#!/usr/bin/env node" },
    logLevel: "silent",
  });
  return outfile;
}

export type ServerHandle = ServerProcess;

/** The real server (test/helpers/server.ts) with this harness's admin token. */
export function startServer(options: { dataDir: string; port?: number; databaseUrl?: string }): Promise<ServerHandle> {
  return startNodeServer({ ...options, adminToken: ADMIN_TOKEN });
}

/** The admin API, as a user would call it with curl. */
export class Admin {
  constructor(
    readonly url: string,
    readonly token = ADMIN_TOKEN,
  ) {}

  async call<T = any>(method: string, path: string, body?: unknown, expectStatus?: number): Promise<T> {
    const raw = Buffer.isBuffer(body) || typeof body === "string";
    const res = await fetch(this.url + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined && !raw ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : raw ? (body as string) : JSON.stringify(body),
    });
    const text = await res.text();
    if (expectStatus ? res.status !== expectStatus : res.status >= 300) {
      throw new Error(`${method} ${path} -> ${res.status} ${text}`);
    }
    return (text ? JSON.parse(text) : null) as T;
  }

  async biz(id: number): Promise<void> {
    const res = await fetch(`${this.url}/api/v1/bizs`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
      body: JSON.stringify({ id, name: `agent-e2e-${id}` }),
    });
    if (res.status >= 300 && res.status !== 409) throw new Error(`create biz -> ${res.status} ${await res.text()}`);
  }

  service(biz: number, name: string): Promise<{ id: number }> {
    return this.call("POST", `/api/v1/bizs/${biz}/apps`, { name, configType: "file", memo: "agent e2e" });
  }

  /** Uploads content and adds or updates the draft file at `fullPath`. */
  async file(biz: number, app: string, fullPath: string, content: string | Buffer, perm: { privilege?: string; user?: string; group?: string } = {}): Promise<{ id: number }> {
    const query = new URLSearchParams({ path: fullPath, ...perm });
    return this.call("PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?${query}`, content);
  }

  async removeFile(biz: number, app: string, fullPath: string): Promise<void> {
    const list = await this.call<{ items: { id: number; path: string; name: string }[] }>("GET", `/api/v1/bizs/${biz}/apps/${app}/files?limit=1000`);
    const file = list.items.find((f) => `${f.path.replace(/\/$/, "")}/${f.name}` === fullPath);
    if (!file) throw new Error(`no draft file ${fullPath}`);
    await this.call("DELETE", `/api/v1/bizs/${biz}/apps/${app}/files/${file.id}`);
  }

  async script(biz: number, name: string, type: "shell" | "python", content: string): Promise<number> {
    const script = await this.call<{ id: number }>("POST", `/api/v1/bizs/${biz}/scripts`, { name, type, content });
    return script.id;
  }

  hooks(biz: number, app: string, pre: number | null, post: number | null): Promise<unknown> {
    return this.call("PUT", `/api/v1/bizs/${biz}/apps/${app}/hooks`, {
      pre: pre === null ? null : { scriptId: pre },
      post: post === null ? null : { scriptId: post },
    });
  }

  /** Creates a version from the draft and publishes it to every client; returns its id. */
  async release(biz: number, app: string, name: string): Promise<number> {
    const version = await this.call<{ id: number }>("POST", `/api/v1/bizs/${biz}/apps/${app}/versions`, { name, memo: "" });
    await this.call("POST", `/api/v1/bizs/${biz}/apps/${app}/publishes`, { versionId: version.id });
    return version.id;
  }

  async agentToken(biz: number, apps: string[]): Promise<string> {
    const cred = await this.call<{ token: string }>("POST", `/api/v1/credentials`, { name: `agent-${biz}-${Date.now()}`, kind: "agent", bizId: biz, apps });
    return cred.token;
  }

  clients(biz: number, app: string): Promise<any> {
    return this.call("GET", `/api/v1/bizs/${biz}/apps/${app}/clients`);
  }
}

export interface AgentRun {
  code: number | null;
  output: string;
}

export interface AgentProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<AgentRun>;
  stop(signal?: NodeJS.Signals): Promise<AgentRun>;
}

export function startAgent(agentPath: string, args: string[], env: Record<string, string> = {}): AgentProcess {
  const child = spawn(process.execPath, [agentPath, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<AgentRun>((r) => child.once("exit", (code) => r({ code, output })));
  return {
    child,
    output: () => output,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function runAgent(agentPath: string, args: string[], env: Record<string, string> = {}): Promise<AgentRun> {
  return startAgent(agentPath, args, env).exited;
}

export async function readLines(path: string): Promise<any[]> {
  try {
    return (await readFile(path, "utf8")).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

/**
 * Every entry below `dir`: relative path → `"<mode> <sha256>"` for a regular file, "not a regular
 * file" for anything else but a folder (links, temp files and strays count too). {} when absent.
 */
export async function snapshot(dir: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let entries;
  try {
    entries = await readdir(join(dir, prefix), { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, await snapshot(dir, rel));
    else if (e.isFile()) out[rel] = `${((await stat(join(dir, rel))).mode & 0o7777).toString(8)} ${sha256(await readFile(join(dir, rel)))}`;
    else out[rel] = "not a regular file";
  }
  return out;
}

export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export { startProxy, type Proxy, type ProxyOptions } from "./proxy";

/**
 * One test file's world: a temp folder, a database, the built agent, a real server, a biz with an
 * agent token, and helpers to make services and per-case agent settings. `start` in beforeAll,
 * `stop` in afterAll.
 */
export class AgentSuite {
  work!: { path: string; remove: () => Promise<void> };
  server!: ServerHandle;
  admin!: Admin;
  agent!: string;
  token!: string;
  private database: Awaited<ReturnType<typeof createTestDatabase>>;
  private seq = 0;
  private scriptSeq = 0;

  constructor(
    readonly biz: number,
    private readonly name: string,
  ) {}

  async start(): Promise<this> {
    this.work = await tempDir(`edgeconf-agent-${this.name}-`);
    this.database = await createTestDatabase();
    [this.agent, this.server] = await Promise.all([buildAgent(this.work.path), startServer({ dataDir: join(this.work.path, "server"), databaseUrl: this.database?.url })]);
    this.admin = new Admin(this.server.url);
    await this.admin.biz(this.biz);
    this.token = await this.admin.agentToken(this.biz, ["*"]);
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    await this.database?.drop();
    await this.work?.remove();
  }

  /** A fresh temp_dir and the agent's environment for `apps` (feed: the server, or `feed`). */
  async agentEnv(apps: string[], extra: Record<string, string> = {}, feed = `127.0.0.1:${this.server.port}`) {
    const dir = join(this.work.path, `agent-${++this.seq}`);
    await mkdir(dir, { recursive: true });
    const env = { biz: String(this.biz), app: apps.join(","), feed_addrs: feed, token: this.token, temp_dir: dir, uid: `${this.name}-${this.seq}`, port: "0", ...extra };
    return { dir, env, appDir: (app: string) => join(dir, String(this.biz), app) };
  }

  script(type: "shell" | "python", content: string): Promise<number> {
    return this.admin.script(this.biz, `s_${++this.scriptSeq}_${Date.now() % 100000}`, type, content);
  }

  async service(name: string, files: Record<string, string>, hooks: { pre?: number | null; post?: number | null } = {}): Promise<void> {
    await this.admin.service(this.biz, name);
    for (const [path, content] of Object.entries(files)) await this.admin.file(this.biz, name, path, content);
    if (hooks.pre || hooks.post) await this.admin.hooks(this.biz, name, hooks.pre ?? null, hooks.post ?? null);
  }
}
