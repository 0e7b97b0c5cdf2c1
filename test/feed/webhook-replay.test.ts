/**
 * Security: the three replays found by the attack on the server (issue 10, item 1) and the scheme of
 * design.md "Webhook signing" that closes them: one format per webhook with its own derived secret,
 * the delivery id inside the signed string, the same signed bytes acted on at most once.
 */
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookSignatures } from "../../db/schema/index";
import { createTestApi, nodeOnly, type TestApi } from "../helpers/app";
import { agentToken, seedRelease, seedService } from "../helpers/seed";

const biz = 10;
const app = `/api/v1/bizs/${biz}/apps/service_demo`;
const hmac = (secret: string, data: string) => createHmac("sha256", secret).update(data).digest("hex");
const edgeconfHeaders = (secret: string, body: string, delivery: string, ts = Math.floor(Date.now() / 1000)) => ({
  "x-edgeconf-signature": `sha256=${hmac(secret, `${ts}.${delivery}.${body}`)}`,
  "x-edgeconf-timestamp": String(ts),
  "x-edgeconf-delivery": delivery,
  "content-type": "application/json",
});
const githubHeaders = (signature: string, delivery: string) => ({ "x-hub-signature-256": `sha256=${signature}`, "x-github-delivery": delivery, "content-type": "application/json" });

async function setUp(api: TestApi) {
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  await seedService(api, biz, "service_demo", [{ path: "/etc/demo.conf", content: "v=1\n" }]);
  return (await agentToken(api, biz, ["service_*"])).token;
}
const deliver = (api: TestApi, id: string, body: string, headers: Record<string, string>) => api.call("POST", `/api/v1/webhooks/${id}`, body, { token: null, headers });
const versionCount = async (api: TestApi) => (await api.call("GET", `${app}/versions`)).body.total;
const createHook = async (api: TestApi, body: object) => {
  const r = await api.call("POST", `${app}/webhooks`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; secret: string; format: string };
};

