/**
 * A feed that answers more than any manifest should be: the agent stops reading at its limit
 * (64 MiB of buffered answer) with a clear error, instead of buffering it all into memory.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAgent, runAgent, tempDir } from "./harness";

const LIMIT = 64 * 1024 * 1024;
let work: Awaited<ReturnType<typeof tempDir>>;
let agent: string;
let server: Server;
let addr: string;
/** Bytes the fake feed managed to send per request, and how each request ended. */
const sent: { bytes: number; closedEarly: boolean }[] = [];

beforeAll(async () => {
  work = await tempDir("edgeconf-agent-limits-");
  agent = await buildAgent(work.path);
  server = createServer((req, res) => {
    const record = { bytes: 0, closedEarly: false };
    sent.push(record);
    if (req.url?.includes("declared")) {
      // Says up front that 300 MB follow.
      res.writeHead(200, { "content-type": "application/json", "content-length": String(300 * 1024 * 1024) });
      res.on("close", () => (record.closedEarly = !res.writableFinished));
      res.write("[");
      return;
    }
    // Chunked, no length: 200 MiB of a JSON string, 1 MiB at a time, as long as the agent reads.
    res.writeHead(200, { "content-type": "application/json" });
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let left = 200;
    res.write('"');
    const pump = () => {
      while (left > 0) {
        left--;
        record.bytes += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end('"');
    };
    res.on("close", () => (record.closedEarly = !res.writableFinished));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  server?.close();
  await work?.remove();
});

describe("agent limits", () => {
  it("security: a streamed manifest past 64 MiB is refused at the limit, naming it; the rest is never read", async () => {
    const run = await runAgent(agent, ["pull"], { biz: "10", app: "big", feed_addrs: addr, token: "ect_limits", temp_dir: join(work.path, "t1") });
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain(`larger than the ${LIMIT}-byte limit`);
    expect(sent.length).toBeGreaterThan(0);
    for (const r of sent) {
      expect(r.closedEarly).toBe(true);
      expect(r.bytes).toBeLessThan(200 * 1024 * 1024);
    }
  });

  it("security: a manifest whose declared length passes the limit is refused before its body is read", async () => {
    sent.length = 0;
    const run = await runAgent(agent, ["pull"], { biz: "10", app: "declared", feed_addrs: addr, token: "ect_limits", temp_dir: join(work.path, "t2") });
    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain(`larger than the ${LIMIT}-byte limit`);
    expect(sent.every((r) => r.closedEarly)).toBe(true);
  });
});
