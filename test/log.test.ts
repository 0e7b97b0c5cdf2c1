/**
 * Security: a value that reaches the server log (a path, an error's text quoting a request's value,
 * as drizzle's "Failed query: … params: …" does) cannot end its line or forge another (issue 10, item 7).
 */
import fc from "fast-check";
import { afterAll, describe, expect, it, vi } from "vitest";
import { logfmtLine, logfmtValue } from "../functions/core/log";
import type { BlobStore } from "../functions/core/ports";
import { createTestApi, nodeOnly, type TestApi } from "./helpers/app";
import { agentToken, seedService } from "./helpers/seed";

/** A strict logfmt reader: `key=bare` or `key="quoted"` with \\ \" \n \r \t \uXXXX escapes; throws on anything else. */
function parseLogfmt(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_.-]+)=(?:"((?:[^"\\]|\\(?:["\\nrt]|u[0-9a-f]{4}))*)"|([^\s"=\\]+))(?: |$)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(line))) {
    at = re.lastIndex;
    const raw = m[2] ?? m[3] ?? "";
    out[m[1]] =
      m[2] === undefined ? raw : raw.replace(/\\(["\\nrt]|u[0-9a-f]{4})/g, (_, e: string) => (e.length === 5 ? String.fromCharCode(parseInt(e.slice(1), 16)) : ({ n: "\n", r: "\r", t: "\t" } as Record<string, string>)[e] ?? e));
  }
  if (at !== line.length) throw new Error(`not logfmt at ${at}: ${line.slice(at, at + 40)}`);
  return out;
}

const LINE_BREAKS = /[\n\r\u000b\u000c\u0085\u2028\u2029]/;

describe("logfmt lines", () => {
  it("security: a value with a newline and a forged line stays inside its own value", () => {
    const forged = 'x\ntime=2024-01-01T00:00:00.000Z level=INFO msg="admin login" user=root';
    const line = logfmtLine("ERROR", "unhandled error", { path: forged, note: 'say "hi"\r\u0000\u202e' });
    expect(line).not.toMatch(LINE_BREAKS);
    expect(parseLogfmt(line)).toMatchObject({ level: "ERROR", msg: "unhandled error", path: forged, note: 'say "hi"\r\u0000\u202e' });
    expect(logfmtValue("plain-word_1.2")).toBe("plain-word_1.2");
    expect(logfmtValue("")).toBe('""');
  });

  it("security: any values (fast-check, full unicode) give one line that reads back to the same values", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ unit: "binary" }), { maxKeys: 4 }), (msg, fields) => {
        const line = logfmtLine("WARN", msg, fields);
        expect(line).not.toMatch(LINE_BREAKS);
        expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
        const back = parseLogfmt(line);
        expect(back.msg).toBe(msg);
        for (const [k, v] of Object.entries(fields)) if (!["time", "level", "msg"].includes(k)) expect(back[k]).toBe(v);
      }),
      { numRuns: 300 },
    );
  });
});

describe.skipIf(nodeOnly("injects a failing blob store"))("the server's error log", () => {
  let api: TestApi;
  afterAll(() => api?.close());

  it("security: an unhandled error whose text carries a forged line is logged as one line", async () => {
    const forged = 'read failed for params: "v"\ntime=2024-01-01T00:00:00.000Z level=INFO msg="forged"';
    const failing: BlobStore = {
      put: async () => {
        throw new Error(forged);
      },
      get: async () => null,
      head: async () => null,
      delete: async () => {},
    };
    api = await createTestApi({ blobs: failing });
    await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" });
    const written: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void written.push(args.map(String).join(" ")));
    try {
      const r = await api.call("PUT", "/api/v1/bizs/10/blobs", "bytes");
      expect(r.status).toBe(500);
    } finally {
      spy.mockRestore();
    }
    expect(written).toHaveLength(1);
    expect(written[0]).not.toMatch(LINE_BREAKS);
    const fields = parseLogfmt(written[0]);
    expect(fields).toMatchObject({ level: "ERROR", msg: "unhandled error", error: forged, path: "/api/v1/bizs/10/blobs" });
  });
});

describe.skipIf(nodeOnly("reads the server's log lines in this process"))("database errors in log lines", () => {
  let api: TestApi;
  afterAll(() => api?.close());

  it("security: a batch of sightings the database refuses is logged with the driver's words and SQLSTATE, short, without a uid or label", async () => {
    api = await createTestApi();
    await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" });
    await seedService(api, 10, "kept");
    const token = (await agentToken(api, 10, ["*"])).token;
    const secret = "label-value-not-for-logs";
    // The polls' sightings wait up to a second for their batch; the service is deleted before
    // that, so the batch (and each row alone) breaks the clients→services foreign key. A loaded
    // machine may write the batch first: then another round.
    let lines: string[] = [];
    for (let round = 0; round < 5 && !lines.length; round++) {
      const app = `gone${round}`;
      await seedService(api, 10, app);
      const polls = Array.from({ length: 40 }, (_, i) =>
        api.call("GET", `/feed/v1/bizs/10/apps/${app}/release?wait=0&uid=host-${round}-${i}&labels=${encodeURIComponent(`team=${secret}`)}`, undefined, { token }),
      );
      for (const r of await Promise.all(polls)) expect(r.status).toBeLessThan(500);
      expect((await api.call("DELETE", `/api/v1/bizs/10/apps/${app}`)).status).toBe(200);
      const written: string[] = [];
      const spy = vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => void written.push(args.map(String).join(" ")));
      try {
        // Listing clients writes what is pending first.
        expect((await api.call("GET", "/api/v1/bizs/10/apps/kept/clients")).status).toBe(200);
      } finally {
        spy.mockRestore();
      }
      lines = written.filter((l) => l.includes("sightings"));
    }
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const fields = parseLogfmt(line);
      expect(fields).toMatchObject({ level: "WARN", sqlstate: "23503" });
      expect(fields.error).toMatch(/foreign key/);
      expect(line.length).toBeLessThan(600);
      expect(line).not.toMatch(/host-\d|label-value|params|insert into/);
    }
  });
});
