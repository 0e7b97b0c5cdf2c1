/**
 * Mount points inside the service folder (design: "Agent safety invariants" 2; agent/mounts.ts).
 * Through the runner's seams (the mount table, `RunnerDeps.mountTable`, and the fs seam for
 * `st_dev`), so no root is needed: the real runner, fetcher and cache against a real server.
 * Where the tests run as root and `mount --bind` works, a real bind mount is also tried on the
 * agent process; elsewhere that case is skipped, saying why.
 */
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobCache } from "../../agent/cache";
import { loadConfig } from "../../agent/config";
import { Fetcher } from "../../agent/download";
import { FeedClient } from "../../agent/feed";
import { nodeFsys, type Fsys } from "../../agent/fsys";
import { createLogger } from "../../agent/log";
import type { MountTable } from "../../agent/mounts";
import { Runner } from "../../agent/runner";
import { AgentSuite, readLines, runAgent } from "./harness";

const BIZ = 15;
const APP = "mounts";
const suite = new AgentSuite(BIZ, "mounts");
let manifests: { v1: unknown; v2: unknown };
let seq = 0;

/** Can this process bind-mount (root with CAP_SYS_ADMIN)? Probed once on two fresh folders. */
function bindMountWorks(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = join(tmpdir(), `edgeconf-bind-probe-${process.pid}`);
  try {
    execFileSync("mkdir", ["-p", `${probe}/a`, `${probe}/b`]);
    execFileSync("mount", ["--bind", `${probe}/a`, `${probe}/b`], { stdio: "ignore" });
    execFileSync("umount", [`${probe}/b`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    execFileSync("rm", ["-rf", probe]);
  }
}
const CAN_BIND = bindMountWorks();

beforeAll(async () => {
  await suite.start();
  await suite.service(APP, { "/etc/app/a.conf": "a v1\n", "/etc/app/b.conf": "b v1\n" });
  const feed = new FeedClient({ addrs: [suite.server.url], token: suite.token, biz: BIZ, uid: "probe", labels: {}, mode: "pull", log: createLogger({ write: () => undefined }) });
  const manifest = async () => ((await feed.release(APP, { full: true, wait: 0 })) as { manifest: unknown }).manifest;
  await suite.admin.release(BIZ, APP, "V1");
  const v1 = await manifest();
  await suite.admin.file(BIZ, APP, "/etc/app/a.conf", "a v2\n");
  await suite.admin.release(BIZ, APP, "V2");
  manifests = { v1, v2: await manifest() };
}, 120_000);

afterAll(() => suite.stop());

function runner(root: string, seams: { mountTable?: MountTable; fsys?: Fsys }) {
  const config = loadConfig(new Map(), { biz: String(BIZ), app: APP, feed_addrs: suite.server.url, token: suite.token, temp_dir: root, uid: "mounts", file_cache_dir: join(suite.work.path, "cache") });
  const log = createLogger({ write: () => undefined });
  const feed = new FeedClient({ addrs: config.feedAddrs, token: suite.token, biz: BIZ, uid: "mounts", labels: {}, mode: "pull", log });
  const fetcher = new Fetcher({ feed, cache: new BlobCache(config.cacheDir, config.cacheThresholdBytes, true, log), concurrency: 2, log });
  return new Runner({ config, feed: { postEvent: async () => undefined }, fetcher, log, mode: "pull", ...seams });
}

/** A temp_dir with V1 applied; `app` is the service folder, `real` its real path. */
async function v1Applied(): Promise<{ root: string; app: string; real: string }> {
  const root = join(suite.work.path, `run-${++seq}`);
  await mkdir(root);
  const first = await runner(root, {}).apply(APP, manifests.v1);
  expect(first.status, first.message).toBe("SUCCESS");
  const app = join(root, String(BIZ), APP);
  return { root, app, real: await realpath(app) };
}

/** A mountinfo line (proc(5)) mounting something at `point`, escaped as the kernel does. */
const line = (id: number, point: string) => `${id} 1 0:${40 + id} / ${point.replace(/ /g, "\\040")} rw,relatime shared:1 - ext4 /dev/vdb rw`;
const table = (...points: string[]): MountTable => async () => ["22 1 0:21 / /proc rw - proc proc rw", ...points.map((p, i) => line(100 + i, p))].join("\n") + "\n";

async function stillV1(app: string) {
  expect(await readFile(join(app, "files/etc/app/a.conf"), "utf8")).toBe("a v1\n");
  expect(JSON.parse(await readFile(join(app, ".edgeconf/state.json"), "utf8")).releaseName).toBe("V1");
}

describe("mount points in the service folder (through the seams)", () => {
  it("security: a folder below files/ that the mount table names: FAILED naming it, V1 kept", async () => {
    const { app, real } = await v1Applied();
    const outcome = await runner(join(app, "../.."), { mountTable: table("/", join(real, "files/etc/app")) }).apply(APP, manifests.v2);
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toBe(`${join(app, "files/etc/app")} is a mount point (a bind mount or another filesystem); the agent does not follow it (refused before anything was changed there)`);
    await stillV1(app);
  });

  it("security: a mount point whose path has a space (escaped \\040), under .edgeconf/: FAILED naming it", async () => {
    const { app, real } = await v1Applied();
    await mkdir(join(app, ".edgeconf/with space"));
    const outcome = await runner(join(app, "../.."), { mountTable: table(join(real, ".edgeconf/with space")) }).apply(APP, manifests.v2);
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toContain(`${join(app, ".edgeconf/with space")} is a mount point`);
    await stillV1(app);
  });

  it("happy: mounts at or above the service folder, beside it, or at a file (written in place) do not refuse", async () => {
    const { app, real } = await v1Applied();
    const mounts = table("/", join(real, "../.."), real, `${real}-other/files`, join(real, "files/etc/app/b.conf"));
    const outcome = await runner(join(app, "../.."), { mountTable: mounts }).apply(APP, manifests.v2);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await readFile(join(app, "files/etc/app/a.conf"), "utf8")).toBe("a v2\n");
  });

  it("security: without a mount table, a folder on another device (st_dev) than its parent: FAILED naming it", async () => {
    const { app } = await v1Applied();
    const target = join(app, "files/etc");
    // The fs seam reports files/etc on another device, as a mount of another filesystem would be.
    const fsys: Fsys = {
      ...nodeFsys,
      lstat: async (path) => {
        const stats = await nodeFsys.lstat(path);
        return path === target ? Object.assign(Object.create(Object.getPrototypeOf(stats)), stats, { dev: stats.dev + 1 }) : stats;
      },
    };
    const outcome = await runner(join(app, "../.."), { mountTable: async () => null, fsys }).apply(APP, manifests.v2);
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toContain(`${target} is a mount point`);
    await stillV1(app);
    const plain = await runner(join(app, "../.."), { mountTable: async () => null }).apply(APP, manifests.v2);
    expect(plain.status, plain.message).toBe("SUCCESS");
  });
});

describe("a real bind mount (agent process)", () => {
  const why = CAN_BIND ? "" : " [skipped: needs root and a working `mount --bind`, which this environment lacks]";
  it.skipIf(!CAN_BIND)(`security: a folder elsewhere bind-mounted at files/etc/app: pull exits 1 naming it, the folder elsewhere unchanged${why}`, async () => {
    const app = "bound";
    await suite.service(app, { "/etc/app/a.conf": "a v1\n" });
    await suite.admin.release(BIZ, app, "V1");
    const { env, appDir } = await suite.agentEnv([app]);
    expect((await runAgent(suite.agent, ["pull"], env)).code).toBe(0);
    const outside = await mkdtemp(join(suite.work.path, "outside-"));
    await writeFile(join(outside, "a.conf"), "outside\n");
    const point = join(appDir(app), "files/etc/app");
    execFileSync("mount", ["--bind", outside, point]);
    try {
      await suite.admin.file(BIZ, app, "/etc/app/a.conf", "a v2\n");
      const v2 = await suite.admin.release(BIZ, app, "V2");
      const run = await runAgent(suite.agent, ["pull"], env);
      expect(run.code, run.output).toBe(1);
      expect(run.output).toContain(`${point} is a mount point`);
      expect(await readFile(join(outside, "a.conf"), "utf8")).toBe("outside\n");
      expect((await readLines(join(appDir(app), "metadata.json"))).at(-1)).toMatchObject({ releaseID: v2, status: "FAILED" });
    } finally {
      execFileSync("umount", [point]);
      await rm(outside, { recursive: true, force: true });
    }
  }, 60_000);
});
