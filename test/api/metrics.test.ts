import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, nodeOnly, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

let api: TestApi;

beforeAll(async () => {
  api = await createTestApi();
  await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" });
});
afterAll(() => api?.close());

describe("/metrics", () => {
  it("security: needs an admin token", async () => {
    expect((await api.request("/metrics")).status).toBe(401);
    const agent = await agentToken(api, 10, ["*"]);
    expect((await api.request("/metrics", { headers: { authorization: `Bearer ${agent.token}` } })).status).toBe(403);
  });

  it.skipIf(nodeOnly("the held-poll gauge counts waiters in this process; on Workers they live in Durable Objects"))("counts the long-polls held by this process", async () => {
    await seedService(api, 10, "svc_metrics", [{ path: "/etc/m.conf", content: "a=1\n" }]);
    const v1 = await seedRelease(api, 10, "svc_metrics", "V1");
    await seedPublish(api, 10, "svc_metrics", v1.id);
    const agent = await agentToken(api, 10, ["svc_*"], "metrics-agent");
    const gauge = async () => {
      const res = await api.request("/metrics", { headers: { authorization: `Bearer ${api.adminToken}` } });
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      return Number(/^edgeconf_feed_waiting (\d+)$/m.exec(await res.text())![1]);
    };
    expect(await gauge()).toBe(0);
    const held = api.request(`/feed/v1/bizs/10/apps/svc_metrics/release?uid=h1&current=${v1.id}&wait=30`, { headers: { authorization: `Bearer ${agent.token}` } });
    while ((await gauge()) < 1) await new Promise((r) => setTimeout(r, 20));
    const v2 = await seedRelease(api, 10, "svc_metrics", "V2");
    await seedPublish(api, 10, "svc_metrics", v2.id);
    expect((await (await held).json()).release.id).toBe(v2.id);
    expect(await gauge()).toBe(0);
  });
});