describe("webhooks: replay attacks are refused", () => {
  let api: TestApi;
  let agent: string;
  beforeAll(async () => {
    api = await createTestApi();
    agent = await setUp(api);
  });
  afterAll(() => api?.close());
  const target = async () => (await api.call("GET", `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=h1&wait=0`, undefined, { token: agent })).body.release;

  it("security: an edgeconf-form delivery re-sent in GitHub's form (body '<ts>.<id>.<body>') is refused (cross-format replay)", async () => {
    const hook = await createHook(api, { name: "ci", action: "release" });
    expect(hook.format).toBe("edgeconf");
    const body = JSON.stringify({ version: "V-x1" });
    const ts = Math.floor(Date.now() / 1000) - 86_400 + 200; // a day-old capture: too old for the edgeconf form
    const captured = edgeconfHeaders(hook.secret, body, "d-1", ts);
    const before = await versionCount(api);
    const forged = await deliver(api, hook.id, `${ts}.d-1.${body}`, githubHeaders(captured["x-edgeconf-signature"].slice(7), "g-1"));
    expect(forged.status).toBe(401);
    expect(forged.body.error.message).toMatch(/^X-Edgeconf-Signature: missing \(this webhook takes the edgeconf form, not GitHub's\)/);
    expect(await versionCount(api)).toBe(before);
  });

  it("security: a GitHub-format webhook's secret signs nothing in the edgeconf form, and the reverse", async () => {
    const gh = await createHook(api, { name: "gh-cross", action: "release", format: "github" });
    const ours = await createHook(api, { name: "ours-cross", action: "release" });
    expect(gh.secret).not.toBe(ours.secret);
    const body = "{}";
    expect((await deliver(api, gh.id, body, edgeconfHeaders(gh.secret, body, "c-1"))).status).toBe(401);
    expect((await deliver(api, ours.id, body, githubHeaders(hmac(ours.secret, body), "c-2"))).status).toBe(401);
    // A signature made with the other webhook's secret fails too (each secret is derived for its format).
    expect((await deliver(api, gh.id, body, githubHeaders(hmac(ours.secret, body), "c-3"))).status).toBe(401);
  });

  it("security: the delivery id is signed: the same edgeconf bytes under a new id are refused, under the same id acted on once", async () => {
    const hook = await createHook(api, { name: "ci-id", action: "release" });
    const body = JSON.stringify({ version: "V-id1" });
    const headers = edgeconfHeaders(hook.secret, body, "id-1");
    expect((await deliver(api, hook.id, body, headers)).status).toBe(200);
    const count = await versionCount(api);
    const newId = await deliver(api, hook.id, body, { ...headers, "x-edgeconf-delivery": "id-2" });
    expect(newId.status).toBe(401);
    expect(newId.body.error.message).toBe("signature does not match the body");
    const again = await deliver(api, hook.id, body, headers);
    expect(again.body).toEqual({ duplicate: true, deliveryId: "id-1" });
    expect(await versionCount(api)).toBe(count);
    // An id with '.' would make "<ts>.<id>.<body>" ambiguous: refused.
    const dotted = await deliver(api, hook.id, body, edgeconfHeaders(hook.secret, body, "a.b"));
    expect(dotted.status).toBe(401);
    expect(dotted.body.error.message).toMatch(/^X-Edgeconf-Delivery: /);
  });

  it("security: the same GitHub-signed bytes under a new X-GitHub-Delivery are not acted on again (logged as duplicate)", async () => {
    const gh = await createHook(api, { name: "gh-dup", action: "release", format: "github" });
    const body = JSON.stringify({ ref: "refs/heads/main" });
    const sig = hmac(gh.secret, body);
    expect((await deliver(api, gh.id, body, githubHeaders(sig, "gd-1"))).status).toBe(200);
    const count = await versionCount(api);
    const replay = await deliver(api, gh.id, body, githubHeaders(sig, "gd-2"));
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({ duplicate: true, deliveryId: "gd-2" });
    expect(await versionCount(api)).toBe(count);
    const log = (await api.call("GET", `${app}/webhooks/${gh.id}/deliveries`)).body.items;
    expect(log[0]).toMatchObject({ status: "duplicate" });
    expect(log[0].message).toContain("claimed delivery gd-2");
    expect(log[0].deliveryId).not.toBe("gd-2"); // logged under a fresh id: a replay cannot take a genuine id
  });

  it("security: a captured GitHub 'publish V1' replayed after V2 is out does not roll the fleet back", async () => {
    const v1 = await seedRelease(api, biz, "service_demo", "R-V1");
    const v2 = await seedRelease(api, biz, "service_demo", "R-V2");
    const gh = await createHook(api, { name: "gh-promote", action: "publish", format: "github" });
    const body = JSON.stringify({ versionId: v1.id });
    const sig = hmac(gh.secret, body);
    expect((await deliver(api, gh.id, body, githubHeaders(sig, "p-1"))).status).toBe(200);
    expect((await target()).name).toBe("R-V1");
    expect((await api.call("POST", `${app}/publishes`, { versionId: v2.id })).status).toBe(201);
    for (const id of ["p-1", "p-2"]) {
      const r = await deliver(api, gh.id, body, githubHeaders(sig, id));
      expect(r.body.duplicate, id).toBe(true);
    }
    expect((await target()).name).toBe("R-V2");
  });
});

describe.skipIf(nodeOnly("moves the server's clock"))("webhooks: remembered signatures expire and are pruned", () => {
  let api: TestApi;
  let now = Date.now();
  beforeAll(async () => {
    api = await createTestApi({ clock: () => new Date(now) });
    await setUp(api);
  });
  afterAll(() => api?.close());
  const digests = async () => (await api.deps.db.select().from(webhookSignatures)).length;

  it("keeps a GitHub-form signature 30 days (a replay on day 29 is refused), then prunes it", async () => {
    const gh = await createHook(api, { name: "gh-ttl", action: "release", format: "github" });
    const body = JSON.stringify({ ref: "a" });
    expect((await deliver(api, gh.id, body, githubHeaders(hmac(gh.secret, body), "t-1"))).status).toBe(200);
    expect(await digests()).toBe(1);
    now += 29 * 86_400_000;
    expect((await deliver(api, gh.id, body, githubHeaders(hmac(gh.secret, body), "t-2"))).body.duplicate).toBe(true);
    now += 2 * 86_400_000;
    const next = JSON.stringify({ ref: "b" });
    expect((await deliver(api, gh.id, next, githubHeaders(hmac(gh.secret, next), "t-3"))).status).toBe(200);
    expect(await digests()).toBe(1); // the day-0 digest is gone, the new one kept
  });

  it("keeps an edgeconf-form signature only while its timestamp is within the window", async () => {
    const hook = await createHook(api, { name: "ttl", action: "release" });
    const ts = Math.floor(now / 1000);
    const a = JSON.stringify({ version: "T-1" });
    expect((await deliver(api, hook.id, a, edgeconfHeaders(hook.secret, a, "e-1", ts))).status).toBe(200);
    now += 302_000; // past ±300 s: that signature can no longer verify, so its digest may go
    const b = JSON.stringify({ version: "T-2" });
    expect((await deliver(api, hook.id, b, edgeconfHeaders(hook.secret, b, "e-2", Math.floor(now / 1000)))).status).toBe(200);
    const rows = await api.deps.db.select().from(webhookSignatures);
    expect(rows.filter((r) => r.webhookId === hook.id)).toHaveLength(1);
  });
});
