import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedGroup, seedPublish, seedRelease, seedService } from "../helpers/seed";
import { inRolloutShare } from "../../functions/core/targeting";

let api: TestApi;
const biz = 10;
const apps = `/api/v1/bizs/${biz}/apps`;
let token: string;
const v: Record<string, { id: number; name: string }> = {};
let prodGroup: { id: number };

const defaults = { bakeSeconds: 0, maxFailurePercent: 0, reportTimeoutSeconds: 300, autoRollback: true };

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  for (const app of ["web", "api", "solo", "other", "hooked"]) {
    await seedService(api, biz, app, [{ path: "/etc/app.conf", content: `${app} one\n` }]);
    v[`${app}1`] = await seedRelease(api, biz, app, "V1");
    await api.call("PUT", `${apps}/${app}/files/content?path=/etc/app.conf`, `${app} two\n`);
    v[`${app}2`] = await seedRelease(api, biz, app, "V2");
  }
  prodGroup = await seedGroup(api, biz, "prod", "env=prod");
  token = (await agentToken(api, biz, ["*"])).token;
});
afterAll(() => api?.close());

/** The version the feed gives a client now (wait=0). */
async function targetOf(app: string, uid: string, labels = "env=prod"): Promise<string | null> {
  const r = await api.call("GET", `/feed/v1/bizs/${biz}/apps/${app}/release?uid=${uid}&labels=${encodeURIComponent(labels)}&wait=0`, undefined, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.release?.name ?? null;
}

/**
 * A client the server knows and sees online: a heartbeat writes its row at once (a poll's sighting is
 * batched, and on Workers written by a later request of the same isolate).
 */
async function arrive(app: string, uid: string, currentReleaseId: number) {
  const r = await api.call("POST", `/feed/v1/bizs/${biz}/apps/${app}/heartbeat`, { uid, labels: { env: "prod" }, currentReleaseId }, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(204);
}

async function report(app: string, uid: string, releaseId: number, status: "SUCCESS" | "FAILED", message = "") {
  const preHook = status === "FAILED" ? { exitCode: 3, durationMs: 5, outputTail: `pre-check failed on ${uid}\n` } : null;
  const r = await api.call("POST", `/feed/v1/bizs/${biz}/apps/${app}/events`, { uid, labels: { env: "prod" }, releaseId, status, message, preHook }, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
}

/** Polls GET .../rollouts/{id} until `done` holds (the server moves rollouts on reports and timers). */
async function until(app: string, id: number, done: (r: any) => boolean, what: string, ms = 15_000) {
  const end = Date.now() + ms;
  let last: any;
  while (Date.now() < end) {
    last = (await api.call("GET", `${apps}/${app}/rollouts/${id}`)).body;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)}`);
}

/** uids split by whether they are inside `percent` of rollout `id`. */
function split(uids: string[], id: number, percent: number) {
  return { inside: uids.filter((u) => inRolloutShare(u, id, percent)), outside: uids.filter((u) => !inRolloutShare(u, id, percent)) };
}

describe("rollouts: input", () => {
  it("refuses waves not increasing, not ending at 100, thresholds out of range and a version of another service, naming the field", async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ waves: [50, 25, 100] }, /^waves: must increase/],
      [{ waves: [5, 5, 100] }, /^waves: must increase/],
      [{ waves: [5, 25] }, /^waves: the last wave must be 100/],
      [{ waves: [] }, /^waves/],
      [{ waves: [0, 100] }, /^waves\.0/],
      [{ waves: [100], maxFailurePercent: 101 }, /^maxFailurePercent/],
      [{ waves: [100], maxFailurePercent: -1 }, /^maxFailurePercent/],
      [{ waves: [100], bakeSeconds: -5 }, /^bakeSeconds/],
      [{ waves: [100], reportTimeoutSeconds: 0 }, /^reportTimeoutSeconds/],
      [{ waves: [100], versionId: v.other2.id }, /^versionId: version \d+ is not a version of service 'web'/],
      [{ waves: [100], groups: [999999] }, /group 999999/],
    ];
    for (const [body, msg] of bad) {
      const r = await api.call("POST", `${apps}/web/rollouts`, { versionId: v.web2.id, ...defaults, ...body });
      expect(r.status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(r.status, JSON.stringify(body)).toBeLessThan(500);
      expect(r.body.error.message, JSON.stringify(body)).toMatch(msg);
    }
    expect((await api.call("GET", `${apps}/web/rollouts`)).body.total).toBe(0);
  });
});

describe("rollouts: waves", () => {
  it("reaches only wave 1's share, advances on reports, and completes; clients outside keep their version", async () => {
    await seedPublish(api, biz, "web", v.web1.id);
    const uids = Array.from({ length: 40 }, (_, i) => `web-host-${i}`);
    for (const u of uids) expect(await targetOf("web", u)).toBe("V1");
    for (const u of uids) await arrive("web", u, v.web1.id);
    const start = await api.call("POST", `${apps}/web/rollouts`, { versionId: v.web2.id, waves: [25, 50, 100], ...defaults });
    expect(start.status, JSON.stringify(start.body)).toBe(201);
    expect(start.body).toMatchObject({ state: "running", waves: [25, 50, 100], currentWave: 0 });
    const id = start.body.id;

    // A second rollout while one is open: 409.
    const again = await api.call("POST", `${apps}/web/rollouts`, { versionId: v.web1.id, waves: [100], ...defaults });
    expect(again.status).toBe(409);

    const w1 = split(uids, id, 25);
    expect(w1.inside.length).toBeGreaterThan(0);
    for (const u of w1.inside) expect(await targetOf("web", u), u).toBe("V2");
    for (const u of w1.outside) expect(await targetOf("web", u), u).toBe("V1");

    let r = (await api.call("GET", `${apps}/web/rollouts/${id}`)).body;
    expect(r.progress[0]).toMatchObject({ released: true, targeted: w1.inside.length, pending: w1.inside.length, succeeded: 0, failed: 0 });
    expect(r.progress[2]).toMatchObject({ released: false, targeted: uids.length });

    for (const u of w1.inside) await report("web", u, v.web2.id, "SUCCESS");
    r = await until("web", id, (x) => x.currentWave === 1, "wave 2 released");
    const w2 = split(uids, id, 50);
    for (const u of w2.inside) expect(await targetOf("web", u), u).toBe("V2");
    for (const u of w2.outside) expect(await targetOf("web", u), u).toBe("V1");

    for (const u of w2.inside.filter((x) => !w1.inside.includes(x))) await report("web", u, v.web2.id, "SUCCESS");
    await until("web", id, (x) => x.currentWave === 2, "wave 3 released");
    for (const u of uids) expect(await targetOf("web", u), u).toBe("V2");
    for (const u of uids.filter((x) => !w2.inside.includes(x))) await report("web", u, v.web2.id, "SUCCESS");
    r = await until("web", id, (x) => x.state === "completed", "completed");
    expect(r.progress[2]).toMatchObject({ targeted: uids.length, succeeded: uids.length, failed: 0, pending: 0 });
    expect(r.finishedAt).not.toBeNull();

    const audit = (await api.call("GET", `/api/v1/audit?resourceType=rollout&limit=50`)).body.items.filter((a: any) => a.resourceId === String(id)).map((a: any) => a.action);
    expect(audit).toEqual(expect.arrayContaining(["rollout.start", "rollout.wave", "rollout.completed"]));
  });

  it("halts when a wave's failures pass the threshold and rolls its clients back to what they had", async () => {
    await seedPublish(api, biz, "api", v.api1.id);
    const uids = Array.from({ length: 30 }, (_, i) => `api-host-${i}`);
    for (const u of uids) await arrive("api", u, v.api1.id);
    const start = await api.call("POST", `${apps}/api/rollouts`, { versionId: v.api2.id, waves: [50, 100], ...defaults, maxFailurePercent: 20 });
    const id = start.body.id;
    const { inside, outside } = split(uids, id, 50);
    const failing = inside.slice(0, Math.ceil(inside.length / 2));
    for (const u of inside) await report("api", u, v.api2.id, failing.includes(u) ? "FAILED" : "SUCCESS", failing.includes(u) ? "pre-script exited 3" : "");
    const r = await until("api", id, (x) => x.state === "rolled_back", "rolled back");
    expect(r.currentWave).toBe(0);
    expect(r.reason).toMatch(/wave 1 \(50 %\): \d+ of \d+ clients failed, more than 20 %/);
    expect(r.progress[0].failed).toBe(failing.length);
    expect(r.progress[0].failing.map((f: any) => f.uid).sort()).toEqual([...failing].sort());
    expect(r.progress[0].failing[0]).toMatchObject({ reason: "pre-script exited 3", preHook: { exitCode: 3, outputTail: expect.stringContaining("pre-check failed") } });
    for (const u of uids) expect(await targetOf("api", u), u).toBe("V1");
    expect(outside.length).toBeGreaterThan(0);

    const history = (await api.call("GET", `${apps}/api/publishes`)).body.items;
    expect(history[0]).toMatchObject({ version: { name: "V1" }, rollback: true, rollout: { id, percent: 0 } });
    expect(history[1]).toMatchObject({ version: { name: "V2" }, rollout: { id, percent: 0 } });
  });

  it("counts an online client silent past reportTimeoutSeconds as failed", async () => {
    await seedPublish(api, biz, "solo", v.solo1.id);
    await arrive("solo", "quiet-host", v.solo1.id);
    const start = await api.call("POST", `${apps}/solo/rollouts`, { versionId: v.solo2.id, waves: [100], ...defaults, reportTimeoutSeconds: 1, autoRollback: false });
    const r = await until("solo", start.body.id, (x) => x.state === "halted", "halted on timeout");
    expect(r.progress[0].failing[0]).toMatchObject({ uid: "quiet-host", reason: "no report within 1 s" });
    // Without autoRollback the halted wave keeps the version until an operator acts.
    expect(await targetOf("solo", "quiet-host")).toBe("V2");
    const aborted = await api.call("POST", `${apps}/solo/rollouts/${start.body.id}/abort`, { rollback: true });
    expect(aborted.body.state).toBe("rolled_back");
    expect(await targetOf("solo", "quiet-host")).toBe("V1");
  });
});

describe("rollouts: controls", () => {
  it("pauses, resumes, advances and aborts; refuses a control from the wrong state", async () => {
    const start = await api.call("POST", `${apps}/other/rollouts`, { versionId: v.other2.id, groups: [prodGroup.id], waves: [10, 60, 100], ...defaults, bakeSeconds: 3600 });
    expect(start.status).toBe(201);
    const id = start.body.id;
    const at = (s: string) => `${apps}/other/rollouts/${id}/${s}`;
    expect((await api.call("POST", at("resume"))).status).toBe(422);
    expect((await api.call("POST", at("pause"))).body).toMatchObject({ state: "paused" });
    expect((await api.call("POST", at("pause"))).status).toBe(422);
    expect((await api.call("POST", at("resume"))).body).toMatchObject({ state: "running" });
    expect((await api.call("POST", at("advance"))).body).toMatchObject({ state: "running", currentWave: 1 });
    expect((await api.call("POST", at("abort"))).body).toMatchObject({ state: "aborted" });
    expect((await api.call("POST", at("advance"))).status).toBe(422);
    const list = (await api.call("GET", `${apps}/other/rollouts`)).body;
    expect(list.items[0]).toMatchObject({ id, state: "aborted", currentWave: 1 });
    expect((await api.call("GET", `${apps}/other/rollouts/999999`)).status).toBe(404);
    // Aborted: a new rollout may start.
    const next = await api.call("POST", `${apps}/other/rollouts`, { versionId: v.other2.id, waves: [100], ...defaults });
    expect(next.status).toBe(201);
    const audit = (await api.call("GET", `/api/v1/audit?limit=100`)).body.items.filter((a: any) => a.resourceType === "rollout" && a.resourceId === String(id)).map((a: any) => a.action);
    expect(audit).toEqual(expect.arrayContaining(["rollout.start", "rollout.paused", "rollout.running", "rollout.wave", "rollout.aborted"]));
  });
});

describe("rollouts: webhook action", () => {
  it("a signed delivery to a 'rollout' webhook starts a rollout of a new version from the draft; settings are checked at creation", async () => {
    const bad = await api.call("POST", `${apps}/hooked/webhooks`, { name: "bad", action: "rollout", rollout: { waves: [50, 20, 100] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^waves: must increase/);
    expect((await api.call("POST", `${apps}/hooked/webhooks`, { name: "bare", action: "rollout" })).body.error.message).toMatch(/^rollout: /);
    const hook = (await api.call("POST", `${apps}/hooked/webhooks`, { name: "ci-rollout", action: "rollout", rollout: { waves: [20, 100], bakeSeconds: 3600 } })).body;
    expect(hook.rollout).toMatchObject({ waves: [20, 100], bakeSeconds: 3600, maxFailurePercent: 0, reportTimeoutSeconds: 300, autoRollback: true });
    const body = JSON.stringify({ version: "V3-ci" });
    const ts = String(Math.floor(Date.now() / 1000));
    const sig = createHmac("sha256", hook.secret).update(`${ts}.d-1.${body}`).digest("hex");
    const r = await api.call("POST", `/api/v1/webhooks/${hook.id}`, body, { token: null, headers: { "x-edgeconf-signature": `sha256=${sig}`, "x-edgeconf-timestamp": ts, "x-edgeconf-delivery": "d-1", "content-type": "application/json" } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ action: "rollout", version: { name: "V3-ci" }, rolloutId: expect.any(Number) });
    const rollout = (await api.call("GET", `${apps}/hooked/rollouts/${r.body.rolloutId}`)).body;
    expect(rollout).toMatchObject({ state: "running", waves: [20, 100], version: { name: "V3-ci" }, createdBy: "webhook:ci-rollout" });
  });
});
