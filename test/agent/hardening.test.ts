/**
 * What a business container sharing `{temp_dir}` can plant, and the agent must not follow or
 * write through (docs/agent.md, "Shared temp_dir"): a cache folder swapped for a link after
 * start, hard links at metadata.json and at a partial download, a FIFO at a cache entry, a
 * download cut mid-way (resumed with Range, not restarted), and folders Node's recursive mkdir
 * never finishes creating (/proc). The built agent against a real server, except the cache
 * swap, which runs the cache in-process (its cleanup runs every 5 minutes in `watch`).
 * Waits are bounded only so a hang fails the test instead of the run; nothing asserts a time.
 */
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { link, lstat, mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobCache, ensurePrivateDir } from "../../agent/cache";
import { createLogger } from "../../agent/log";
import { AgentSuite, sha256, startAgent, startProxy, type AgentRun } from "./harness";

const BIZ = 41;
const suite = new AgentSuite(BIZ, "hardening");
const exists = (path: string) => lstat(path).then(() => true, () => false);

beforeAll(() => suite.start(), 180_000);
afterAll(() => suite.stop());

/** Runs the agent; after `ms` a hung agent is killed and the run answers code null. */
async function bounded(env: Record<string, string>, args = ["pull"], ms = 90_000): Promise<AgentRun> {
  const proc = startAgent(suite.agent, args, env);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  const run = await Promise.race([proc.exited, hung]);
  clearTimeout(timer);
  if (run) return run;
  const killed = await proc.stop("SIGKILL");
  return { code: null, output: killed.output };
}

/** A service whose one file (3 MiB, random) goes through a partial download file; released. */
async function bigService(app: string): Promise<Buffer> {
  const big = randomBytes(3 << 20);
  await suite.admin.service(BIZ, app);
  await suite.admin.file(BIZ, app, "/data/big.bin", big);
  await suite.admin.release(BIZ, app, "v1");
  return big;
}

describe("agent hardening against a shared temp_dir", () => {
  it("cache cleanup and eviction refuse a cache folder swapped for a link after start, with one warning", async () => {
    const root = join(suite.work.path, "cache-swap");
    const dir = join(root, "cache");
    const victim = join(root, "victim");
    const precious = join(victim, "a".repeat(64));
    await mkdir(victim, { recursive: true });
    await writeFile(precious, "precious");
    const lines: string[] = [];
    // Threshold 1 byte: every cleanup removes every entry it sees.
    const cache = new BlobCache(dir, 1, true, createLogger({ write: (l) => lines.push(l) }));
    await ensurePrivateDir(dir);
    const blob = Buffer.from("blob");
    expect(await cache.put(sha256(blob), blob)).not.toBeNull();
    expect((await cache.cleanup()).removed).toBe(1);

    await rename(dir, `${dir}.real`);
    await symlink(victim, dir);
    await cache.cleanup();
    await cache.cleanup();
    expect(await cache.evict(1 << 30)).toBe(0);
    expect(await cache.get("a".repeat(64))).toBeNull();
    expect(await readFile(precious, "utf8")).toBe("precious");
    const warnings = lines.filter((l) => l.includes("cache folder refused"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(dir);
    await cache.close();
  });

  for (const which of ["service", "shared"] as const) {
    it(`a hard link at the ${which} metadata.json is refused, naming it; the outside file is unchanged`, async () => {
      const app = `meta-${which}`;
      await suite.service(app, { "/etc/a.conf": "one\n" });
      await suite.admin.release(BIZ, app, "v1");
      const { dir, env, appDir } = await suite.agentEnv([app]);
      expect((await bounded(env)).code).toBe(0);
      const target = which === "service" ? join(appDir(app), "metadata.json") : join(dir, "metadata.json");
      const outside = join(suite.work.path, `outside-${which}`);
      await writeFile(outside, "outside\n");
      await rm(target);
      await link(outside, target); // ln -f outside target

      await suite.admin.file(BIZ, app, "/etc/a.conf", "two\n");
      await suite.admin.release(BIZ, app, "v2");
      const run = await bounded(env);
      expect(await readFile(outside, "utf8")).toBe("outside\n");
      expect(run.output).toContain(`${target} is a file with 2 hard links`);
    }, 120_000);
  }

  it("a hard link planted at a partial download is not written through; the blob still arrives", async () => {
    const app = "partial-link";
    const big = await bigService(app);
    const { dir, env, appDir } = await suite.agentEnv([app]);
    const outside = join(suite.work.path, "outside-partial");
    await writeFile(outside, "outside\n");
    await mkdir(join(dir, "cache", ".partial"), { recursive: true });
    await link(outside, join(dir, "cache", ".partial", `${sha256(big)}.partial`));

    const run = await bounded(env);
    expect(run.code, run.output).toBe(0);
    expect(await readFile(outside, "utf8")).toBe("outside\n");
    expect(sha256(await readFile(join(appDir(app), "files", "data", "big.bin")))).toBe(sha256(big));
  }, 120_000);

  it("a FIFO at a needed cache entry neither hangs the pull nor stays", async () => {
    const app = "fifo";
    const content = "needed from the cache\n";
    await suite.service(app, { "/etc/f.conf": content });
    await suite.admin.release(BIZ, app, "v1");
    const { dir, env, appDir } = await suite.agentEnv([app]);
    const entry = join(dir, "cache", sha256(content));
    await mkdir(join(dir, "cache"), { recursive: true });
    execFileSync("mkfifo", [entry]);

    const run = await bounded(env);
    expect(run.code, run.output).toBe(0);
    expect(await readFile(join(appDir(app), "files", "etc", "f.conf"), "utf8")).toBe(content);
    const now = await lstat(entry).catch(() => null);
    expect(now === null || now.isFile()).toBe(true);
  }, 120_000);

  it("a download cut mid-way is resumed with Range, not restarted", async () => {
    const app = "resume";
    const big = await bigService(app);
    const proxy = await startProxy(suite.server.url, { cutBlobAfter: (_sha, earlier) => (earlier === 0 ? 1 << 20 : null) });
    try {
      const { env, appDir } = await suite.agentEnv([app], {}, proxy.addr);
      const run = await bounded(env);
      expect(run.code, run.output).toBe(0);
      expect(sha256(await readFile(join(appDir(app), "files", "data", "big.bin")))).toBe(sha256(big));
      const ranges = proxy.ranges.get(sha256(big)) ?? [];
      expect(ranges[0]).toBeUndefined();
      expect(ranges[1]).toMatch(/^bytes=[1-9]\d*-$/);
    } finally {
      await proxy.close();
    }
  }, 120_000);

  for (const [setting, path] of [
    ["temp_dir", "/proc/edgeconf-nope"],
    ["file_cache_dir", "/proc/edgeconf-x"],
  ] as const) {
    it(`${setting}=${path} exits 5 with one line naming it (no endless mkdir)`, async () => {
      const { env } = await suite.agentEnv(["any"], { [setting]: path });
      const run = await bounded(env, ["pull"], 60_000);
      expect(run.code, run.output).toBe(5);
      expect(run.output.split("\n").filter((l) => l.includes(path)).length).toBeGreaterThanOrEqual(1);
    }, 90_000);
  }
});
