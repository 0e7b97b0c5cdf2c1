/**
 * The last admin token (issue 10, item 9): it cannot be revoked, and a restart with a preset that
 * was revoked neither crashes nor brings the token back.
 */
import { rm, mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { isNull } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// Each test starts several server processes (npm, tsx, PGlite): minutes on a loaded 2-core machine.
vi.setConfig({ testTimeout: 180_000 });
import { openNodeDatabase } from "../../db/drivers/node";
import { credentials } from "../../db/schema/index";
import { createTestApi, type TestApi } from "../helpers/app";
import { startServer } from "../helpers/server";

describe("last admin token", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi();
  });
  afterAll(() => api?.close());

  it("error: revoking the last admin token is refused with 409 saying why; with a second one it works", async () => {
    const self = (await api.call("GET", "/api/v1/credentials")).body.items.find((c: any) => c.kind === "admin");
    const refused = await api.call("DELETE", `/api/v1/credentials/${self.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "conflict" });
    expect(refused.body.error.message).toMatch(/last admin token.*create another admin token first/);
    expect((await api.call("GET", "/api/v1/bizs")).status).toBe(200); // still works
    const second = await api.call("POST", "/api/v1/credentials", { name: "ops", kind: "admin" });
    // An agent token does not count as a way to manage the server.
    await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" });
    expect((await api.call("POST", "/api/v1/credentials", { name: "hosts", kind: "agent", bizId: 10 })).status).toBe(201);
    expect((await api.call("DELETE", `/api/v1/credentials/${self.id}`)).status).toBe(200);
    const last = await api.call("DELETE", `/api/v1/credentials/${second.body.id}`, undefined, { token: second.body.token });
    expect(last.status).toBe(409);
  });
});

describe("restart with a revoked EDGECONF_ADMIN_TOKEN", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = path.join(await mkdtemp(path.join(os.tmpdir(), "edgeconf-preset-")), ".edgeconf");
  });
  afterAll(() => rm(path.dirname(dataDir), { recursive: true, force: true }));

  it("security: starts without a stack trace, keeps the preset revoked, and says how to get an admin token back", async () => {
    const preset = "eca_preset-for-restart-0123456789abcdef";
    const first = await startServer({ dataDir, adminToken: preset });
    const auth = (t: string) => ({ authorization: `Bearer ${t}`, "content-type": "application/json" });
    const ops = await (await fetch(`${first.url}/api/v1/credentials`, { method: "POST", headers: auth(preset), body: JSON.stringify({ name: "ops", kind: "admin" }) })).json();
    const me = (await (await fetch(`${first.url}/api/v1/credentials`, { headers: auth(preset) })).json()).items.find((c: any) => c.name === "first-admin");
    expect((await fetch(`${first.url}/api/v1/credentials/${me.id}`, { method: "DELETE", headers: auth(ops.token) })).status).toBe(200);
    await first.stop();

    // Restart with the same preset while another admin exists: runs, the preset stays revoked.
    const second = await startServer({ dataDir, adminToken: preset });
    try {
      expect((await fetch(`${second.url}/api/v1/bizs`, { headers: auth(preset) })).status).toBe(401);
      expect((await fetch(`${second.url}/api/v1/bizs`, { headers: auth(ops.token) })).status).toBe(200);
    } finally {
      await second.stop();
    }

    // A database where no admin is left (as an older version allowed): still no crash, one line saying what to do.
    const handle = await openNodeDatabase({ dataDir });
    await handle.db.update(credentials).set({ revokedAt: new Date() }).where(isNull(credentials.revokedAt));
    await handle.close();
    const third = await startServer({ dataDir, adminToken: preset });
    try {
      expect(third.output()).toMatch(/level=WARN msg="EDGECONF_ADMIN_TOKEN was revoked and no admin token is left: make a new one with npm run create-admin-token/);
      expect(third.output()).not.toMatch(/\n\s+at /);
      expect(third.output()).not.toContain(preset);
      expect((await fetch(`${third.url}/api/v1/bizs`, { headers: auth(preset) })).status).toBe(401);
    } finally {
      await third.stop();
    }
  });
});
