import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedGroup, seedPublish, seedRelease, seedService } from "../helpers/seed";

let api: TestApi;
let agent: string;
const biz = 10;
const feed = (app: string) => `/feed/v1/bizs/${biz}/apps/${app}`;
const nginx = "worker_processes 2;\n";
const binary = new Uint8Array(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));
const sha = async (b: string | Uint8Array) => {
  const bytes = typeof b === "string" ? new TextEncoder().encode(b) : b;
  return Buffer.from(await crypto.subtle.digest("SHA-256", bytes as BufferSource)).toString("hex");
};

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  await seedService(api, biz, "service_demo", [
    { path: "/etc/nginx/nginx.conf", content: nginx },
    { path: "/opt/app/blob.bin", content: binary },
  ]);
  agent = (await agentToken(api, biz, ["service_*"])).token;
});
afterAll(() => api?.close());

const poll = (app: string, query: string, headers: Record<string, string> = {}, token = agent) => api.call("GET", `${feed(app)}/release?${query}`, undefined, { token, headers });

describe("feed: target release", () => {
  it("answers 304 with ETag \"none\" at once when nothing is published and wait=0", async () => {
    const r = await poll("service_demo", "uid=h1&wait=0");
    expect(r.status).toBe(304);
    expect(r.headers.get("etag")).toBe('"none"');
    expect(r.headers.get("x-edgeconf-wait")).toBe("0");
  });

  it("answers the manifest at once when the target differs: files with sha256, size, permission", async () => {
    const v1 = await seedRelease(api, biz, "service_demo", "V1");
    const p = await seedPublish(api, biz, "service_demo", v1.id);
    const r = await poll("service_demo", "uid=h1&labels=env%3Dprod&wait=0", { "x-edgeconf-agent-version": "0.1.0", "x-edgeconf-mode": "watch" });
    expect(r.status).toBe(200);
    expect(r.headers.get("etag")).toBe(`"r${v1.id}"`);
    expect(r.body).toMatchObject({ biz, app: "service_demo", configType: "file", wait: 0, release: { id: v1.id, name: "V1", publishId: p.id }, hooks: { pre: null, post: null } });
    expect(r.body.files).toEqual([
      { path: "/etc/nginx", name: "nginx.conf", sha256: await sha(nginx), size: nginx.length, fileType: "text", permission: { user: "root", group: "root", privilege: "644" } },
      { path: "/opt/app", name: "blob.bin", sha256: await sha(binary), size: 300, fileType: "binary", permission: { user: "root", group: "root", privilege: "644" } },
    ]);
  });

  it("answers 304 with the same ETag when current (or If-None-Match) is the target", async () => {
    const first = await poll("service_demo", "uid=h1&wait=0");
    const id = first.body.release.id;
    const byCurrent = await poll("service_demo", `uid=h1&current=${id}&wait=0`);
    expect(byCurrent.status).toBe(304);
    expect(byCurrent.headers.get("etag")).toBe(`"r${id}"`);
    const byEtag = await poll("service_demo", "uid=h1&wait=0", { "if-none-match": `"r${id}"` });
    expect(byEtag.status).toBe(304);
  });

  it("holds on `seen` (a release the agent failed to apply) while recording `current` as its version", async () => {
    await seedService(api, biz, "service_seen", [{ path: "/etc/s.conf", content: "s=1\n" }]);
    const v1 = await seedRelease(api, biz, "service_seen", "S1");
    await seedPublish(api, biz, "service_seen", v1.id);
    const v2 = await seedRelease(api, biz, "service_seen", "S2");
    await seedPublish(api, biz, "service_seen", v2.id);
    // Applied S1, S2 failed: a poll with seen=S2 is held, not answered with S2 again...
    const held = await poll("service_seen", `uid=failing&current=${v1.id}&seen=${v2.id}&wait=0`);
    expect(held.status).toBe(304);
    expect(held.headers.get("etag")).toBe(`"r${v2.id}"`);
    const clients = await api.call("GET", `/api/v1/bizs/${biz}/apps/service_seen/clients`);
    expect(clients.body.items.find((c: any) => c.uid === "failing").currentRelease).toMatchObject({ id: v1.id, name: "S1" });
    // ...and answered at once with a newer publish.
    const waiting = poll("service_seen", `uid=failing&current=${v1.id}&seen=${v2.id}&wait=30`);
    while ((await api.waiting()) < 1) await new Promise((r) => setTimeout(r, 20));
    const v3 = await seedRelease(api, biz, "service_seen", "S3");
    await seedPublish(api, biz, "service_seen", v3.id);
    const woke = await waiting;
    expect(woke.status).toBe(200);
    expect(woke.body.release.id).toBe(v3.id);
  });

  it("answers a poll held on a failed release (seen + seenPublish) the moment that release is published again", async () => {
    await seedService(api, biz, "service_retry", [{ path: "/etc/r.conf", content: "r=1\n" }]);
    const v1 = await seedRelease(api, biz, "service_retry", "R1");
    await seedPublish(api, biz, "service_retry", v1.id);
    const failed = (await poll("service_retry", "uid=retry&wait=0")).body.release;
    // The same publish: still held (no retry loop).
    const same = await poll("service_retry", `uid=retry&seen=${v1.id}&seenPublish=${failed.publishId}&wait=0`);
    expect(same.status).toBe(304);
    const waiting = poll("service_retry", `uid=retry&seen=${v1.id}&seenPublish=${failed.publishId}&wait=30`);
    while ((await api.waiting()) < 1) await new Promise((r) => setTimeout(r, 20));
    await seedPublish(api, biz, "service_retry", v1.id);
    const woke = await waiting;
    expect(woke.status).toBe(200);
    expect(woke.body.release.id).toBe(v1.id);
    expect(woke.body.release.publishId).toBeGreaterThan(failed.publishId);
  });

  it("holds a poll whose target is current and answers it the moment a publish changes the target", async () => {
    const current = (await poll("service_demo", "uid=h1&wait=0")).body.release.id;
    const held = poll("service_demo", `uid=h1&current=${current}&wait=30`);
    await until(async () => (await api.waiting()) > 0);
    const v2 = await seedRelease(api, biz, "service_demo", "V2");
    await seedPublish(api, biz, "service_demo", v2.id);
    const r = await held;
    expect(r.status).toBe(200);
    expect(r.body.release).toMatchObject({ id: v2.id, name: "V2" });
    expect(await api.waiting()).toBe(0);
  });

  it("answers from the newest publish after publishes made at the same time, held or not", async () => {
    await seedService(api, biz, "service_race", [{ path: "/etc/r.conf", content: "r" }]);
    const versions = [];
    for (const name of ["R1", "R2", "R3"]) versions.push(await seedRelease(api, biz, "service_race", name));
    await seedPublish(api, biz, "service_race", versions[0].id);
    for (let round = 0; round < 5; round++) {
      // A held poll woken by whichever publish lands first must end on what the last one published.
      const held = poll("service_race", `uid=race-${round}&current=${versions[0].id}&wait=30`);
      const made = await Promise.all([seedPublish(api, biz, "service_race", versions[1].id), seedPublish(api, biz, "service_race", versions[2].id)]);
      const last = made[0].id > made[1].id ? versions[1] : versions[2];
      expect((await held).status).toBe(200);
      expect((await poll("service_race", "uid=after&wait=0")).body.release.id).toBe(last.id);
      await seedPublish(api, biz, "service_race", versions[0].id);
    }
  });

  it("gives each client the most recent publish that matches its labels (groups) and rolls back", async () => {
    await seedService(api, biz, "service_groups", [{ path: "/etc/a.conf", content: "a" }]);
    const v1 = await seedRelease(api, biz, "service_groups", "V1");
    const v2 = await seedRelease(api, biz, "service_groups", "V2");
    await seedPublish(api, biz, "service_groups", v1.id);
    const prod = await seedGroup(api, biz, "prod", "env=prod");
    await seedPublish(api, biz, "service_groups", v2.id, [prod.id]);
    const inProd = await poll("service_groups", "uid=p1&labels=env%3Dprod&wait=0");
    const inTest = await poll("service_groups", `uid=t1&labels=${encodeURIComponent('{"env":"test"}')}&wait=0`);
    expect(inProd.body.release.name).toBe("V2");
    expect(inTest.body.release.name).toBe("V1");
    await seedPublish(api, biz, "service_groups", v1.id);
    expect((await poll("service_groups", "uid=p1&labels=env%3Dprod&wait=0")).body.release.name).toBe("V1");
  });
});

