/**
 * README "Two listeners": with EDGECONF_API_PORT the console and the admin API listen on a port of
 * their own and PORT serves the agents' feed only. Through the server as a process, over loopback.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallResult } from "./helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "./helpers/seed";
import { runToExit, startServer, type ServerProcess } from "./helpers/server";

let server: ServerProcess;

/** An admin call to `base`, as the CLI makes it. */
const call =
  (base: string) =>
  async <T = any>(method: string, path: string, body?: unknown, opts: { token?: string | null } = {}): Promise<CallResult<T>> => {
    const token = opts.token === undefined ? server.adminToken : opts.token;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(typeof body === "string" ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text, headers: res.headers } as CallResult<T>;
  };

/** A request with its path sent exactly as written (fetch would resolve `..` before sending). */
function raw(base: string, path: string, token: string): Promise<{ status: number; body: any }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    http
      .get({ hostname, port, path, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, body: text.startsWith("{") ? JSON.parse(text) : text }));
      })
      .on("error", reject);
  });
}

beforeAll(async () => {
  server = await startServer({ env: { EDGECONF_API_PORT: "0" } });
}, 180_000);
afterAll(() => server?.stop());

describe("EDGECONF_API_PORT: the console and admin API on their own listener", () => {
  it("serves the admin API there and the agents' feed on PORT, and wakes a poll held on PORT when a publish lands on the API port", async () => {
    expect(server.apiUrl).not.toBe(server.url);
    expect(server.output()).toContain(`edgeconf api listening on ${server.apiUrl}`);
    expect(server.output()).toContain(`console: ${server.apiUrl}/`);
    const api = { call: call(server.apiUrl) };
    expect((await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" })).status).toBe(201);
    await seedService(api, 10, "nginx", [{ path: "/etc/nginx/nginx.conf", content: "workers 1;\n" }]);
    const v1 = await seedRelease(api, 10, "nginx", "v1");
    await seedPublish(api, 10, "nginx", v1.id);
    const agent = await agentToken(api, 10, ["nginx"]);

    const feed = `${server.url}/feed/v1/bizs/10/apps/nginx/release?uid=host-1`;
    const first = await fetch(feed, { headers: { authorization: `Bearer ${agent.token}` } });
    expect(first.status).toBe(200);
    expect((await first.json()).release.id).toBe(v1.id);

    const held = fetch(`${feed}&current=${v1.id}&wait=30`, { headers: { authorization: `Bearer ${agent.token}` } });
    await api.call("PUT", "/api/v1/bizs/10/apps/nginx/files/content?path=/etc/nginx/nginx.conf", "workers 2;\n");
    const v2 = await seedRelease(api, 10, "nginx", "v2");
    await seedPublish(api, 10, "nginx", v2.id);
    const woken = await held;
    expect(woken.status).toBe(200);
    expect((await woken.json()).release.id).toBe(v2.id);

    // The blob the manifest names is the feed's too.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    // And the API port still serves the feed, for an operator trying an agent on the same host.
    expect((await fetch(feed, { headers: { authorization: `Bearer ${agent.token}` } })).status).toBe(200);
  });

  it("refuses every admin and console path on PORT with 404 naming EDGECONF_API_PORT, however the path is spelled, whatever the token", async () => {
    for (const path of ["/api/v1/bizs", "/", "/metrics", "/api/v1/reference", "/%61pi/v1/bizs", "/feed/../api/v1/bizs", "/feed/%2e%2e/api/v1/bizs", "/FEED/../api/v1/bizs"]) {
      const r = await raw(server.url, path, server.adminToken);
      expect(r.status, path).toBe(404);
      expect(r.body.error.code, path).toBe("not_found");
      expect(r.body.error.message, path).toContain("EDGECONF_API_PORT");
    }
    // A write is refused before it is read: nothing created.
    const write = await fetch(`${server.url}/api/v1/bizs`, { method: "POST", headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ id: 11, name: "sneaky" }) });
    expect(write.status).toBe(404);
    expect((await call(server.apiUrl)("GET", "/api/v1/bizs/11")).status).toBe(404);
  });

  it("takes agent tokens only on PORT: an admin token there is refused 403 on every feed route, and works on the API port", async () => {
    const feedPath = "/feed/v1/bizs/10/apps/nginx/release?uid=admin-probe&wait=0";
    for (const [method, path, body] of [
      ["GET", feedPath, undefined],
      ["GET", "/feed/v1/bizs/10/apps/nginx/release?uid=admin-probe&current=1&wait=1", undefined],
      ["POST", "/feed/v1/bizs/10/apps/nginx/events", { uid: "host-1", status: "FAILED", releaseId: 1, reason: "forged" }],
    ] as const) {
      const r = await call(server.url)(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.error.message).toContain("agent tokens only");
    }
    expect((await call(server.apiUrl)("GET", feedPath)).status).toBe(200);
  });

  it("invites no body to an admin path on PORT: `Expect: 100-continue` gets the final 404 first", async () => {
    const { port } = new URL(server.url);
    const first = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(Number(port), "127.0.0.1", () =>
        sock.write(`POST /api/v1/bizs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 27\r\nExpect: 100-continue\r\n\r\n`),
      );
      let got = "";
      sock.on("data", (d) => {
        got += d;
        if (got.includes("\r\n")) resolve(got.split("\r\n")[0]), sock.destroy();
      });
      sock.on("error", reject);
    });
    expect(first).toBe("HTTP/1.1 404 Not Found");
  });

  it("stops at start when EDGECONF_API_HOST is set without EDGECONF_API_PORT (an empty value counts as unset)", async () => {
    const r = await runToExit({ dataDir: server.dataDir + "-host", env: { EDGECONF_API_HOST: "127.0.0.1", EDGECONF_API_PORT: "" } });
    expect(r.code).toBe(1);
    expect(r.output).toContain("EDGECONF_API_HOST: set EDGECONF_API_PORT too");
  });

  it("stops at start when EDGECONF_API_PORT equals PORT, naming the setting", async () => {
    const r = await runToExit({ dataDir: server.dataDir + "-same", env: { PORT: "18931", EDGECONF_API_PORT: "18931" } });
    expect(r.code).toBe(1);
    expect(r.output).toContain("EDGECONF_API_PORT: must differ from PORT (18931)");
  });
});
