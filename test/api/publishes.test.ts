import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, nodeOnly, type TestApi } from "../helpers/app";

let api: TestApi;
const biz = 10;
const apps = `/api/v1/bizs/${biz}/apps`;
const groupsUrl = `/api/v1/bizs/${biz}/groups`;
const enc = new TextEncoder();
let web: any;
const versions: Record<string, any> = {};
const groups: Record<string, any> = {};

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  web = (await api.call("POST", apps, { name: "web", configType: "file" })).body;
  await api.call("POST", apps, { name: "other", configType: "file" });
  for (const n of ["V1", "V2", "V3"]) {
    await api.call("PUT", `${apps}/web/files/content?path=/etc/app.conf`, enc.encode(`version ${n}\n`));
    versions[n] = (await api.call("POST", `${apps}/web/versions`, { name: n })).body;
  }
  await api.call("PUT", `${apps}/other/files/content?path=/etc/o.conf`, enc.encode("o\n"));
  versions.other = (await api.call("POST", `${apps}/other/versions`, { name: "O1" })).body;
  groups.prod = (await api.call("POST", groupsUrl, { name: "prod", selector: "env=prod" })).body;
  groups.canary = (await api.call("POST", groupsUrl, { name: "canary", selector: "env = prod, zone in (a, b)", percent: 50 })).body;
});
afterAll(() => api?.close());

/** The version the feed gives a client right now (wait=0: no holding). */
async function targetOf(uid: string, labels: string): Promise<string | null> {
  const r = await api.call("GET", `/feed/v1/bizs/${biz}/apps/web/release?uid=${uid}&labels=${encodeURIComponent(labels)}&wait=0`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.release?.name ?? null;
}

describe("groups: API", () => {
  it("stores the selector in canonical form and lists groups", async () => {
    expect(groups.canary).toMatchObject({ name: "canary", selector: "env=prod,zone in (a,b)", percent: 50 });
    const list = await api.call("GET", groupsUrl);
    expect(list.body.items.map((g: any) => g.name)).toEqual(["canary", "prod"]);
    expect((await api.call("GET", `${groupsUrl}/${groups.prod.id}`)).body.selector).toBe("env=prod");
  });

  it("refuses an invalid selector, a bad percent and a duplicate name, naming the field", async () => {
    for (const selector of ["env=prod,", "zone in (a", "a b", "=x", "k in ()"]) {
      const r = await api.call("POST", groupsUrl, { name: "bad", selector });
      expect(r.status, selector).toBe(400);
      expect(r.body.error.message).toMatch(/^selector: /);
    }
    expect((await api.call("POST", groupsUrl, { name: "bad", selector: "", percent: 101 })).body.error.message).toMatch(/^percent: /);
    expect((await api.call("POST", groupsUrl, { name: "bad", selector: "", percent: 2.5 })).body.error.message).toMatch(/^percent: /);
    const dup = await api.call("POST", groupsUrl, { name: "prod", selector: "env=prod" });
    expect(dup.status).toBe(409);
  });

  it("updates and deletes a group; a publish keeps its snapshot", async () => {
    const g = (await api.call("POST", groupsUrl, { name: "temp", selector: "team=x" })).body;
    const p = (await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V1.id, groups: [g.id], memo: "temp" })).body;
    const upd = await api.call("PATCH", `${groupsUrl}/${g.id}`, { selector: "team=y", percent: 10 });
    expect(upd.body).toMatchObject({ selector: "team=y", percent: 10 });
    expect((await api.call("PATCH", `${groupsUrl}/${g.id}`, { selector: "team in (" })).status).toBe(400);
    expect((await api.call("DELETE", `${groupsUrl}/${g.id}`)).status).toBe(200);
    expect((await api.call("GET", `${groupsUrl}/${g.id}`)).status).toBe(404);
    const hist = (await api.call("GET", `${apps}/web/publishes`)).body.items;
    expect(hist.find((x: any) => x.id === p.id).groups).toEqual([{ id: g.id, name: "temp", selector: "team=x", percent: null }]);
  });
});

