/**
 * A fleet reconnecting at once (issue 11), for correctness only (figures: `npm run bench:feed`):
 * every agent is held or answered with its own target, a publish in the middle of the herd reaches
 * exactly the agents it targets, and every client is recorded once the batched sightings are written.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedGroup, seedPublish, seedRelease, seedService } from "../helpers/seed";

const N = 300;
const biz = 10;
let api: TestApi;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
});
afterAll(() => api?.close());

describe("feed: a herd of distinct agents", () => {
  it("gives every agent its manifest, none lost and none wrong, with a publish during the herd", async () => {
    const svc = await seedService(api, biz, "service_herd", [{ path: "/etc/herd.conf", content: "v=1\n" }]);
    const v1 = await seedRelease(api, biz, "service_herd", "V1");
    await seedPublish(api, biz, "service_herd", v1.id);
    const v2 = await seedRelease(api, biz, "service_herd", "V2");
    const prod = await seedGroup(api, biz, "herd-prod", "env=prod");
    const token = (await agentToken(api, biz, ["service_herd"], "herd")).token;
    const env = (i: number) => (i % 2 === 0 ? "prod" : "test");
    const poll = (i: number) =>
      api.call("GET", `/feed/v1/bizs/${biz}/apps/service_herd/release?uid=herd-${i}&labels=env%3D${env(i)}&current=${v1.id}&wait=15`, undefined, { token, headers: { "x-edgeconf-mode": "watch" } });

    // The hold (15 s) outlasts a publish on a loaded 2-core machine: a 304 for a prod agent means a
    // lost wake-up, never a slow publish.
    const first = Array.from({ length: N / 2 }, (_, i) => poll(i));
    for (let i = 0; i < 3000 && (await api.waiting(svc.id)) < N / 2; i++) await new Promise((r) => setTimeout(r, 10));
    // The second half of the herd arrives while the publish is being made.
    const second = Array.from({ length: N / 2 }, (_, i) => poll(N / 2 + i));
    const published = seedPublish(api, biz, "service_herd", v2.id, [prod.id]);
    const answers = await Promise.all([...first, ...second]);
    await published;

    const wrong = answers.flatMap((r, i) => {
      const ok = env(i) === "prod" ? r.status === 200 && r.body.release.id === v2.id : r.status === 304 && r.headers.get("etag") === `"r${v1.id}"`;
      return ok ? [] : [`herd-${i}: ${r.status} ${JSON.stringify(r.body)}`];
    });
    expect(wrong).toEqual([]);

    const clients = await api.call("GET", `/api/v1/bizs/${biz}/apps/service_herd/clients?limit=500`);
    expect(clients.body.total).toBe(N);
    const byUid = new Map<string, any>(clients.body.items.map((c: any) => [c.uid, c]));
    for (let i = 0; i < N; i++) {
      const c = byUid.get(`herd-${i}`);
      expect(c, `herd-${i}`).toBeDefined();
      expect(c.labels).toEqual({ env: env(i) });
      expect(c.mode).toBe("watch");
      expect(c.currentRelease.id).toBe(v1.id);
      expect(c.targetRelease.id).toBe(env(i) === "prod" ? v2.id : v1.id);
    }
  });

  it("ends every poll on the newest of concurrent publishes: a wake never leaves an older publish list behind", async () => {
    // The publishing process reads the list its wake hands out before it notifies; two publishes at
    // once must not leave the earlier read in place after the later notify (it would send hosts that
    // applied the newest release back to the other one, for up to the list's 60 s lifetime).
    const svc = await seedService(api, biz, "service_race", [{ path: "/etc/race.conf", content: "v=0\n" }]);
    const releases = [];
    for (let i = 0; i < 3; i++) {
      expect((await api.call("PUT", `/api/v1/bizs/${biz}/apps/service_race/files/content?path=%2Fetc%2Frace.conf`, `v=${i}\n`)).status).toBeLessThan(300);
      releases.push(await seedRelease(api, biz, "service_race", `R${i}`));
    }
    const token = (await agentToken(api, biz, ["service_race"], "race")).token;
    const poll = (uid: string, query: string) => api.call("GET", `/feed/v1/bizs/${biz}/apps/service_race/release?uid=${uid}&${query}`, undefined, { token });
    let current = (await seedPublish(api, biz, "service_race", releases[0].id)) && releases[0].id;
    for (let round = 0; round < 8; round++) {
      const held = Array.from({ length: 10 }, (_, i) => poll(`race-${round}-${i}`, `current=${current}&wait=15`));
      for (let i = 0; i < 3000 && (await api.waiting(svc.id)) < 10; i++) await new Promise((r) => setTimeout(r, 10));
      // The two releases the held clients are not on: either publish changes their target.
      const [x, y] = releases.filter((r) => r.id !== current);
      const [a, b] = await Promise.all([seedPublish(api, biz, "service_race", x.id), seedPublish(api, biz, "service_race", y.id)]);
      const newest = a.id > b.id ? x.id : y.id;
      for (const r of await Promise.all(held)) expect([x.id, y.id]).toContain(r.body.release?.id);
      // After both publishes answered: a client with nothing gets the newest publish's release at once,
      // and a client already on it is held (304), never answered with the older one.
      const fresh = await poll(`race-${round}-fresh`, "wait=0");
      expect(fresh.body.release.id, `round ${round}`).toBe(newest);
      const onNewest = await poll(`race-${round}-on`, `current=${newest}&wait=1`);
      expect(onNewest.status, `round ${round}: ${JSON.stringify(onNewest.body)}`).toBe(304);
      current = newest;
    }
  });
});
