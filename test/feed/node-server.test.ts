/**
 * The Node server's fast path for held release polls (functions/node/feed-long-poll.ts) answers
 * exactly as the app does: the same requests sent over loopback HTTP to the server the Node entry
 * runs and to the app in process give the same status, body (request id aside) and feed headers.
 * (`EDGECONF_TEST_NODE_SERVER=1` runs every feed suite over that server too.)
 */
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { createNodeServer } from "../../functions/node/serve";
import { createTestApi, nodeOnly, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

const biz = 10;
const feed = `/feed/v1/bizs/${biz}/apps/service_fast`;
let api: TestApi;
let server: Server;
let base = "";
let app: ReturnType<typeof createApp>;
let svc: { id: number };
let v1: { id: number };
let token = "";

const skip = nodeOnly("serves the Node process's app over node:http");

beforeAll(async () => {
  if (skip) return;
  api = await createTestApi();
  app = createApp(api.node.deps);
  server = createNodeServer(app, api.node.deps);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  svc = await seedService(api, biz, "service_fast", [{ path: "/etc/fast.conf", content: "f=1\n" }]);
  v1 = await seedRelease(api, biz, "service_fast", "V1");
  await seedPublish(api, biz, "service_fast", v1.id);
  token = (await agentToken(api, biz, ["service_*"], "fast")).token;
});
afterAll(async () => {
  if (skip) return;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await api.close();
});

type Seen = { status: number; body: unknown; headers: Record<string, string | null> };
const FEED_HEADERS = ["etag", "content-type", "cache-control", "x-edgeconf-wait", "x-request-id", "retry-after"];

async function seen(res: Response): Promise<Seen> {
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  return { status: res.status, body, headers: Object.fromEntries(FEED_HEADERS.map((h) => [h, res.headers.get(h)])) };
}

/** The same request over the socket (twice: the first makes the token known to the fast path) and in process. */
async function both(path: string, headers: Record<string, string> = {}): Promise<[Seen, Seen]> {
  const init = { headers: { authorization: `Bearer ${token}`, "x-request-id": "parity-1", ...headers } };
  await fetch(base + path, init).then((r) => r.arrayBuffer());
  return [await seen(await fetch(base + path, init)), await seen(await app.request(path, init))];
}

async function until(cond: () => Promise<boolean>) {
  for (let i = 0; i < 2000 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
}

describe.skipIf(skip)("feed over the Node server: the fast path answers as the app does", () => {
  it.each([
    ["happy: the manifest at once", () => `${feed}/release?uid=p1&wait=0`],
    ["happy: not modified after the wait", () => `${feed}/release?uid=p2&current=${v1.id}&wait=1`],
    ["happy: labels and seen", () => `${feed}/release?uid=p3&labels=env%3Dprod%2Czone%3Da&seen=${v1.id}&seenPublish=1&wait=0`],
    ["error: wait past 60", () => `${feed}/release?uid=p4&wait=61`],
    ["error: a key given twice", () => `${feed}/release?uid=p5&uid=p6&wait=0`],
    ["error: bad labels", () => `${feed}/release?uid=p7&labels=novalue&wait=0`],
    ["error: unknown service", () => `/feed/v1/bizs/${biz}/apps/service_nope/release?uid=p8&wait=0`],
    ["security: a service the token may not read", () => `/feed/v1/bizs/${biz}/apps/other/release?uid=p9&wait=0`],
    ["security: a NUL in the uid", () => `${feed}/release?uid=p%00x&wait=0`],
    ["error: an empty uid", () => `${feed}/release?uid=&wait=0`],
    ["security: a newline or a bidi control in the uid", () => `${feed}/release?uid=p%0Ax%E2%80%AE&wait=0`],
    ["error: a leading zero in current", () => `${feed}/release?uid=p10&current=01&wait=0`],
    ["error: a sign in wait", () => `${feed}/release?uid=p11&wait=%2B5`],
    ["error: an exponent in seen", () => `${feed}/release?uid=p12&seen=1e1&wait=0`],
    ["error: a leading zero in the biz", () => `/feed/v1/bizs/0${biz}/apps/service_fast/release?uid=p13&wait=0`],
  ])("%s", async (_name, path) => {
    const [socket, inProcess] = await both(path());
    expect(socket).toEqual(inProcess);
  });

  it("error: a uid that is empty or holds control/bidi characters, and ints not in canonical decimal, are 400s naming the parameter on both paths", async () => {
    const cases: [string, string][] = [
      [`${feed}/release?uid=&wait=0`, "uid"],
      [`${feed}/release?uid=p%0Ax%E2%80%AE&wait=0`, "uid"],
      [`${feed}/release?uid=p10&current=01&wait=0`, "current"],
      [`${feed}/release?uid=p11&wait=%2B5`, "wait"],
      [`${feed}/release?uid=p12&seen=1e1&wait=0`, "seen"],
      [`/feed/v1/bizs/0${biz}/apps/service_fast/release?uid=p13&wait=0`, "biz"],
    ];
    for (const [path, field] of cases) {
      const [socket] = await both(path);
      expect(socket.status, path).toBe(400);
      expect(JSON.stringify(socket.body), path).toContain(field);
    }
  });

  it("happy: If-None-Match holds like current=", async () => {
    const [socket, inProcess] = await both(`${feed}/release?uid=p10&wait=1`, { "if-none-match": `"r${v1.id}"` });
    expect(socket.status).toBe(304);
    expect(socket).toEqual(inProcess);
  });

  it("security: a token this process never saw, and none at all, are the app's to refuse", async () => {
    for (const authorization of ["Bearer eca_not-a-real-token-0000", ""]) {
      const init = { headers: { authorization, "x-request-id": "parity-2" } };
      expect(await seen(await fetch(`${base}${feed}/release?wait=0`, init))).toEqual(await seen(await app.request(`${feed}/release?wait=0`, init)));
    }
  });

  it("happy: a publish wakes a held poll with the new manifest; a newer poll of the same uid replaces one (409); revocation ends one (401)", async () => {
    const held = fetch(`${base}${feed}/release?uid=w1&current=${v1.id}&wait=30`, { headers: { authorization: `Bearer ${token}` } }).then(seen);
    await until(async () => (await api.waiting(svc.id)) === 1);
    const v2 = await seedRelease(api, biz, "service_fast", "V2");
    await seedPublish(api, biz, "service_fast", v2.id);
    const woke = await held;
    expect(woke.status).toBe(200);
    expect((woke.body as { release: { id: number } }).release.id).toBe(v2.id);
    expect(woke.headers.etag).toBe(`"r${v2.id}"`);

    const first = fetch(`${base}${feed}/release?uid=w2&current=${v2.id}&wait=30`, { headers: { authorization: `Bearer ${token}` } }).then(seen);
    await until(async () => (await api.waiting(svc.id)) === 1);
    const second = fetch(`${base}${feed}/release?uid=w2&current=${v2.id}&wait=30`, { headers: { authorization: `Bearer ${token}` } }).then(seen);
    const replaced = await first;
    expect(replaced.status).toBe(409);
    expect((replaced.body as { error: { code: string } }).error.code).toBe("conflict");

    const t = await agentToken(api, biz, ["service_*"], "fast-revoked");
    await fetch(`${base}${feed}/release?uid=w3&wait=0`, { headers: { authorization: `Bearer ${t.token}` } }).then((r) => r.arrayBuffer());
    const revocable = fetch(`${base}${feed}/release?uid=w3&current=${v2.id}&wait=30`, { headers: { authorization: `Bearer ${t.token}` } }).then(seen);
    await until(async () => (await api.waiting(svc.id)) === 2);
    expect((await api.call("DELETE", `/api/v1/credentials/${t.id}`)).status).toBe(200);
    const revoked = await revocable;
    expect(revoked.status).toBe(401);
    expect((revoked.body as { error: { code: string } }).error.code).toBe("unauthenticated");
    // The poll that replaced the first is still held: a publish ends it with the manifest.
    const v3 = await seedRelease(api, biz, "service_fast", "V3");
    await seedPublish(api, biz, "service_fast", v3.id);
    expect((await second).status).toBe(200);
  });

  it("happy: a client that goes away leaves no waiter behind", async () => {
    const ctl = new AbortController();
    const target = (await api.call("GET", `${feed}/release?wait=0`, undefined, { token })).body.release.id;
    const held = fetch(`${base}${feed}/release?uid=g2&current=${target}&wait=30`, { headers: { authorization: `Bearer ${token}` }, signal: ctl.signal }).catch(() => null);
    await until(async () => (await api.waiting(svc.id)) === 1);
    ctl.abort();
    await held;
    await until(async () => (await api.waiting(svc.id)) === 0);
    expect(await api.waiting(svc.id)).toBe(0);
  });
});
