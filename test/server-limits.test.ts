/**
 * Limits of the Node server as a real process on loopback: oversized bodies answered with a 413
 * that Node's `fetch` reads (and the keep-alive socket survives), oversized or malformed request
 * heads answered with a JSON body (not Node's bare status line), slow senders cut with 408, and
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

/** Sends `raw` on a fresh socket; resolves with everything the server wrote until it closed. */
function rawExchange(raw: string) {
  return new Promise<string>((resolve) => {
    const socket = net.connect(server.port, "127.0.0.1");
    let reply = "";
    socket.setEncoding("utf8");
    socket.on("data", (d) => (reply += d));
    socket.on("error", () => {});
    socket.on("close", () => resolve(reply));
    socket.on("connect", () => socket.write(raw));
  });
}

/** The JSON body after the head of a raw HTTP reply. */
const bodyOf = (reply: string) => JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4));

describe("oversized or malformed request heads: a JSON answer, not Node's bare status line", () => {
  const labels = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`label${i}`, `value${i}`])));
  const poll = (labelsText: string) =>
    fetch(`${server.url}/feed/v1/bizs/${BIZ}/apps/svc/release?wait=0&uid=h&labels=${encodeURIComponent(labelsText)}`, { headers: { authorization: `Bearer ${agentTokenValue}` } });

  it("error: a poll with labels past the field's 8,192 characters (~25 KB in the URL) is a 400 naming labels, as on the Worker", async () => {
    const text = labels(600);
    expect(text.length).toBeGreaterThan(8192);
    const res = await poll(text);
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe("invalid_argument");
    expect(body.error.message).toMatch(/^labels: /);
  });

  it("happy: labels within the field's limit that URL-encode past Node's default 16 KB head are taken", async () => {
    // Quotes are legal in a value: each is `\"` in the JSON and `%5C%22` (six bytes) in the URL.
    const text = JSON.stringify(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, '"'.repeat(120)])));
    expect(text.length).toBeLessThanOrEqual(8192);
    expect(encodeURIComponent(text).length).toBeGreaterThan(20 * 1024);
    const res = await poll(text);
    expect([200, 304]).toContain(res.status);
  });

  it("error: a request line and headers past the server's limit get 431 with a JSON error body through fetch", async () => {
    const res = await poll(labels(2000).repeat(2));
    expect(res.status).toBe(431);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = await res.json();
    expect(body.error.code).toBe("payload_too_large");
    expect(body.error.message).toMatch(/^request line and headers larger than 32 KB/);
  });

  it("error: the same on a raw socket, and a malformed request line is a 400 with a JSON body", async () => {
    const overflow = await rawExchange(`GET /api/v1/bizs?x=${"a".repeat(200_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(overflow).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(overflow).error.code).toBe("payload_too_large");
    const malformed = await rawExchange("GET /api/v1/bizs HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
    expect(malformed).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(malformed).error).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^request: not valid HTTP/) });
    expect((await call("GET", "/api/v1/bizs")).status).toBe(200);
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
    expect(bodyOf(r.reply).error.message).toMatch(/did not arrive in time/);
    expect(r.sent).toBeLessThan(headers.length);
  });

  it("happy: a long-poll held longer than the receive timeouts is answered, not cut", async () => {
    const res = await fetch(`${server.url}/feed/v1/bizs/${BIZ}/apps/svc/release?wait=10&uid=held`, { headers: { authorization: `Bearer ${agentTokenValue}` } });
    expect(res.status).toBe(304);
    expect(res.headers.get("x-edgeconf-wait")).toBe("10");
  });
});