describe("publishes: happy paths", () => {
  it("publishes to all, then to a group; each client gets the newest publish that matches it", async () => {
    const all = await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V1.id });
    expect(all.status, JSON.stringify(all.body)).toBe(201);
    expect(all.body).toMatchObject({ version: { id: versions.V1.id, name: "V1" }, toAll: true, groups: [], rollback: false });
    expect(await targetOf("h1", "env=test")).toBe("V1");

    const prod = await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V2.id, groups: [groups.prod.id] });
    expect(prod.body).toMatchObject({ toAll: false, groups: [{ id: groups.prod.id, name: "prod", selector: "env=prod", percent: null }] });
    expect(await targetOf("h1", "env=prod")).toBe("V2");
    expect(await targetOf("h1", "env=test")).toBe("V1");
  });

  it("publishes to a percentage of a group: a stable share of uids", async () => {
    await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V3.id, groups: [groups.canary.id] });
    const seen: Record<string, string | null> = {};
    for (let i = 0; i < 20; i++) seen[`u${i}`] = await targetOf(`u${i}`, "env=prod,zone=a");
    const names = new Set(Object.values(seen));
    expect(names).toEqual(new Set(["V2", "V3"]));
    for (let i = 0; i < 20; i++) expect(await targetOf(`u${i}`, "env=prod,zone=a")).toBe(seen[`u${i}`]);
    expect(await targetOf("u0", "env=prod,zone=c")).toBe("V2");
  });

  it("rolls back by publishing an older version to all, flagged in the history", async () => {
    const rb = await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V1.id, memo: "rollback" });
    expect(rb.body).toMatchObject({ rollback: true, toAll: true, memo: "rollback" });
    expect(await targetOf("u1", "env=prod,zone=a")).toBe("V1");
    const cur = await api.call("GET", `${apps}/web/publishes/current`);
    expect(cur.body.base.id).toBe(rb.body.id);
    expect(cur.body.overrides).toEqual([]);
  });

  it("lists the history newest first: who, when, what, to whom", async () => {
    const h = await api.call("GET", `${apps}/web/publishes`);
    expect(h.body.total).toBe(5);
    expect(h.body.items.map((p: any) => p.version.name)).toEqual(["V1", "V3", "V2", "V1", "V1"]);
    expect(h.body.items[0]).toMatchObject({ createdBy: expect.any(String), createdAt: expect.any(String) });
    expect(h.body.items[1].groups[0]).toMatchObject({ name: "canary", selector: "env=prod,zone in (a,b)", percent: 50 });
    const audit = await api.call("GET", `/api/v1/audit?bizId=${biz}`);
    expect(JSON.stringify(audit.body)).toContain("publish.rollback");
  });

  it.skipIf(nodeOnly("waits on api.deps.notifier"))("wakes the service's waiting long-polls after the commit", async () => {
    const woke = api.deps.notifier.wait(web.id, 30_000);
    await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V2.id });
    expect(await woke).toBe(true);
  });
});

describe("publishes: errors", () => {
  it("refuses a version of another service (404) and writes nothing", async () => {
    const before = (await api.call("GET", `${apps}/web/publishes`)).body.total;
    const r = await api.call("POST", `${apps}/web/publishes`, { versionId: versions.other.id });
    expect(r.status).toBe(404);
    expect(r.body.error.message).toMatch(/version \d+ of service 'web'/);
    expect((await api.call("GET", `${apps}/web/publishes`)).body.total).toBe(before);
  });

  it("refuses unknown or repeated groups, and a bad body", async () => {
    expect((await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V1.id, groups: [99999] })).status).toBe(404);
    const twice = await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V1.id, groups: [groups.prod.id, groups.prod.id] });
    expect(twice.status).toBe(400);
    expect(twice.body.error.message).toMatch(/^groups: /);
    expect((await api.call("POST", `${apps}/web/publishes`, { versionId: "x" })).body.error.message).toMatch(/^versionId: /);
    expect((await api.call("POST", `${apps}/nope/publishes`, { versionId: versions.V1.id })).status).toBe(404);
  });

  it("does not let one biz publish to another biz's groups", async () => {
    await api.call("POST", "/api/v1/bizs", { id: 11, name: "other" });
    const g = (await api.call("POST", `/api/v1/bizs/11/groups`, { name: "theirs", selector: "" })).body;
    expect((await api.call("POST", `${apps}/web/publishes`, { versionId: versions.V1.id, groups: [g.id] })).status).toBe(404);
    expect((await api.call("GET", `${groupsUrl}/${g.id}`)).status).toBe(404);
  });
});