describe("feed: blobs", () => {
  it("streams a released blob whole and by Range (206, Content-Range), 416 past the end", async () => {
    const url = `/feed/v1/bizs/${biz}/blobs/${await sha(binary)}`;
    const whole = await api.request(url, { headers: { authorization: `Bearer ${agent}` } });
    expect(whole.status).toBe(200);
    expect(whole.headers.get("etag")).toBe(`"${await sha(binary)}"`);
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(binary);
    const part = await api.request(url, { headers: { authorization: `Bearer ${agent}`, range: "bytes=100-" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 100-299/300");
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(binary.slice(100));
    const mid = await api.request(url, { headers: { authorization: `Bearer ${agent}`, range: "bytes=10-19" } });
    expect(new Uint8Array(await mid.arrayBuffer())).toEqual(binary.slice(10, 20));
    const past = await api.request(url, { headers: { authorization: `Bearer ${agent}`, range: "bytes=300-" } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */300");
  });

  it("refuses (404) a blob that is only in a draft, unknown, or malformed (400)", async () => {
    const draftOnly = "only in the draft\n";
    expect((await api.call("PUT", `/api/v1/bizs/${biz}/apps/service_demo/files/content?path=/etc/draft.conf`, draftOnly)).status).toBeLessThan(300);
    const r = await api.call("GET", `/feed/v1/bizs/${biz}/blobs/${await sha(draftOnly)}`, undefined, { token: agent });
    expect(r.status).toBe(404);
    expect((await api.call("GET", `/feed/v1/bizs/${biz}/blobs/${"0".repeat(64)}`, undefined, { token: agent })).status).toBe(404);
    const bad = await api.call("GET", `/feed/v1/bizs/${biz}/blobs/xyz`, undefined, { token: agent });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^sha256: /);
  });
});

describe("feed: bad input", () => {
  it("refuses wait above 60, malformed labels and current, naming the field", async () => {
    for (const [q, field] of [
      ["wait=61", "wait"],
      ["labels=novalue", "labels"],
      ["labels=%7Bbad", "labels"],
      ["current=abc", "current"],
    ]) {
      const r = await poll("service_demo", q);
      expect(r.status, q).toBe(400);
      expect(r.body.error.message, q).toMatch(new RegExp(`^${field}: `));
    }
  });

  it("answers 404 for an unknown service", async () => {
    expect((await poll("service_nope", "wait=0")).status).toBe(404);
  });
});

describe("feed: security", () => {
  it("refuses (403) a token scoped to a* reading service b, and hides b's blobs (404)", async () => {
    await seedService(api, biz, "a_service", [{ path: "/etc/a.conf", content: "a=1\n" }]);
    const secret = "b secret\n";
    await seedService(api, biz, "b_service", [{ path: "/etc/b.conf", content: secret }]);
    const vb = await seedRelease(api, biz, "b_service", "V1");
    await seedPublish(api, biz, "b_service", vb.id);
    const onlyA = (await agentToken(api, biz, ["a*"])).token;
    expect((await poll("a_service", "wait=0", {}, onlyA)).status).toBe(304);
    const r = await poll("b_service", "wait=0", {}, onlyA);
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("permission_denied");
    expect((await api.call("POST", `${feed("b_service")}/events`, { uid: "h", releaseId: vb.id, status: "SUCCESS" }, { token: onlyA })).status).toBe(403);
    expect((await api.call("POST", `${feed("b_service")}/heartbeat`, { uid: "h" }, { token: onlyA })).status).toBe(403);
    expect((await api.call("GET", `/feed/v1/bizs/${biz}/blobs/${await sha(secret)}`, undefined, { token: onlyA })).status).toBe(404);
    const onlyB = (await agentToken(api, biz, ["b*"])).token;
    expect((await api.call("GET", `/feed/v1/bizs/${biz}/blobs/${await sha(secret)}`, undefined, { token: onlyB })).status).toBe(200);
  });

  it("refuses a token of another biz (403), a revoked token and no token (401)", async () => {
    expect((await api.call("POST", "/api/v1/bizs", { id: 11, name: "other" })).status).toBe(201);
    const other = (await agentToken(api, 11, ["*"])).token;
    expect((await poll("service_demo", "wait=0", {}, other)).status).toBe(403);
    const revoked = await agentToken(api, biz, ["*"], "to-revoke");
    expect((await poll("service_demo", "wait=0", {}, revoked.token)).status).toBe(200);
    expect((await api.call("DELETE", `/api/v1/credentials/${revoked.id}`)).status).toBe(200);
    const r = await poll("service_demo", "wait=0", {}, revoked.token);
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("unauthenticated");
    expect((await api.call("GET", `${feed("service_demo")}/release?wait=0`, undefined, { token: null })).status).toBe(401);
  });

  it("refuses (403) an agent token on the admin clients listing", async () => {
    expect((await api.call("GET", `/api/v1/bizs/${biz}/apps/service_demo/clients`, undefined, { token: agent })).status).toBe(403);
  });
});

async function until(cond: () => Promise<boolean>) {
  for (let i = 0; i < 2000 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 5));
}
