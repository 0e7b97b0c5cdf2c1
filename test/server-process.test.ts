import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";

// Each test starts several server processes (npm, tsx, PGlite): minutes on a loaded 2-core machine.
vi.setConfig({ testTimeout: 180_000 });
import { createTestDatabase } from "./helpers/database";
import { seedDataDir } from "./helpers/template";

const repo = path.resolve(import.meta.dirname, "..");
const running: ChildProcess[] = [];

/** `npm start` as a user runs it; resolves with the printed URL and token (if printed). */
function npmStart(env: Record<string, string>): Promise<{ url: string; token?: string; output: string; proc: ChildProcess }> {
  const proc = spawn("npm", ["start", "--silent"], { cwd: repo, env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env }, detached: true });
  running.push(proc);
  let output = "";
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url && /console: /.test(output) && /api reference: .*\n/.test(output)) {
        setTimeout(() => resolve({ url, token: /admin token: (\S+)/.exec(output)?.[1], output, proc }), 50);
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.on("exit", (code) => reject(new Error(`npm start exited ${code}: ${output}`)));
  });
}

async function stop(proc: ChildProcess) {
  process.kill(-proc.pid!, "SIGTERM");
  // npm exits at once; wait for the whole process group (the server closes its database first).
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(-proc.pid!, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("server did not stop within 10 s of SIGTERM");
}

afterAll(() => {
  for (const p of running) if (p.exitCode === null) try { process.kill(-p.pid!, "SIGKILL"); } catch { /* gone */ }
});

async function exercise(env: Record<string, string>) {
  const first = await npmStart(env);
  expect(first.token).toMatch(/^eca_/);
  expect(first.output).toContain("console: ");
  const outputs = [first.output];
  const auth = { authorization: `Bearer ${first.token}`, "content-type": "application/json" };
  const created = await fetch(`${first.url}/api/v1/bizs`, { method: "POST", headers: auth, body: JSON.stringify({ id: 10, name: "demo" }) });
  expect(created.status).toBe(201);
  const script = await fetch(`${first.url}/api/v1/bizs/10/scripts`, { method: "POST", headers: auth, body: JSON.stringify({ name: "tag", type: "shell", content: "echo ok" }) });
  expect(script.status).toBe(201);
  await stop(first.proc);

  const second = await npmStart(env);
  expect(second.token).toBeUndefined(); // printed once, on the first start only
  const list = await fetch(`${second.url}/api/v1/bizs/10/scripts`, { headers: auth });
  expect(list.status).toBe(200);
  expect((await list.json()).items.map((s: { name: string }) => s.name)).toEqual(["tag"]);
  await stop(second.proc);
  return [...outputs, second.output];
}

describe("npm start", () => {
  it("runs on the embedded default, prints the token once, and keeps data across a restart", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-start-"));
    try {
      await exercise({ EDGECONF_DATA_DIR: dataDir, DATABASE_URL: "" });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("uses DATABASE_URL when set, creating the database it names when the server lacks it", async (ctx) => {
    const db = await createTestDatabase();
    if (!db) {
      console.log("skipped: DATABASE_URL is not set, so there is no PostgreSQL server to point npm start at");
      ctx.skip();
      return;
    }
    await db.drop(); // a name the server does not have: npm start creates it, as dev:worker does
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-start-"));
    try {
      const out = await exercise({ EDGECONF_DATA_DIR: dataDir, DATABASE_URL: db.url });
      expect(out[0]).toMatch(/msg="created the database named by DATABASE_URL" database=edgeconf_test_/);
      expect(out[1]).not.toContain("created the database");
    } finally {
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  // The first start on an empty folder, which creates the database, is the first test's; the ones
  // below start on a folder holding a copy of the migrated template (test/helpers/template.ts).
  it("security: takes the first admin token from EDGECONF_ADMIN_TOKEN and never echoes it", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-start-"));
    await seedDataDir(dataDir);
    try {
      const preset = "eca_preset-token-for-the-test-0123456789";
      const s = await npmStart({ EDGECONF_DATA_DIR: dataDir, DATABASE_URL: "", EDGECONF_ADMIN_TOKEN: preset });
      expect(s.output).toContain("admin token: EDGECONF_ADMIN_TOKEN taken as the first admin token (not printed)");
      expect(s.output).not.toContain(preset);
      const res = await fetch(`${s.url}/api/v1/bizs`, { headers: { authorization: `Bearer ${preset}` } });
      expect(res.status).toBe(200);
      await stop(s.proc);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("error: says in one line what to fix when the port is taken, the database cannot be reached or a setting is malformed", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-start-"));
    await seedDataDir(dataDir);
    try {
      const first = await npmStart({ EDGECONF_DATA_DIR: dataDir, DATABASE_URL: "" });
      const port = new URL(first.url).port;
      const other = path.join(dataDir, "other");
      const taken = await npmExit({ EDGECONF_DATA_DIR: other, DATABASE_URL: "", PORT: port });
      const apiTaken = await npmExit({ EDGECONF_DATA_DIR: other, DATABASE_URL: "", PORT: "0", EDGECONF_API_PORT: port });
      await stop(first.proc);
      expect(taken.code).toBe(1);
      expect(taken.output).toContain(`port ${port} on 127.0.0.1 is already in use: stop the other server or set PORT`);
      expect(apiTaken.code).toBe(1);
      expect(apiTaken.output).toContain(`port ${port} on 127.0.0.1 is already in use: stop the other server or set EDGECONF_API_PORT`);
      // Found before the data folder or the database was touched.
      expect(existsSync(other)).toBe(false);
      const noDb = await npmExit({ EDGECONF_DATA_DIR: dataDir, DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" });
      expect(noDb.code).toBe(1);
      expect(noDb.output).toMatch(/cannot open the database at DATABASE_URL: ECONNREFUSED/);
      const badPort = await npmExit({ EDGECONF_DATA_DIR: dataDir, DATABASE_URL: "", PORT: "eighty" });
      expect(badPort.code).toBe(1);
      expect(badPort.output).toMatch(/level=ERROR msg="PORT: /);
      for (const run of [taken, noDb, badPort]) expect(run.output).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/** `npm start` expected to fail: its exit code and everything it printed. */
function npmExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawn("npm", ["start", "--silent"], { cwd: repo, env: { ...process.env, HOST: "127.0.0.1", PORT: "0", ...env } });
  let output = "";
  proc.stdout!.on("data", (d) => (output += d));
  proc.stderr!.on("data", (d) => (output += d));
  return new Promise((resolve) => proc.on("exit", (code) => resolve({ code, output })));
}
