/**
 * The rollback after a refused post-script (`on_post_failure=rollback`) under faults: it is a second
 * transaction, and when its swap and then its undo fail, its journal must stay for the next start,
 * as the first transaction's does (design: "Agent safety invariants" 1, 2). The real runner against
 * a real server process, the fs seam failing a window of consecutive calls (test/agent/fault-seam.ts);
 * after the faulted apply and a restart on the plain fs: `files/` is exactly V1 or V2, the state
 * names that version, no journal and no temp file is left.
 */
import { cp, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobCache } from "../../agent/cache";
import { loadConfig } from "../../agent/config";
import { Fetcher } from "../../agent/download";
import { FeedClient } from "../../agent/feed";
import { nodeFsys, type Fsys } from "../../agent/fsys";
import { createLogger } from "../../agent/log";
import { Runner } from "../../agent/runner";
import { faulty } from "./fault-seam";
import { Admin, snapshot, startServer, tempDir, type ServerHandle } from "./harness";
import { expected, tempFilesLeft, V1, V2 } from "./versions";

const BIZ = 32;
const APP = "rollback_faults";

let work: Awaited<ReturnType<typeof tempDir>>;
let server: ServerHandle;
let token: string;
let manifests: { v1: unknown; v2: unknown; ids: [number, number] };

function runner(root: string, fsys: Fsys, onPostFailure: "rollback" | "report" = "rollback") {
  const config = loadConfig(new Map(), { biz: String(BIZ), app: APP, feed_addrs: server.url, token, temp_dir: root, uid: "rb", file_cache_dir: join(work.path, "cache"), on_post_failure: onPostFailure });
  const log = createLogger({ write: () => undefined });
  const feed = new FeedClient({ addrs: config.feedAddrs, token, biz: BIZ, uid: "rb", labels: {}, mode: "pull", log });
  const fetcher = new Fetcher({ feed, cache: new BlobCache(config.cacheDir, config.cacheThresholdBytes, true, log), concurrency: 4, log });
  return new Runner({ config, feed: { postEvent: async () => undefined }, fetcher, log, mode: "pull", fsys });
}

/** What is wrong with the service folder once the dust settled (empty when one whole version is there). */
async function wholeVersion(root: string): Promise<string[]> {
  const app = join(root, String(BIZ), APP);
  const canon = (x: Record<string, string>) => JSON.stringify(Object.entries(x).sort());
  const disk = canon(await snapshot(join(app, "files")));
  const [v1, v2] = manifests.ids;
  const version = disk === canon(expected(V1)) ? v1 : disk === canon(expected(V2)) ? v2 : null;
  const out: string[] = [];
  if (version === null) out.push(`files/ is neither V1 nor V2: ${disk}`);
  const state = JSON.parse(await readFile(join(app, ".edgeconf/state.json"), "utf8"));
  if (state.releaseId !== version) out.push(`state names ${state.releaseId}, disk holds ${version}`);
  if (await readFile(join(app, ".edgeconf/journal.json")).then(() => true, () => false)) out.push("journal left behind");
  const temps = await tempFilesLeft(app);
  if (temps.length) out.push(`temp files left behind: ${temps.join(", ")}`);
  return out;
}

let template: string;
let seq = 0;
/** A fresh temp_dir holding V1, applied for real once and copied. */
async function prepared(): Promise<string> {
  const root = join(work.path, `run-${++seq}`);
  await cp(template, root, { recursive: true, preserveTimestamps: true });
  return root;
}

beforeAll(async () => {
  work = await tempDir("edgeconf-rollback-faults-");
  server = await startServer({ dataDir: join(work.path, "server") });
  const admin = new Admin(server.url);
  await admin.biz(BIZ);
  await admin.service(BIZ, APP);
  token = await admin.agentToken(BIZ, ["*"]);
  const feed = new FeedClient({ addrs: [server.url], token, biz: BIZ, uid: "probe", labels: {}, mode: "pull", log: createLogger({ write: () => undefined }) });
  const publish = async (files: Record<string, [string, string]>, name: string, post: number, drop: string[] = []) => {
    await admin.hooks(BIZ, APP, null, post);
    for (const path of drop) await admin.removeFile(BIZ, APP, path);
    for (const [path, [content, privilege]] of Object.entries(files)) await admin.file(BIZ, APP, path, content, { privilege });
    const id = await admin.release(BIZ, APP, name);
    return { id, manifest: ((await feed.release(APP, { current: null, wait: 0 })) as { manifest: unknown }).manifest };
  };
  const ok = await admin.script(BIZ, "rb_ok", "shell", "#!/bin/bash\nexit 0\n");
  const refuses = await admin.script(BIZ, "rb_refuses", "shell", "#!/bin/bash\nexit 7\n");
  const one = await publish(V1, "V1", ok);
  const two = await publish(V2, "V2", refuses, ["/etc/old/gone.conf"]);
  manifests = { v1: one.manifest, v2: two.manifest, ids: [one.id, two.id] };
  template = join(work.path, "template");
  await mkdir(template, { recursive: true });
  const first = await runner(template, nodeFsys).apply(APP, manifests.v1);
  expect(first.status, first.message).toBe("SUCCESS");
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await work?.remove();
});

describe("rollback under faults", () => {
  it("error: whichever calls of the rollback fail (a window of 3: its swap and then its undo too), the next start leaves one whole version", async () => {
    // The calls of the apply alone (the rollback's come after them): faults.test.ts covers those.
    const reportOnly = await prepared();
    const applyOnly = faulty({ at: Number.POSITIVE_INFINITY });
    expect((await runner(reportOnly, applyOnly, "report").apply(APP, manifests.v2)).status).toBe("FAILED");
    await rm(reportOnly, { recursive: true, force: true });
    const root = await prepared();
    const counting = faulty({ at: Number.POSITIVE_INFINITY });
    const plain = await runner(root, counting).apply(APP, manifests.v2);
    expect(plain.status).toBe("FAILED");
    expect(plain.message).toMatch(/rolled back to V1/);
    expect(await wholeVersion(root)).toEqual([]);
    const total = counting.calls();
    await rm(root, { recursive: true, force: true });
    const bad: string[] = [];
    // Windows of 3 two calls apart cover every pair of consecutive calls (a swap's failing step and its undo's).
    for (let at = Math.max(0, applyOnly.calls() - 40); at < total; at += 2) {
      const root = await prepared();
      const outcome = await runner(root, faulty({ at, until: at + 3, errno: "EIO" })).apply(APP, manifests.v2);
      await runner(root, nodeFsys).start(APP);
      for (const v of await wholeVersion(root)) bad.push(`calls ${at}–${at + 2} failed (${outcome.status}: ${outcome.message}): ${v}`);
      await rm(root, { recursive: true, force: true });
    }
    expect(bad).toEqual([]);
  }, 300_000);
});
