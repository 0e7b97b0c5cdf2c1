/**
 * The CLI as users run it: the bundle (built like `npm run build:cli`) as a process, against a
 * real server process (test/helpers/server.ts), with settings from EDGECONF_* variables.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Header, Pack, ReadEntry } from "tar";
import { buildCli } from "../../cli/build";
import { ADMIN_TOKEN, Admin, buildAgent, startAgent, startServer, tempDir, until, type AgentProcess } from "../agent/harness";
import { createTestDatabase } from "../helpers/database";
import { startServer as startServerWithEnv } from "../helpers/server";

export type CliRun = { code: number | null; stdout: string; stderr: string };

export function buildCliBundle(dir: string): Promise<string> {
  return buildCli(join(dir, "edgeconf.mjs"));
}

/** Runs `node edgeconf.mjs ...args` in `cwd` with only PATH, HOME and the given environment. */
export function runCli(bundle: string, args: string[], env: Record<string, string> = {}, cwd?: string): Promise<CliRun> {
  const child = spawn(process.execPath, [bundle, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

/**
 * A real server process (its own database and data folder, `serverEnv` added to its environment),
 * biz `biz` in it, and the CLI bundle with EDGECONF_* settings for it. `stop` removes it all.
 */
export async function startCliServer(o: { prefix: string; biz: number; serverEnv?: Record<string, string> }) {
  const work = await tempDir(o.prefix);
  const database = await createTestDatabase();
  const [cli, server] = await Promise.all([
    buildCliBundle(work.path),
    startServerWithEnv({ dataDir: join(work.path, "server"), databaseUrl: database?.url, adminToken: ADMIN_TOKEN, env: o.serverEnv }),
  ]);
  const admin = new Admin(server.url);
  await admin.biz(o.biz);
  const env = { EDGECONF_URL: server.url, EDGECONF_TOKEN: admin.token, EDGECONF_BIZ: String(o.biz) };
  return {
    work,
    server,
    admin,
    cli,
    env,
    run: (...args: string[]) => runCli(cli, args, env),
    async stop() {
      await server.stop();
      await database?.drop();
      await work.remove();
    },
  };
}

/** Writes a tar.gz of exactly these entries (any type, any path: for archives a real export would never make). */
export async function packTar(file: string, entries: { path: string; data?: string | Buffer; type?: string; linkpath?: string }[]): Promise<string> {
  const pack = new Pack({ gzip: true });
  const done = pipeline(pack, createWriteStream(file));
  for (const e of entries) {
    const data = Buffer.from(e.data ?? "");
    const entry = new ReadEntry(new Header({ path: e.path, mode: 0o644, size: data.length, type: (e.type ?? "File") as any, linkpath: e.linkpath, mtime: new Date() }));
    pack.add(entry);
    entry.end(data);
  }
  pack.end();
  await done;
  return file;
}

/**
 * A service with a pre-script and real agents (watch mode, one temp folder and uid per host) on a
 * real server, and the CLI bundle set up against it; every host holds V1 (`v=1\n` in `file`)
 * when this resolves. `pushRelease` writes `file` in the pushed folder, pushes it, then runs
 * `edgeconf release --app APP --name NAME ...extra`.
 */
export async function startFleet(o: { prefix: string; biz: number; app: string; hosts: string[]; pre: string; file: string; labels: string }) {
  const work = await tempDir(o.prefix);
  const database = await createTestDatabase();
  const [cli, agent, server] = await Promise.all([buildCliBundle(work.path), buildAgent(work.path), startServer({ dataDir: join(work.path, "server"), databaseUrl: database?.url })]);
  const admin = new Admin(server.url);
  await admin.biz(o.biz);
  await admin.service(o.biz, o.app);
  await admin.hooks(o.biz, o.app, await admin.script(o.biz, `${o.app}_pre`, "shell", o.pre), null);
  const agentToken = await admin.agentToken(o.biz, [o.app]);
  const env = { EDGECONF_URL: server.url, EDGECONF_TOKEN: admin.token, EDGECONF_BIZ: String(o.biz) };
  const hostDir = (uid: string) => join(work.path, uid);
  const config = (uid: string) => readFile(join(hostDir(uid), String(o.biz), o.app, "files", o.file), "utf8").catch(() => null);
  const run = (...args: string[]) => runCli(cli, args, env);
  const pushRelease = async (content: string, name: string, ...extra: string[]) => {
    await writeFile(join(work.path, "config", o.file), content);
    const pushed = await run("push", join(work.path, "config"), "--app", o.app);
    if (pushed.code !== 0) throw new Error(`push failed: ${pushed.stderr}`);
    return run("release", "--app", o.app, "--name", name, ...extra);
  };
  await mkdir(dirname(join(work.path, "config", o.file)), { recursive: true });
  const first = await pushRelease("v=1\n", "V1");
  if (first.code !== 0) throw new Error(`release V1 failed: ${first.stderr}`);
  const agents: AgentProcess[] = [];
  for (const uid of o.hosts) {
    await mkdir(hostDir(uid));
    agents.push(startAgent(agent, ["watch"], { biz: String(o.biz), app: o.app, feed_addrs: `127.0.0.1:${server.port}`, token: agentToken, temp_dir: hostDir(uid), uid, port: "0", labels: o.labels }));
  }
  for (const uid of o.hosts) await until(async () => (await config(uid)) === "v=1\n", `${uid} applies V1`, 60_000);
  return {
    work,
    server,
    admin,
    agentToken,
    hostDir,
    config,
    run,
    pushRelease,
    async stop() {
      await Promise.all(agents.map((a) => a.stop("SIGKILL")));
      await server.stop();
      await database?.drop();
      await work.remove();
    },
  };
}
export type Fleet = Awaited<ReturnType<typeof startFleet>>;
