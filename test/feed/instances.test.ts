import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { systemActor } from "../../functions/core/audit";
import { ensureFirstAdmin } from "../../functions/core/credentials";
import { buildNodeRuntime, type NodeRuntime } from "../../functions/node/deps";
import { callJson, nodeOnly, testRuntime } from "../helpers/app";
import { createTestDatabase } from "../helpers/database";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

/**
 * Two server instances (two runtimes, each with its own pool and LISTEN connection) on one Postgres
 * database: a long-poll held by A wakes when B publishes. PGlite is one process, so this needs Postgres.
 */
const noPostgres = !process.env.DATABASE_URL;
if (noPostgres && testRuntime === "node") console.log("skipped: two instances on one database need Postgres (set DATABASE_URL); PGlite is single-process");
const skip = noPostgres || nodeOnly("builds two Node runtimes");

type Instance = { runtime: NodeRuntime; call: (m: string, p: string, b?: unknown, o?: { token?: string | null }) => ReturnType<typeof callJson>; deps: NodeRuntime["deps"] };
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dirs: string[] = [];
let a: Instance;
let b: Instance;
const biz = 10;

/** Both instances share the blob folder, as they would share a bucket. */
async function instance(url: string, blobDir: string, adminToken: () => string): Promise<Instance> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-inst-"));
  dirs.push(dir);
  const runtime = await buildNodeRuntime({ databaseUrl: url, dataDir: dir, blobDir, secretKey: "shared-secret-key-for-both" });
  const app = createApp(runtime.deps);
  return { runtime, deps: runtime.deps, call: (m, p, body, o) => callJson((p2, init) => Promise.resolve(app.request(p2, init)), adminToken(), m, p, body, o) };
}

let admin = "";
beforeAll(async () => {
  if (skip) return;
  db = await createTestDatabase();
  const blobs = await mkdtemp(path.join(os.tmpdir(), "edgeconf-blobs-"));
  dirs.push(blobs);
  a = await instance(db!.url, blobs, () => admin);
  b = await instance(db!.url, blobs, () => admin);
  admin = (await ensureFirstAdmin(a.deps.db, systemActor))!;
});
afterAll(async () => {
  await a?.runtime.close();
  await b?.runtime.close();
  await db?.drop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(skip)("wake-up across instances (Postgres LISTEN/NOTIFY)", () => {
  it("wakes a long-poll held by instance A when instance B publishes", async () => {
    expect((await b.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
    await seedService(b, biz, "service_demo", [{ path: "/etc/demo.conf", content: "v=1\n" }]);
    const v1 = await seedRelease(b, biz, "service_demo", "V1");
    await seedPublish(b, biz, "service_demo", v1.id);
    const token = (await agentToken(b, biz, ["service_*"])).token;
    const held = a.call("GET", `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=h1&current=${v1.id}&wait=60`, undefined, { token });
    const waitingOnA = () => (a.deps.notifier as unknown as { waiting(): number }).waiting();
    for (let i = 0; i < 2000 && waitingOnA() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(waitingOnA()).toBe(1);
    const v2 = await seedRelease(b, biz, "service_demo", "V2");
    await seedPublish(b, biz, "service_demo", v2.id);
    const r = await held;
    expect(r.status).toBe(200);
    expect(r.body.release).toMatchObject({ id: v2.id, name: "V2" });
    expect(waitingOnA()).toBe(0);
  });

  it("ends a poll held by instance A when instance B revokes its token, and A refuses the token from then on", async () => {
    const s = await b.call("GET", `/api/v1/bizs/${biz}/apps/service_demo`);
    const current = (await a.call("GET", `/feed/v1/bizs/${biz}/apps/service_demo/release?wait=0`, undefined, { token: admin })).body.release.id;
    const t = await agentToken(b, biz, ["service_*"], "revoked-across");
    // A has verified (and cached) the token before the poll is held.
    expect((await a.call("GET", `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=x1&current=${current}&wait=0`, undefined, { token: t.token })).status).toBe(304);
    const held = a.call("GET", `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=x1&current=${current}&wait=60`, undefined, { token: t.token });
    const waitingOnA = () => (a.deps.notifier as unknown as { waiting(id?: number): number }).waiting(s.body.id);
    for (let i = 0; i < 2000 && waitingOnA() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect((await b.call("DELETE", `/api/v1/credentials/${t.id}`)).status).toBe(200);
    const r = await held;
    expect(r.status).toBe(401);
    expect((await a.call("GET", `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=x1&wait=0`, undefined, { token: t.token })).status).toBe(401);
  });

  it("ends a poll held by instance A when instance B deletes its service, and A serves the service created again under that name", async () => {
    await seedService(b, biz, "service_gone", [{ path: "/etc/gone.conf", content: "old\n" }]);
    const old = await seedRelease(b, biz, "service_gone", "OLD");
    await seedPublish(b, biz, "service_gone", old.id);
    const token = (await agentToken(b, biz, ["service_gone"], "gone-across")).token;
    const feed = (q: string) => a.call("GET", `/feed/v1/bizs/${biz}/apps/service_gone/release?${q}`, undefined, { token });
    // A caches the service, its publish list and its manifest.
    expect((await feed("uid=g0&wait=0")).body.release.name).toBe("OLD");
    const held = feed(`uid=g1&current=${old.id}&wait=60`);
    const waitingOnA = () => (a.deps.notifier as unknown as { waiting(): number }).waiting();
    for (let i = 0; i < 2000 && waitingOnA() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect((await b.call("DELETE", `/api/v1/bizs/${biz}/apps/service_gone`)).status).toBe(200);
    expect((await held).status).toBe(404);
    await seedService(b, biz, "service_gone", [{ path: "/etc/gone.conf", content: "new\n" }]);
    const fresh = await seedRelease(b, biz, "service_gone", "NEW");
    await seedPublish(b, biz, "service_gone", fresh.id);
    const r = await feed(`uid=g2&current=${old.id}&wait=0`);
    expect(r.status).toBe(200);
    expect(r.body.release.name).toBe("NEW");
  });
});
