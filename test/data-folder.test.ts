/**
 * The embedded data folder as the server process leaves it on disk: owner-only (issue 10, item 2)
 * and held by one process at a time (item 3). Real processes, real files.
 */
import { chmod, lstat, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// Each test starts several server processes (npm, tsx, PGlite): minutes on a loaded 2-core machine.
vi.setConfig({ testTimeout: 180_000 });
import { runToExit, startServer } from "./helpers/server";

/** Every folder and file under `dir` with its permission bits (symlinks skipped). */
async function tree(dir: string): Promise<{ path: string; dir: boolean; mode: number }[]> {
  const out: { path: string; dir: boolean; mode: number }[] = [];
  const visit = async (p: string) => {
    const st = await lstat(p);
    if (st.isSymbolicLink()) return;
    out.push({ path: p, dir: st.isDirectory(), mode: st.mode & 0o777 });
    if (st.isDirectory()) for (const name of await readdir(p)) await visit(path.join(p, name));
  };
  await visit(dir);
  return out;
}
const open = <T extends { mode: number }>(entries: T[]) => entries.filter((e) => e.mode & 0o077);

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "edgeconf-datadir-"));
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("data folder: private", () => {
  it("security: folders are 0700 and files 0600, PGlite's own files, the key and the blobs included", async () => {
    const dataDir = path.join(root, "fresh", ".edgeconf");
    // An empty folder: the server creates the database itself (the other tests start from the template's copy).
    const s = await startServer({ dataDir, fresh: true });
    try {
      const auth = { authorization: `Bearer ${s.adminToken}` };
      expect((await fetch(`${s.url}/api/v1/bizs`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ id: 10, name: "demo" }) })).status).toBe(201);
      expect((await fetch(`${s.url}/api/v1/bizs/10/blobs`, { method: "PUT", headers: auth, body: "blob content\n" })).status).toBeLessThan(300);
      const entries = await tree(dataDir);
      expect(entries.filter((e) => e.path.includes(`${path.sep}pg${path.sep}`) && !e.dir).length).toBeGreaterThan(100);
      expect(entries.some((e) => e.path.includes(`${path.sep}blobs${path.sep}`) && !e.dir)).toBe(true);
      expect(entries.some((e) => e.path.endsWith("secret.key"))).toBe(true);
      expect(open(entries).map((e) => `${e.mode.toString(8)} ${e.path}`)).toEqual([]);
      expect(entries.find((e) => e.path === dataDir)!.mode).toBe(0o700);
    } finally {
      await s.stop();
    }
  });

  it("security: an existing folder left open is tightened at start, with one log line saying what changed", async () => {
    const dataDir = path.join(root, "open", ".edgeconf");
    const first = await startServer({ dataDir });
    await first.stop();
    // server.lock, when the first server left it (killed after 10 s of SIGTERM on a loaded machine),
    // is taken over by the next start before it tightens anything: it is a new file then.
    const before = (await tree(dataDir)).filter((e) => path.basename(e.path) !== "server.lock");
    for (const e of before) await chmod(e.path, e.dir ? 0o755 : 0o666);
    const s = await startServer({ dataDir });
    try {
      const lines = s.output().split("\n").filter((l) => l.includes("made owner-only"));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/level=WARN .* folders=\d+ files=\d+/);
      const counted = /folders=(\d+) files=(\d+)/.exec(lines[0])!;
      expect(Number(counted[1])).toBe(before.filter((e) => e.dir).length);
      expect(Number(counted[2])).toBe(before.filter((e) => !e.dir).length);
      expect(open(await tree(dataDir))).toEqual([]);
    } finally {
      await s.stop();
    }
  });
});

describe("data folder: one process at a time", () => {
  it("error: a second server on the same folder refuses in one line naming the holder's pid, and exits 1", async () => {
    const dataDir = path.join(root, "locked", ".edgeconf");
    const s = await startServer({ dataDir });
    try {
      const second = await runToExit({ dataDir });
      expect(second.code).toBe(1);
      const lines = second.output.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`is in use by process ${s.pid} (npm start)`);
      const token = await runToExit({ dataDir, script: "tools/create-admin-token.ts" });
      expect(token.code).toBe(1);
      expect(token.output.trim()).toContain(`is in use by process ${s.pid} (npm start)`);
      // The holder is unharmed.
      expect((await fetch(`${s.url}/api/v1/bizs`, { headers: { authorization: `Bearer ${s.adminToken}` } })).status).toBe(200);
    } finally {
      await s.stop();
    }
    const lock = await readFile(path.join(dataDir, "server.lock"), "utf8").catch(() => "released");
    expect(lock).toBe("released");
  });

  it("takes over the lock of a server that was killed (stale pid), saying so, and keeps its data", async () => {
    const dataDir = path.join(root, "stale", ".edgeconf");
    const first = await startServer({ dataDir });
    const auth = { authorization: `Bearer ${first.adminToken}`, "content-type": "application/json" };
    expect((await fetch(`${first.url}/api/v1/bizs`, { method: "POST", headers: auth, body: JSON.stringify({ id: 10, name: "demo" }) })).status).toBe(201);
    process.kill(first.pid, "SIGKILL");
    await first.stop();
    expect(JSON.parse(await readFile(path.join(dataDir, "server.lock"), "utf8")).pid).toBe(first.pid);
    const second = await startServer({ dataDir, adminToken: first.adminToken });
    try {
      expect(second.output()).toMatch(new RegExp(`level=WARN msg="took over a stale data folder lock" .*stalePid=${first.pid}`));
      const bizs = await (await fetch(`${second.url}/api/v1/bizs`, { headers: auth })).json();
      expect(bizs.items.map((b: { id: number }) => b.id)).toEqual([10]);
    } finally {
      await second.stop();
    }
  });
});
