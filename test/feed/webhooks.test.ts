import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhooks } from "../../db/schema/index";
import { createTestApi, nodeOnly, type TestApi } from "../helpers/app";
import { agentToken, seedGroup, seedRelease, seedService } from "../helpers/seed";

let api: TestApi;
let agent: string;
const biz = 10;
const app = `/api/v1/bizs/${biz}/apps/service_demo`;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  await seedService(api, biz, "service_demo", [{ path: "/etc/demo.conf", content: "v=1\n" }]);
  agent = (await agentToken(api, biz, ["service_*"])).token;
});
afterAll(() => api?.close());

/** Signs as the README shows: hex HMAC-SHA256 of "<timestamp>.<delivery id>.<raw body>". */
function signed(secret: string, body: string, opts: { delivery: string; ts?: number }) {
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const sig = createHmac("sha256", secret).update(`${ts}.${opts.delivery}.${body}`).digest("hex");
  return { "x-edgeconf-signature": `sha256=${sig}`, "x-edgeconf-timestamp": ts, "x-edgeconf-delivery": opts.delivery, "content-type": "application/json" };
}
/** GitHub's form: hex HMAC-SHA256 of the raw body. */
function githubSigned(secret: string, body: string, delivery: string) {
  const sig = createHmac("sha256", secret).update(body).digest("hex");
  return { "x-hub-signature-256": `sha256=${sig}`, "x-github-delivery": delivery, "content-type": "application/json" };
}
const deliver = (id: string, body: string, headers: Record<string, string>) => api.call("POST", `/api/v1/webhooks/${id}`, body, { token: null, headers });
const target = async (labels = "") => (await api.call("GET", `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=h1&wait=0&labels=${labels}`, undefined, { token: agent })).body.release;
const versionCount = async () => (await api.call("GET", `${app}/versions`)).body.total;

describe("webhooks: happy paths", () => {
  let hook: { id: string; secret: string; url: string };

  it("creates a release webhook whose secret is shown once and never stored", async () => {
    const r = await api.call("POST", `${app}/webhooks`, { name: "ci", action: "release" });
    expect(r.status).toBe(201);
    hook = r.body;
    expect(hook.url).toMatch(new RegExp(`/api/v1/webhooks/${hook.id}$`));
    expect(hook.secret).toMatch(/^[0-9a-f]{64}$/);
    const list = await api.call("GET", `${app}/webhooks`);
    expect(list.body.items).toHaveLength(1);
    expect(JSON.stringify(list.body)).not.toContain(hook.secret);
    if (!nodeOnly("reads the webhooks table through api.deps")) {
      const rows = await api.deps.db.select().from(webhooks);
      expect(JSON.stringify(rows)).not.toContain(hook.secret);
    }
  });

  it("creates a version from the draft and publishes it on a signed delivery, audited as webhook:<name>", async () => {
    const body = JSON.stringify({ version: "V-ci-1" });
    const r = await deliver(hook.id, body, signed(hook.secret, body, { delivery: "d-1" }));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ duplicate: false, deliveryId: "d-1", action: "release", version: { name: "V-ci-1" } });
    expect((await target()).name).toBe("V-ci-1");
    const audit = await api.call("GET", "/api/v1/audit");
    const actions = audit.body.items.filter((e: any) => e.actor === "webhook:ci").map((e: any) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["version.create", "publish.create"]));
  });

  it("acknowledges a replayed delivery id (200 duplicate) without acting twice", async () => {
    const before = await versionCount();
    const body = JSON.stringify({ version: "V-ci-other" });
    const r = await deliver(hook.id, body, signed(hook.secret, body, { delivery: "d-1" }));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ duplicate: true, deliveryId: "d-1" });
    expect(await versionCount()).toBe(before);
  });

  it("accepts GitHub's X-Hub-Signature-256 form on a github-format webhook and names the version webhook-<timestamp>", async () => {
    const gh = await api.call("POST", `${app}/webhooks`, { name: "gh", action: "release", format: "github" });
    expect(gh.status).toBe(201);
    expect(gh.body.format).toBe("github");
    const body = JSON.stringify({ ref: "refs/heads/main", repository: { name: "cfg" } });
    const r = await deliver(gh.body.id, body, githubSigned(gh.body.secret, body, "gh-1"));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.version.name).toMatch(/^webhook-\d+$/);
    const list = (await api.call("GET", `${app}/webhooks`)).body.items;
    expect(list.map((w: any) => [w.name, w.format])).toEqual([["ci", "edgeconf"], ["gh", "github"]]);
  });

  it("publishes a named version to the webhook's groups (a publish webhook)", async () => {
    const v = await seedRelease(api, biz, "service_demo", "V-pinned");
    const prod = await seedGroup(api, biz, "prod", "env=prod");
    const created = await api.call("POST", `${app}/webhooks`, { name: "promote", action: "publish", versionId: v.id, groups: [prod.id] });
    expect(created.status).toBe(201);
    const r = await deliver(created.body.id, "{}", signed(created.body.secret, "{}", { delivery: "p-1" }));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect((await target("env%3Dprod")).name).toBe("V-pinned");
    expect((await target("env%3Dtest")).name).not.toBe("V-pinned");
  });
});

