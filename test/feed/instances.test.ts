import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { systemActor } from "../../functions/core/audit";
import { ensureFirstAdmin, revokeCredential } from "../../functions/core/credentials";
import { publishRelease } from "../../functions/core/publishes";
import { deleteService } from "../../functions/core/services";
import { openNodeDatabase } from "../../db/drivers/node";
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

/** A service made and its first version `name` published through `via`; `feed(query)` polls it on `on` with an agent token. */
async function published(via: Instance, on: Instance, app: string, name: string) {
  await seedService(via, biz, app, [{ path: `/etc/${app}.conf`, content: "1\n" }]);
  const v1 = await seedRelease(via, biz, app, name);
  await seedPublish(via, biz, app, v1.id);
  const token = (await agentToken(via, biz, [app], app)).token;
  return { v1, token, feed: (q: string) => on.call("GET", `/feed/v1/bizs/${biz}/apps/${app}/release?${q}`, undefined, { token }) };
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
    const { v1: old, feed } = await published(b, a, "service_gone", "OLD");
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

  it("instance B reopens its LISTEN connection when the server ends it, and takes the publish and the revocation it missed meanwhile", async () => {
    const { v1, feed: t1OnB } = await published(a, b, "service_cut", "V1");
    await a.call("PUT", `/api/v1/bizs/${biz}/apps/service_cut/files/content?path=/etc/service_cut.conf`, "2\n");
    const v2 = await seedRelease(a, biz, "service_cut", "V2");
    const t2 = await agentToken(a, biz, ["service_cut"], "cut-t2");
    const t2OnB = (q: string) => b.call("GET", `/feed/v1/bizs/${biz}/apps/service_cut/release?${q}`, undefined, { token: t2.token });
    const svc = (await a.call("GET", `/api/v1/bizs/${biz}/apps/service_cut`)).body;
    const waitingOnB = () => (b.deps.notifier as unknown as { waiting(id?: number): number }).waiting(svc.id);
    const held1 = t1OnB(`uid=c1&current=${v1.id}&wait=30`);
    const held2 = t2OnB(`uid=c2&current=${v1.id}&wait=30`);
    for (let i = 0; i < 2000 && waitingOnB() < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(waitingOnB()).toBe(2);
    // The server ends both instances' LISTEN connections (as a restart or an idle-connection killer would).
    const cut = (await a.deps.db.execute(
      sql`select pg_terminate_backend(pid) as ok from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%' and pid <> pg_backend_pid()`,
    )) as unknown as { rows: { ok: boolean }[] };
    expect(cut.rows.filter((r) => r.ok).length).toBeGreaterThanOrEqual(1);
    // Meanwhile A publishes V2 and revokes T2: B hears neither, and must take both once it is back.
    const [published2, revoked] = await Promise.all([seedPublish(a, biz, "service_cut", v2.id), a.call("DELETE", `/api/v1/credentials/${t2.id}`)]);
    expect(published2.id).toBeGreaterThan(0);
    expect(revoked.status).toBe(200);
    const r1 = await held1;
    expect(r1.status).toBe(200);
    expect(r1.body.release).toMatchObject({ id: v2.id, name: "V2" });
    // T2's poll ends 401, or, if it looked again before B took the revocation, was answered and any poll after is refused.
    const r2 = await held2;
    if (r2.status === 200) {
      expect(r2.body.release.name).toBe("V2");
      expect((await t2OnB(`uid=c2&current=${v2.id}&wait=30`)).status).toBe(401);
    } else expect(r2.status).toBe(401);
    expect((await t2OnB(`uid=c3&wait=0`)).status).toBe(401);
    const now = await t1OnB(`uid=c4&wait=0`);
    expect(now.status).toBe(200);
    expect(now.body.release.name).toBe("V2");
    expect((await t1OnB(`uid=c4&current=${v2.id}&wait=1`)).status).toBe(304);
    // B's LISTEN works again: a rollback to V1 on A wakes a poll held on B.
    const held = t1OnB(`uid=c5&current=${v2.id}&wait=30`);
    for (let i = 0; i < 2000 && waitingOnB() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(waitingOnB()).toBe(1);
    await seedPublish(a, biz, "service_cut", v1.id);
    const back = await held;
    expect(back.status).toBe(200);
    expect(back.body.release).toMatchObject({ id: v1.id, name: "V1" });
  });

  it("ends with 404 a poll instance B holds on a service deleted while B's LISTEN connection was down, and answers its name 404 after", async () => {
    const { v1, feed: onB } = await published(a, b, "service_cutgone", "V1");
    const svc = (await a.call("GET", `/api/v1/bizs/${biz}/apps/service_cutgone`)).body;
    const waitingOnB = () => (b.deps.notifier as unknown as { waiting(id?: number): number }).waiting(svc.id);
    const held = onB(`uid=cg1&current=${v1.id}&wait=30`);
    for (let i = 0; i < 2000 && waitingOnB() === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(waitingOnB()).toBe(1);
    await b.deps.db.execute(sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%' and pid <> pg_backend_pid()`);
    // B reopens its LISTEN connection 0.1 s after the loss at the earliest: the deletion falls in the gap.
    expect((await a.call("DELETE", `/api/v1/bizs/${biz}/apps/service_cutgone`)).status).toBe(200);
    expect((await held).status).toBe(404);
    expect((await onB(`uid=cg2&wait=0`)).status).toBe(404);
  });

  it("notices a LISTEN connection that died silently (its packets dropped, never closed), opens another and takes the publish it missed", async () => {
    // A loopback TCP proxy in front of PostgreSQL that can drop, without closing, the connection that
    // LISTENs: what a NAT or firewall forgetting an idle flow, or a partition, does.
    const pgUrl = new URL(db!.url);
    const flows: { listens: boolean; client: net.Socket; server: net.Socket }[] = [];
    const proxy = net.createServer((client) => {
      const server = net.connect(Number(pgUrl.port || 5432), pgUrl.hostname);
      const flow = { listens: false, client, server, dropped: false };
      flows.push(flow);
      client.on("data", (d) => {
        if (d.includes("LISTEN ")) flow.listens = true;
        if (!flow.dropped) server.write(d);
      });
      server.on("data", (d) => flow.dropped || client.write(d));
      const end = () => (client.destroy(), server.destroy());
      client.on("error", end).on("close", end);
      server.on("error", end).on("close", end);
      (flow as { drop?: () => void }).drop = () => (flow.dropped = true);
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const viaProxy = new URL(db!.url);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String((proxy.address() as net.AddressInfo).port);
    const blobs = await mkdtemp(path.join(os.tmpdir(), "edgeconf-blobs-"));
    dirs.push(blobs);
    process.env.EDGECONF_LISTEN_CHECK_SECONDS = "1";
    const c = await instance(viaProxy.toString(), blobs, () => admin).finally(() => delete process.env.EDGECONF_LISTEN_CHECK_SECONDS);
    try {
      const { v1, feed: onC } = await published(a, c, "service_silent", "V1");
      await a.call("PUT", `/api/v1/bizs/${biz}/apps/service_silent/files/content?path=/etc/service_silent.conf`, "2\n");
      const v2 = await seedRelease(a, biz, "service_silent", "V2");
      const svc = (await a.call("GET", `/api/v1/bizs/${biz}/apps/service_silent`)).body;
      const held = onC(`uid=s1&current=${v1.id}&wait=30`);
      const waitingOnC = () => (c.deps.notifier as unknown as { waiting(id?: number): number }).waiting(svc.id);
      for (let i = 0; i < 2000 && waitingOnC() === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(waitingOnC()).toBe(1);
      const listening = flows.filter((f) => f.listens);
      expect(listening.length).toBe(1);
      for (const f of listening) (f as { drop?: () => void }).drop!();
      await seedPublish(a, biz, "service_silent", v2.id);
      const r = await held;
      expect(r.status).toBe(200);
      expect(r.body.release).toMatchObject({ id: v2.id, name: "V2" });
      // A new LISTEN connection was opened through the proxy.
      expect(flows.filter((f) => f.listens).length).toBe(2);
    } finally {
      await c.runtime.close();
      proxy.close();
      for (const f of flows) f.client.destroy();
    }
  });

  it("takes the news from the commit itself: a server killed right after committing a publish, a revocation or a deletion, before any step after it, still reaches the polls held on A", async () => {
    // C stands for that server: it commits through the same core functions the routes call, and
    // nothing after (no announce): all A can hear is what the commit itself sends.
    const c = await openNodeDatabase({ databaseUrl: db!.url });
    try {
      const { v1, feed } = await published(b, a, "service_dead", "V1");
      const svc = (await b.call("GET", `/api/v1/bizs/${biz}/apps/service_dead`)).body;
      await b.call("PUT", `/api/v1/bizs/${biz}/apps/service_dead/files/content?path=/etc/service_dead.conf`, "2\n");
      const v2 = await seedRelease(b, biz, "service_dead", "V2");
      const waitingOnA = () => (a.deps.notifier as unknown as { waiting(id?: number): number }).waiting(svc.id);
      const heldBy = async (n: number) => {
        for (let i = 0; i < 2000 && waitingOnA() < n; i++) await new Promise((r) => setTimeout(r, 5));
        expect(waitingOnA()).toBe(n);
      };
      const held = feed(`uid=d1&current=${v1.id}&wait=30`);
      await heldBy(1);
      await publishRelease(c.db, systemActor, biz, svc.id, { versionId: v2.id }, new Date());
      const r = await held;
      expect(r.status).toBe(200);
      expect(r.body.release).toMatchObject({ id: v2.id, name: "V2" });

      const t = await agentToken(b, biz, ["service_dead"], "dead-revoked");
      const withT = (q: string) => a.call("GET", `/feed/v1/bizs/${biz}/apps/service_dead/release?${q}`, undefined, { token: t.token });
      expect((await withT(`uid=d2&current=${v2.id}&wait=0`)).status).toBe(304); // A has verified and cached it
      const heldWithT = withT(`uid=d2&current=${v2.id}&wait=30`);
      await heldBy(1);
      await revokeCredential(c.db, systemActor, t.id, new Date());
      expect((await heldWithT).status).toBe(401);
      expect((await withT(`uid=d2&wait=0`)).status).toBe(401);

      const heldOnGone = feed(`uid=d3&current=${v2.id}&wait=30`);
      await heldBy(1);
      await deleteService(c.db, systemActor, biz, "service_dead");
      expect((await heldOnGone).status).toBe(404);

      // Writes made outside edgeconf (psql): a token's scope narrowed reaches A's cached copy, and a
      // TRUNCATE, which names no rows, makes A read everything again.
      const { v1: t1, feed: onA } = await published(b, a, "service_psql", "T1");
      const scoped = await agentToken(b, biz, ["service_psql"], "psql-scoped");
      const withScoped = () => a.call("GET", `/feed/v1/bizs/${biz}/apps/service_psql/release?uid=p1&wait=0`, undefined, { token: scoped.token });
      expect((await withScoped()).status).toBe(200); // A has verified and cached it
      await c.db.execute(sql`update credentials set apps = '{nothing_matches}' where id = ${scoped.id}`);
      let status = 0;
      for (let i = 0; i < 100 && (status = (await withScoped()).status) !== 403; i++) await new Promise((r) => setTimeout(r, 20));
      expect(status).toBe(403);
      const psqlSvc = (await b.call("GET", `/api/v1/bizs/${biz}/apps/service_psql`)).body;
      const heldOnTruncated = onA(`uid=p2&current=${t1.id}&wait=30`);
      for (let i = 0; i < 2000 && (a.deps.notifier as unknown as { waiting(id?: number): number }).waiting(psqlSvc.id) === 0; i++) await new Promise((r) => setTimeout(r, 5));
      await c.db.execute(sql`truncate publishes cascade`);
      const truncated = await heldOnTruncated;
      expect(truncated.status).toBe(200);
      expect(truncated.body.release).toBeNull();
    } finally {
      await c.close();
    }
  });

  it("never sends a host back: instance B, whose publish list is behind a publish the host reports (currentPublish), reads it again", async () => {
    const { v1, feed: onB } = await published(a, b, "service_ahead", "V1");
    expect((await onB("uid=w&wait=0")).body.release.name).toBe("V1"); // B caches the list
    // B stops hearing A's notifies: its list stays behind, as it is for the moment a NOTIFY is on its way.
    await (b.deps.notifier as unknown as { close(): Promise<void> }).close();
    await a.call("PUT", `/api/v1/bizs/${biz}/apps/service_ahead/files/content?path=/etc/service_ahead.conf`, "2\n");
    const v2 = await seedRelease(a, biz, "service_ahead", "V2");
    const p2 = await seedPublish(a, biz, "service_ahead", v2.id);
    // The host applied V2 (brought by publish p2, through A) and polls B: B must not answer V1.
    const r = await onB(`uid=h&current=${v2.id}&currentPublish=${p2.id}&wait=0`);
    expect(r.status).toBe(304);
    expect(r.headers.get("etag")).toBe(`"r${v2.id}"`);
    // A host behind gets the release B has now read (V2), and a claim past anything the database
    // holds is never answered from a list older than it: V2 from a fresh read, or a 304 naming V1.
    const behind = await onB(`uid=h2&current=${v1.id}&wait=0`);
    expect(behind.body.release.name).toBe("V2");
    const forged = await onB(`uid=h3&current=${v1.id}&currentPublish=${p2.id + 1000}&wait=0`);
    if (forged.status === 200) expect(forged.body.release.name).toBe("V2");
    else expect([forged.status, forged.headers.get("etag")]).toEqual([304, `"r${v1.id}"`]);
  });
});
