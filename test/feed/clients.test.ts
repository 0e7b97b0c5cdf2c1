import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

let api: TestApi;
let agent: string;
let v1: { id: number; name: string };
let v2: { id: number; name: string };
const biz = 10;
const feed = `/feed/v1/bizs/${biz}/apps/service_demo`;
const clients = `/api/v1/bizs/${biz}/apps/service_demo/clients`;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  await seedService(api, biz, "service_demo", [{ path: "/etc/demo.conf", content: "v=1\n" }]);
  v1 = await seedRelease(api, biz, "service_demo", "V1");
  v2 = await seedRelease(api, biz, "service_demo", "V2");
  await seedPublish(api, biz, "service_demo", v1.id);
  agent = (await agentToken(api, biz, ["service_*"])).token;
});
afterAll(() => api?.close());

const event = (body: Record<string, unknown>) => api.call("POST", `${feed}/events`, body, { token: agent });

describe("clients: events, heartbeats and the listing", () => {
  it("records an event (202 {id}) and lists the client with current, target, online and last event", async () => {
    const r = await event({
      uid: "host-1",
      releaseId: v1.id,
      status: "SUCCESS",
      message: "",
      preHook: { exitCode: 0, durationMs: 12, outputTail: "cleaned" },
      postHook: null,
      filesCount: 1,
      bytesDownloaded: 4,
      timings: { preHookMs: 12, downloadMs: 3, applyMs: 1, totalMs: 20 },
      agentVersion: "0.1.0",
      mode: "watch",
      labels: { env: "prod", zone: "a" },
    });
    expect(r.status).toBe(202);
    expect(r.body.id).toBeGreaterThan(0);
    const list = await api.call("GET", clients);
    expect(list.status).toBe(200);
    expect(list.body.total).toBe(1);
    expect(list.body.items[0]).toMatchObject({
      uid: "host-1",
      labels: { env: "prod", zone: "a" },
      agentVersion: "0.1.0",
      mode: "watch",
      currentRelease: { id: v1.id, name: "V1" },
      targetRelease: { id: v1.id, name: "V1" },
      upToDate: true,
      online: true,
      lastStatus: "SUCCESS",
      lastEvent: { status: "SUCCESS", preHook: { exitCode: 0, durationMs: 12, outputTail: "cleaned" }, postHook: null, filesCount: 1, bytesDownloaded: 4, release: { id: v1.id, name: "V1" } },
    });
    expect(list.body.items[0].lastEvent.timings).toEqual({ preHookMs: 12, downloadMs: 3, applyMs: 1, totalMs: 20 });
  });

  it("shows the new target after a publish, a failed apply, and the event history newest first", async () => {
    await seedPublish(api, biz, "service_demo", v2.id);
    expect((await event({ uid: "host-1", releaseId: v2.id, status: "FAILED", message: "pre-script exited 3", preHook: { exitCode: 3, durationMs: 5, outputTail: "boom" }, labels: { env: "prod", zone: "a" } })).status).toBe(202);
    const [c] = (await api.call("GET", clients)).body.items;
    expect(c).toMatchObject({ currentRelease: { id: v1.id }, targetRelease: { id: v2.id, name: "V2" }, upToDate: false, lastStatus: "FAILED", lastEvent: { message: "pre-script exited 3" } });
    const history = await api.call("GET", `${clients}/host-1/events?limit=1`);
    expect(history.body.items.map((e: any) => e.status)).toEqual(["FAILED"]);
    const older = await api.call("GET", `${clients}/host-1/events?before=${history.body.nextBefore}`);
    expect(older.body.items.map((e: any) => e.status)).toEqual(["SUCCESS"]);
    expect((await api.call("GET", `${clients}/nobody/events`)).status).toBe(404);
  });

  it("records heartbeats (204) and polls as signs of life, and filters by status, label and online", async () => {
    expect((await api.call("POST", `${feed}/heartbeat`, { uid: "host-2", currentReleaseId: v2.id, labels: { env: "test" }, agentVersion: "0.1.0", mode: "pull" }, { token: agent })).status).toBe(204);
    expect((await api.call("GET", `${feed}/release?uid=host-3&labels=env%3Dtest&wait=0`, undefined, { token: agent })).status).toBe(200);
    const all = await api.call("GET", clients);
    expect(all.body.items.map((c: any) => c.uid)).toEqual(["host-1", "host-2", "host-3"]);
    expect(all.body.items[1]).toMatchObject({ currentRelease: { id: v2.id }, upToDate: true, online: true, lastEvent: null, mode: "pull" });
    expect((await api.call("GET", `${clients}?status=FAILED`)).body.items.map((c: any) => c.uid)).toEqual(["host-1"]);
    expect((await api.call("GET", `${clients}?label=env%3Dtest`)).body.items.map((c: any) => c.uid)).toEqual(["host-2", "host-3"]);
    expect((await api.call("GET", `${clients}?online=false`)).body.items).toEqual([]);
    expect((await api.call("GET", `${clients}?online=true&limit=1`)).body).toMatchObject({ total: 3, limit: 1 });
  });

  it("refuses bad events and filters, naming the field", async () => {
    const cases: [string, Promise<any>, string][] = [
      ["status", event({ uid: "h", releaseId: v1.id, status: "DONE" }), "status"],
      ["uid", event({ releaseId: v1.id, status: "SUCCESS" }), "uid"],
      ["labels", event({ uid: "h", releaseId: null, status: "PROCESSING", labels: { "bad key": "x" } }), "labels"],
      ["filter", api.call("GET", `${clients}?status=nope`), "status"],
      ["label filter", api.call("GET", `${clients}?label=novalue`), "label"],
    ];
    for (const [what, p, field] of cases) {
      const r = await p;
      expect(r.status, what).toBe(400);
      expect(r.body.error.message, what).toMatch(new RegExp(`^${field}: `));
    }
  });
});
