import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";

let api: TestApi;

beforeAll(async () => {
  api = await createTestApi();
  await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" });
});
afterAll(() => api?.close());

describe("credentials", () => {
  it("creates an admin token shown once, which then works", async () => {
    const created = await api.call("POST", "/api/v1/credentials", { name: "ci", kind: "admin" });
    expect(created.status).toBe(201);
    expect(created.body.token).toMatch(/^eca_/);
    const list = await api.call("GET", "/api/v1/credentials");
    const row = list.body.items.find((c: any) => c.id === created.body.id);
    expect(row).toMatchObject({ name: "ci", kind: "admin", revokedAt: null });
    expect(row.token).toBeUndefined();
    expect(JSON.stringify(list.body)).not.toContain(created.body.token);
    const withIt = await api.call("GET", "/api/v1/bizs", undefined, { token: created.body.token });
    expect(withIt.status).toBe(200);
  });

  it("stores only a hash of the token", async () => {
    const created = await api.call("POST", "/api/v1/credentials", { name: "hashed", kind: "admin" });
    if (api.runtime !== "node") return;
    const { credentials } = await import("../../db/schema/index");
    const rows = await api.deps.db.select().from(credentials);
    expect(JSON.stringify(rows)).not.toContain(created.body.token);
    expect(rows.find((r) => r.id === created.body.id)?.tokenHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses a revoked token", async () => {
    const created = await api.call("POST", "/api/v1/credentials", { name: "short-lived", kind: "admin" });
    expect((await api.call("DELETE", `/api/v1/credentials/${created.body.id}`)).status).toBe(200);
    const after = await api.call("GET", "/api/v1/bizs", undefined, { token: created.body.token });
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("unauthenticated");
    expect((await api.call("DELETE", `/api/v1/credentials/${created.body.id}`)).status).toBe(404);
  });

  it("refuses a missing or wrong token", async () => {
    const none = await api.call("GET", "/api/v1/bizs", undefined, { token: null });
    expect(none.status).toBe(401);
    expect(none.body.error.message).toMatch(/bearer/i);
    const last = api.adminToken.slice(-1);
    const wrong = await api.call("GET", "/api/v1/bizs", undefined, { token: api.adminToken.slice(0, -1) + (last === "x" ? "y" : "x") });
    expect(wrong.status).toBe(401);
    const basic = await api.request("/api/v1/bizs", { headers: { authorization: "Basic Zm9vOmJhcg==" } });
    expect(basic.status).toBe(401);
  });

  it("keeps an agent token off the admin routes", async () => {
    const agent = await api.call("POST", "/api/v1/credentials", { name: "hosts", kind: "agent", bizId: 10, apps: ["service_*"] });
    expect(agent.status).toBe(201);
    expect(agent.body).toMatchObject({ kind: "agent", bizId: 10, apps: ["service_*"] });
    expect(agent.body.token).toMatch(/^ecg_/);
    for (const [method, path, body] of [
      ["GET", "/api/v1/bizs/10/scripts"],
      ["POST", "/api/v1/bizs/10/scripts", { name: "x", type: "shell", content: "echo" }],
      ["POST", "/api/v1/credentials", { name: "escalate", kind: "admin" }],
      ["GET", "/api/v1/audit"],
    ] as const) {
      const res = await api.call(method, path, body, { token: agent.body.token });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.code).toBe("permission_denied");
    }
  });

  it("refuses bad credential input, naming the field", async () => {
    const cases: [unknown, RegExp, number][] = [
      [{ name: "a", kind: "root" }, /^kind: /, 400],
      [{ kind: "admin" }, /^name: /, 400],
      [{ name: "a", kind: "agent" }, /^bizId: /, 400],
      [{ name: "a", kind: "agent", bizId: 999 }, /biz 999/, 404],
      [{ name: "a", kind: "agent", bizId: 10, apps: ["../x"] }, /^apps\.0: /, 400],
    ];
    for (const [body, message, status] of cases) {
      const res = await api.call("POST", "/api/v1/credentials", body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.message).toMatch(message);
    }
  });
});

describe("audit log", () => {
  it("records who changed what, filterable", async () => {
    const ci = await api.call("POST", "/api/v1/credentials", { name: "auditor", kind: "admin" });
    await api.call("POST", "/api/v1/bizs/10/scripts", { name: "audited", type: "shell", content: "echo" }, { token: ci.body.token });
    const log = await api.call("GET", "/api/v1/audit?actor=auditor");
    expect(log.status).toBe(200);
    expect(log.body.items).toHaveLength(1);
    expect(log.body.items[0]).toMatchObject({ actor: "auditor", action: "script.create", resourceType: "script", bizId: 10 });
    expect(log.body.items[0].after).toMatchObject({ name: "audited" });
    const creds = await api.call("GET", "/api/v1/audit?resourceType=credential&limit=2");
    expect(creds.body.items).toHaveLength(2);
    const older = await api.call("GET", `/api/v1/audit?resourceType=credential&before=${creds.body.items[1].id}`);
    expect(older.body.items.every((e: any) => e.id < creds.body.items[1].id)).toBe(true);
    expect((await api.call("GET", "/api/v1/audit?since=yesterday")).status).toBe(400);
  });
});
