import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";

let api: TestApi;
const biz = 10;
const base = `/api/v1/bizs/${biz}/apps`;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
});
afterAll(() => api?.close());

describe("services: happy paths", () => {
  it("creates, lists, gets, updates the memo of and deletes a service", async () => {
    const created = await api.call("POST", base, { name: "service_demo", configType: "file", memo: "nginx" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "service_demo", configType: "file", memo: "nginx", bizId: biz });
    expect((await api.call("POST", base, { name: "kv.settings-1", configType: "kv" })).status).toBe(201);

    const list = await api.call("GET", base);
    expect(list.body.items.map((s: any) => s.name)).toEqual(["kv.settings-1", "service_demo"]);
    expect((await api.call("GET", `${base}?configType=kv`)).body.items.map((s: any) => s.name)).toEqual(["kv.settings-1"]);

    const got = await api.call("GET", `${base}/service_demo`);
    expect(got.body.id).toBe(created.body.id);
    const upd = await api.call("PATCH", `${base}/service_demo`, { memo: "changed" });
    expect(upd.status).toBe(200);
    expect(upd.body.memo).toBe("changed");

    const del = await api.call("DELETE", `${base}/kv.settings-1`);
    expect(del.status).toBe(200);
    expect((await api.call("GET", `${base}/kv.settings-1`)).status).toBe(404);
    const audit = await api.call("GET", `/api/v1/audit?bizId=${biz}`);
    expect(JSON.stringify(audit.body)).toContain("service.delete");
  });
});

describe("services: errors", () => {
  it("refuses a duplicate name with 409", async () => {
    await api.call("POST", base, { name: "dup", configType: "file" });
    const again = await api.call("POST", base, { name: "dup", configType: "kv" });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/^name: /);
  });

  it.each([["-leading"], [".hidden"], ["has space"], ["a/b"], [""], ["x".repeat(129)], ["naïve"]])("refuses the name %j naming the field", async (name) => {
    const res = await api.call("POST", base, { name, configType: "file" });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^name: /);
  });

  it("refuses an unknown configType, unknown fields, and renaming or retyping", async () => {
    expect((await api.call("POST", base, { name: "t1", configType: "yaml" })).body.error.message).toMatch(/^configType: /);
    expect((await api.call("POST", base, { name: "t1", configType: "file", extra: 1 })).status).toBe(400);
    await api.call("POST", base, { name: "fixed", configType: "file" });
    const rename = await api.call("PATCH", `${base}/fixed`, { name: "other" });
    expect(rename.status).toBe(400);
    expect(rename.body.error.message).toMatch(/^name: /);
    expect((await api.call("PATCH", `${base}/fixed`, { configType: "kv" })).body.error.message).toMatch(/^configType: /);
  });

  it("answers 404 for an unknown service or biz, 400 for a bad name in the path", async () => {
    expect((await api.call("GET", `${base}/nope`)).status).toBe(404);
    expect((await api.call("GET", `/api/v1/bizs/999/apps`)).status).toBe(404);
    expect((await api.call("GET", `${base}/..%2Fx`)).status).toBe(400);
  });
});

describe("services: security", () => {
  it("requires an admin token", async () => {
    expect((await api.call("GET", base, undefined, { token: null })).status).toBe(401);
    expect((await api.call("POST", base, { name: "x", configType: "file" }, { token: "bogus" })).status).toBe(401);
  });
});
