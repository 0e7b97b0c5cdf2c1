/**
 * The Worker's long-poll wake-up: a Durable Object per service holds the waiting requests.
 * Runs in the worker pass (EDGECONF_TEST_RUNTIME=worker, DATABASE_URL set); the in-process checks of
 * the object's own logic and of the bundle run on every pass.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReleaseWaiters } from "../../functions/adapters/release-waiters-do";
import { createTestApi, testRuntime, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";
import { bundleWorker } from "../helpers/worker";

const inWorkerPass = testRuntime === "worker" && !!process.env.DATABASE_URL;
if (!inWorkerPass) console.log("skipped: the workerd tests of test/worker run in the worker pass (EDGECONF_TEST_RUNTIME=worker DATABASE_URL=...)");

const biz = 10;
let api: TestApi;
let agent: string;
const svc: Record<string, { id: number; v1: number }> = {};

beforeAll(async () => {
  if (!inWorkerPass) return;
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  for (const name of ["service_a", "service_b"]) {
    const s = await seedService(api, biz, name, [{ path: "/etc/app.conf", content: `${name}=1\n` }]);
    const v1 = await seedRelease(api, biz, name, "V1");
    await seedPublish(api, biz, name, v1.id);
    svc[name] = { id: s.id, v1: v1.id };
  }
  agent = (await agentToken(api, biz, ["service_*"])).token;
});
afterAll(() => api?.close());

const poll = (app: string, query: string, signal?: AbortSignal) =>
  api.request(`/feed/v1/bizs/${biz}/apps/${app}/release?${query}`, { headers: { authorization: `Bearer ${agent}` }, signal });

async function until(cond: () => Promise<boolean>) {
  for (let i = 0; i < 2000 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
}

describe.skipIf(!inWorkerPass)("worker: long-polls held by the Durable Object", () => {
  it("holds a poll in the service's Durable Object and wakes it on publish, leaving no waiter", async () => {
    const held = poll("service_a", `uid=h1&current=${svc.service_a.v1}&wait=30`);
    await until(async () => (await api.waiting(svc.service_a.id)) === 1);
    expect(await api.waiting(svc.service_a.id)).toBe(1);
    const v2 = await seedRelease(api, biz, "service_a", "V2");
    await seedPublish(api, biz, "service_a", v2.id);
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe(`"r${v2.id}"`);
    expect(((await res.json()) as any).release).toMatchObject({ id: v2.id, name: "V2" });
    expect(await api.waiting(svc.service_a.id)).toBe(0);
    svc.service_a.v1 = v2.id;
  });

  it("keeps one object per service: a publish to one service leaves the other's polls held", async () => {
    const other = poll("service_b", `uid=b1&current=${svc.service_b.v1}&wait=2`);
    await until(async () => (await api.waiting(svc.service_b.id)) === 1);
    const v3 = await seedRelease(api, biz, "service_a", "V3");
    await seedPublish(api, biz, "service_a", v3.id);
    svc.service_a.v1 = v3.id;
    expect(await api.waiting(svc.service_b.id)).toBe(1);
    expect((await other).status).toBe(304);
    expect(await api.waiting(svc.service_b.id)).toBe(0);
  });

  it("drops the waiter of a client that disconnects", async () => {
    // The agent gives up from inside workerd (see TestWorker.abandon): the Worker's request signal
    // aborts, the feed cancels its call to the Durable Object, and the object lets the waiter go.
    const path = `/feed/v1/bizs/${biz}/apps/service_a/release?uid=gone&current=${svc.service_a.v1}&wait=60`;
    const seen = await api.worker!.abandon(path, { headers: { authorization: `Bearer ${agent}` }, serviceId: svc.service_a.id });
    expect(seen).toMatchObject({ before: 0, held: 1, after: 0, outcome: "aborted" });
    expect(await api.waiting(svc.service_a.id)).toBe(0);
  });

  it("lets a fleet reconnecting at once share its reads: a handful of database connections, not one per agent", async () => {
    // Each agent's first poll needs the token, the service, the publish list and the manifest; one
    // request per isolate reads each while the others wait for the cache (core/single-flight.ts).
    const n = 200;
    const fleet = await seedService(api, biz, "service_fleet", [{ path: "/etc/fleet.conf", content: "v=1\n" }]);
    const v1 = await seedRelease(api, biz, "service_fleet", "V1");
    await seedPublish(api, biz, "service_fleet", v1.id);
    const before = api.worker!.proxy.connections;
    const polls = Array.from({ length: n }, (_, i) => poll("service_fleet", `uid=fleet-${i}&current=${v1.id}&wait=30`));
    await until(async () => (await api.waiting(fleet.id)) >= n);
    expect(await api.waiting(fleet.id)).toBe(n);
    const opened = api.worker!.proxy.connections - before;
    const v2 = await seedRelease(api, biz, "service_fleet", "V2");
    await seedPublish(api, biz, "service_fleet", v2.id);
    expect((await Promise.all(polls)).map((r) => r.status)).toEqual(Array(n).fill(200));
    // A fleet coming back after a publish it missed must be answered at once, from a read that
    // started after each poll arrived: those reads are shared too.
    const v3 = await seedRelease(api, biz, "service_fleet", "V3");
    await seedPublish(api, biz, "service_fleet", v3.id);
    const beforeAnswers = api.worker!.proxy.connections;
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => poll("service_fleet", `uid=fleet-${i}&current=${v2.id}&wait=30`)));
    expect(answers.map((r) => r.status)).toEqual(Array(n).fill(200));
    expect(new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as any).release.id)))).toEqual(new Set([v3.id]));
    expect(api.worker!.proxy.connections - beforeAnswers).toBeLessThan(n / 4);
    // One per agent before (200 to 800); now the four reads plus batched sightings, with room for a
    // loaded machine where a slow leader lets some followers read for themselves.
    expect(opened).toBeLessThan(n / 4);
  });

  it("answers 304 with the same ETag when the wait runs out, and the object lets the waiter go", async () => {
    const res = await poll("service_b", `uid=b2&current=${svc.service_b.v1}&wait=1`);
    expect(res.status).toBe(304);
    expect(res.headers.get("etag")).toBe(`"r${svc.service_b.v1}"`);
    expect(await api.waiting(svc.service_b.id)).toBe(0);
  });
});

describe("worker: the Durable Object's own logic (in process)", () => {
  const call = (o: ReleaseWaiters, path: string, init?: RequestInit) => o.fetch(new Request(`https://release-waiters${path}`, init));

  it("wakes every waiter on notify and counts them while held", async () => {
    const o = new ReleaseWaiters();
    const a = call(o, "/wait?ms=60000");
    const b = call(o, "/wait?ms=60000");
    expect(await (await call(o, "/waiters")).json()).toEqual({ waiters: 2 });
    expect(await (await call(o, "/notify", { method: "POST" })).json()).toEqual({ woken: 2 });
    expect((await (await a).text()).split(":")[0]).toBe("notified");
    expect((await (await b).text()).split(":")[0]).toBe("notified");
    expect(await (await call(o, "/waiters")).json()).toEqual({ waiters: 0 });
  });

  it("answers at once when a notify came after `since` (a publish racing the feed's read is not lost)", async () => {
    const o = new ReleaseWaiters();
    const before = Date.now();
    await call(o, "/notify", { method: "POST" });
    const [state, last] = (await (await call(o, `/wait?ms=60000&since=${before}`)).text()).split(":");
    expect(state).toBe("notified");
    const timedOut = (await (await call(o, `/wait?ms=1&since=${Number(last) + 1}`)).text()).split(":")[0];
    expect(timedOut).toBe("timeout");
  });

  it("drops a waiter whose request is aborted", async () => {
    const o = new ReleaseWaiters();
    const controller = new AbortController();
    const held = call(o, "/wait?ms=60000", { signal: controller.signal });
    expect(await (await call(o, "/waiters")).json()).toEqual({ waiters: 1 });
    controller.abort();
    expect((await (await held).text()).split(":")[0]).toBe("timeout");
    expect(await (await call(o, "/waiters")).json()).toEqual({ waiters: 0 });
  });

  it("hands the newest publish list to the polls it wakes, whatever order concurrent notifies arrive in", async () => {
    const o = new ReleaseWaiters();
    const news = (id: number) => JSON.stringify([{ id, releaseId: id, groups: [], createdAt: new Date(0).toISOString() }]);
    const notify = (id: number) => call(o, "/notify", { method: "POST", body: news(id), headers: { "x-news-version": String(id) } });
    const first = call(o, "/wait?ms=60000");
    await notify(7);
    expect(await (await first).text()).toMatch(new RegExp(`^notified:\\d+\n${news(7).replace(/[[\]{}()]/g, "\\$&")}$`));
    // A slower publisher's older list arrives after a newer one: the newer one is kept.
    const second = call(o, "/wait?ms=60000");
    await notify(6);
    expect((await (await second).text()).split("\n")[1]).toBe(news(7));
    const third = call(o, "/wait?ms=60000");
    await notify(8);
    expect((await (await third).text()).split("\n")[1]).toBe(news(8));
  });

  it("refuses unknown paths with a 404 error body", async () => {
    const res = await call(new ReleaseWaiters(), "/nope");
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe("not_found");
  });
});

describe("worker: the bundle", () => {
  it("bundles the Worker entry with no node:* import (nothing needs nodejs_compat)", async () => {
    const { script } = await bundleWorker();
    expect(script).toMatch(/worker\.mjs$/);
  });
});