describe("webhooks: refused deliveries", () => {
  let hook: { id: string; secret: string };
  beforeAll(async () => {
    hook = (await api.call("POST", `${app}/webhooks`, { name: "guarded", action: "release" })).body;
  });

  it("refuses a bad signature, an old timestamp and a missing signature (401), and logs them", async () => {
    const before = await versionCount();
    const body = JSON.stringify({ version: "V-evil" });
    const bad = await deliver(hook.id, body, signed("not-the-secret", body, { delivery: "x-1" }));
    expect(bad.status).toBe(401);
    const old = await deliver(hook.id, body, signed(hook.secret, body, { delivery: "x-2", ts: Math.floor(Date.now() / 1000) - 301 }));
    expect(old.status).toBe(401);
    expect(old.body.error.message).toMatch(/^X-Edgeconf-Timestamp: /);
    const tampered = await deliver(hook.id, JSON.stringify({ version: "V-other" }), signed(hook.secret, body, { delivery: "x-3" }));
    expect(tampered.status).toBe(401);
    expect((await deliver(hook.id, body, { "content-type": "application/json" })).status).toBe(401);
    expect((await deliver("wh_nope", body, signed(hook.secret, body, { delivery: "x-4" }))).status).toBe(404);
    expect(await versionCount()).toBe(before);
    const log = await api.call("GET", `${app}/webhooks/${hook.id}/deliveries`);
    expect(log.body.items.map((d: any) => d.status)).toEqual(["rejected", "rejected", "rejected", "rejected"]);
    // A rejected delivery id does not block the genuine delivery with that id.
    const good = await deliver(hook.id, body, signed(hook.secret, body, { delivery: "x-1" }));
    expect(good.status).toBe(200);
    expect(good.body.duplicate).toBe(false);
  });

  it("logs a delivery whose action fails (empty draft, 422) and lets the same id act once fixed", async () => {
    await seedService(api, biz, "service_empty");
    const h = (await api.call("POST", `/api/v1/bizs/${biz}/apps/service_empty/webhooks`, { name: "empty", action: "release" })).body;
    const r = await deliver(h.id, "{}", signed(h.secret, "{}", { delivery: "e-1" }));
    expect(r.status).toBe(422);
    const log = await api.call("GET", `/api/v1/bizs/${biz}/apps/service_empty/webhooks/${h.id}/deliveries`);
    expect(log.body.items[0]).toMatchObject({ deliveryId: "e-1", status: "failed" });
    expect((await api.call("PUT", `/api/v1/bizs/${biz}/apps/service_empty/files/content?path=/etc/e.conf`, "e\n")).status).toBeLessThan(300);
    const retry = await deliver(h.id, "{}", signed(h.secret, "{}", { delivery: "e-1" }));
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect((await api.call("GET", `/api/v1/bizs/${biz}/apps/service_empty/webhooks/${h.id}/deliveries`)).body.items[0]).toMatchObject({ deliveryId: "e-1", status: "succeeded" });
  });

  it("refuses bad webhook definitions naming the field, and a deleted webhook answers 404", async () => {
    await seedService(api, biz, "service_other", [{ path: "/etc/o.conf", content: "o\n" }]);
    const foreign = await seedRelease(api, biz, "service_other", "O1");
    for (const [body, field] of [
      [{ name: "x", action: "deploy" }, "action"],
      [{ name: "x", action: "publish", versionId: foreign.id }, "versionId"],
      [{ name: "x", action: "release", versionId: foreign.id }, "versionId"],
      [{ name: "x", action: "release", groups: [99999] }, "groups"],
      [{ name: "../x", action: "release" }, "name"],
    ] as const) {
      const r = await api.call("POST", `${app}/webhooks`, body);
      expect(r.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body.error.message, JSON.stringify(body)).toMatch(new RegExp(`^${field}: `));
    }
    expect((await api.call("DELETE", `${app}/webhooks/${hook.id}`)).status).toBe(200);
    expect((await deliver(hook.id, "{}", signed(hook.secret, "{}", { delivery: "z-1" }))).status).toBe(404);
  });

  it("refuses an agent token on the webhook admin routes (403)", async () => {
    expect((await api.call("GET", `${app}/webhooks`, undefined, { token: agent })).status).toBe(403);
  });
});
