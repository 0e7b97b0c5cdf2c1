import http from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app";
import { createTestApi, nodeOnly, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

/** The app on a real loopback socket in this process, so disconnects are real TCP closes. */
let api: TestApi;
let server: ReturnType<typeof serve>;
let base: string;
let agent: string;
let v1: { id: number };
const biz = 10;
const skip = nodeOnly("counts the Node notifier's waiters (api.deps)");

beforeAll(async () => {
  if (skip) return;
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  await seedService(api, biz, "service_demo", [{ path: "/etc/demo.conf", content: "v=1\n" }]);
  v1 = await seedRelease(api, biz, "service_demo", "V1");
  await seedPublish(api, biz, "service_demo", v1.id);
  agent = (await agentToken(api, biz, ["service_*"])).token;
  const app = createApp(api.deps);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await api?.close();
});

const waiting = () => (api.deps.notifier as unknown as { waiting(): number }).waiting();
async function until(cond: () => boolean) {
  for (let i = 0; i < 4000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

function get(agentPool: http.Agent, path: string): { done: Promise<{ status: number; body: string }>; req: http.ClientRequest } {
  let req!: http.ClientRequest;
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = http.get(`${base}${path}`, { agent: agentPool, headers: { authorization: `Bearer ${agent}` } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
  });
  return { done, req };
}

describe.skipIf(skip)("feed faults: over real sockets", () => {
  it("drops the waiter of a long-poll whose client disconnects (no leak)", async () => {
    const pool = new http.Agent({ keepAlive: false });
    const { done, req } = get(pool, `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=gone&current=${v1.id}&wait=60`);
    done.catch(() => {});
    await until(() => waiting() === 1);
    expect(waiting()).toBe(1);
    req.destroy();
    await until(() => waiting() === 0);
    expect(waiting()).toBe(0);
    pool.destroy();
  });

  it("answers 1,000 concurrent long-polls with the new manifest after one publish, none lost", async () => {
    const pool = new http.Agent({ keepAlive: true, maxSockets: Infinity });
    const n = 1000;
    const polls = Array.from({ length: n }, (_, i) => get(pool, `/feed/v1/bizs/${biz}/apps/service_demo/release?uid=host-${i}&current=${v1.id}&wait=60`).done);
    await until(() => waiting() === n);
    expect(waiting()).toBe(n);
    const v2 = await seedRelease(api, biz, "service_demo", "V2");
    await seedPublish(api, biz, "service_demo", v2.id);
    const answers = await Promise.all(polls);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(n);
    expect(new Set(answers.map((a) => JSON.parse(a.body).release.id))).toEqual(new Set([v2.id]));
    expect(waiting()).toBe(0);
    pool.destroy();
  });
});
