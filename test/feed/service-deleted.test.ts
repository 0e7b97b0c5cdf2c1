/**
 * A service deleted while agents poll it, then created again under the same name: polls held on
 * it end with 404 at once, no poll is answered from the deleted service's releases, and the new
 * service's polls are held on and woken by the new service's publishes. Runs on every runtime.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

const biz = 10;
const app = "service_phoenix";
let api: TestApi;
let token: string;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  token = (await agentToken(api, biz, ["service_*"])).token;
});
afterAll(() => api?.close());

const poll = (query: string) => api.call("GET", `/feed/v1/bizs/${biz}/apps/${app}/release?${query}`, undefined, { token });

async function heldOn(serviceId: number, n: number) {
  for (let i = 0; i < 2000 && (await api.waiting(serviceId)) < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(await api.waiting(serviceId)).toBe(n);
}

describe("feed: a service deleted and created again", () => {
  it("ends the polls held on a deleted service with 404, answers 404 after, and serves the new service of the same name from its own releases", async () => {
    const old = await seedService(api, biz, app, [{ path: "/etc/phoenix.conf", content: "old\n" }]);
    const oldV1 = await seedRelease(api, biz, app, "OLD");
    await seedPublish(api, biz, app, oldV1.id);
    // Warm every cache the feed keeps (token, service, publish list, manifest) with answered polls.
    for (let i = 0; i < 3; i++) expect((await poll(`uid=warm-${i}&wait=0`)).body.release.name).toBe("OLD");

    // Held for 30 s unless the deletion ends them: a 304 after the wait would be a poll left on a deleted service.
    const held = [poll(`uid=h1&current=${oldV1.id}&wait=30`), poll(`uid=h2&current=${oldV1.id}&wait=30`)];
    await heldOn(old.id, 2);
    expect((await api.call("DELETE", `/api/v1/bizs/${biz}/apps/${app}`)).status).toBe(200);
    for (const r of await Promise.all(held)) {
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe("not_found");
    }
    expect(await api.waiting(old.id)).toBe(0);
    // No answer from the deleted service's releases, held or not.
    for (const q of ["uid=after-1&wait=0", `uid=after-2&current=${oldV1.id}&wait=1`, "uid=after-3&wait=1"]) expect((await poll(q)).status).toBe(404);

    const again = await seedService(api, biz, app, [{ path: "/etc/phoenix.conf", content: "new\n" }]);
    expect(again.id).not.toBe(old.id);
    // Nothing published yet: no release (never the old one).
    const none = await poll("uid=n1&wait=0");
    expect(none.status).toBe(304);
    expect(none.headers.get("etag")).toBe('"none"');
    const new1 = await seedRelease(api, biz, app, "NEW1");
    await seedPublish(api, biz, app, new1.id);
    const first = await poll(`uid=n1&current=${oldV1.id}&wait=0`);
    expect(first.status).toBe(200);
    expect(first.body.release.name).toBe("NEW1");
    // Held on the new service and woken by its publish (not left on the old id until the wait ends).
    const waiting = poll(`uid=n1&current=${new1.id}&wait=30`);
    await heldOn(again.id, 1);
    const new2 = await seedRelease(api, biz, app, "NEW2");
    await seedPublish(api, biz, app, new2.id);
    const woken = await waiting;
    expect(woken.status).toBe(200);
    expect(woken.body.release.name).toBe("NEW2");
  }, 60_000);
});
