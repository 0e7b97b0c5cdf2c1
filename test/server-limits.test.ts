/**
 * Limits of the Node server as a real process on loopback: oversized bodies answered with a 413
 * that Node's `fetch` reads (and the keep-alive socket survives), slow senders cut with 408, and
 * held long-polls left alone by those timeouts.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type ServerProcess } from "./helpers/server";

let server: ServerProcess;
let agentTokenValue: string;
const BIZ = 10;

async function call(method: string, path: string, body?: unknown, token = server.adminToken) {
  const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  // Short receive timeouts so a trickle is cut within the test (8 s leaves a 120 MiB upload on a
  // loaded machine time to arrive); long-polls (10 s) outlast them.
  server = await startServer({ env: { EDGECONF_HEADERS_TIMEOUT_SECONDS: "1", EDGECONF_REQUEST_TIMEOUT_SECONDS: "8" } });
  expect((await call("POST", "/api/v1/bizs", { id: BIZ, name: "ten" })).status).toBe(201);
  expect((await call("POST", `/api/v1/bizs/${BIZ}/apps`, { name: "svc", configType: "file" })).status).toBe(201);
  agentTokenValue = (await call("POST", "/api/v1/credentials", { name: "agent", kind: "agent", bizId: BIZ, apps: ["svc"] })).body.token;
});
afterAll(() => server?.stop());

/** One request on a keep-alive agent with a single socket; resolves with status, body and whether the socket was reused. */
function onSocket(agent: http.Agent, method: string, path: string, body?: Uint8Array | string) {
  return new Promise<{ status: number; body: string; reused: boolean }>((resolve, reject) => {
    const req = http.request(server.url + path, { method, agent, headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, body: text, reused: req.reusedSocket }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("oversized bodies: a 413 every client reads", () => {
  it("error: 2 MiB of JSON to a script route is answered 413 JSON through fetch, and nothing is stored", async () => {
    const r = await call("POST", `/api/v1/bizs/${BIZ}/scripts`, { name: "big", type: "shell", content: "x".repeat(2 * 1024 * 1024) });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("payload_too_large");
    expect((await call("GET", `/api/v1/bizs/${BIZ}/scripts`)).body.total).toBe(0);
  });

  it("error: 120 MiB to an upload is answered 413 JSON through fetch; the next request works", async () => {
    const res = await fetch(`${server.url}/api/v1/bizs/${BIZ}/apps/svc/files/content?path=/etc/big.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/octet-stream" },
      body: new Uint8Array(120 * 1024 * 1024),
    });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe("payload_too_large");
    expect((await call("GET", `/api/v1/bizs/${BIZ}/apps/svc/files`)).body.total).toBe(0);
  });

  it("happy: the keep-alive socket that carried the oversized body serves the next request", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = await onSocket(agent, "POST", `/api/v1/bizs/${BIZ}/scripts`, JSON.stringify({ name: "big", type: "shell", content: "y".repeat(3 * 1024 * 1024) }));
      expect(big.status).toBe(413);
      expect(JSON.parse(big.body).error.code).toBe("payload_too_large");
      const next = await onSocket(agent, "GET", "/api/v1/bizs");
      expect(next.status).toBe(200);
      expect(next.reused).toBe(true);
    } finally {
      agent.destroy();
    }
  });
});

/** Opens a raw socket, sends `head`, then trickles `trickle` one byte per 100 ms; resolves with what the server wrote once it closes. */
function trickle(head: string, rest: string) {
  return new Promise<{ reply: string; sent: number }>((resolve, reject) => {
    const socket = net.connect(server.port, "127.0.0.1");
    let reply = "";
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding("utf8");
    socket.on("data", (d) => (reply += d));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ reply, sent });
    });
    socket.on("connect", () => {
      socket.write(head);
      timer = setInterval(() => {
        if (sent >= rest.length) {
          clearInterval(timer);
          return reject(new Error("the server let the whole trickle through"));
        }
        socket.write(rest[sent++]);
      }, 100);
    });
  });
}

describe("slow clients", () => {
  it("security: a body trickled one byte at a time is cut with 408 long before it ends", async () => {
    const body = JSON.stringify({ name: "slow", type: "shell", content: "z".repeat(2000) });
    const head = `POST /api/v1/bizs/${BIZ}/scripts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.adminToken}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const r = await trickle(head, body);
    expect(r.reply).toMatch(/^HTTP\/1\.1 408/);
    expect(r.sent).toBeLessThan(body.length);
    expect((await call("GET", `/api/v1/bizs/${BIZ}/scripts?search=slow`)).body.total).toBe(0);
  });

  it("security: headers trickled one byte at a time are cut with 408", async () => {
    const headers = `GET /api/v1/bizs HTTP/1.1\r\nHost: x\r\nX-Slow: ${"s".repeat(2000)}\r\n\r\n`;
    const r = await trickle("", headers);
    expect(r.reply).toMatch(/^HTTP\/1\.1 408/);
    expect(r.sent).toBeLessThan(headers.length);
  });

  it("happy: a long-poll held longer than the receive timeouts is answered, not cut", async () => {
    const res = await fetch(`${server.url}/feed/v1/bizs/${BIZ}/apps/svc/release?wait=10&uid=held`, { headers: { authorization: `Bearer ${agentTokenValue}` } });
    expect(res.status).toBe(304);
    expect(res.headers.get("x-edgeconf-wait")).toBe("10");
  });
});
