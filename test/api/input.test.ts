/** Hostile input at the edge: 400 naming the field, never a 5xx; an agent's event is stored cleaned, never lost. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedService } from "../helpers/seed";

let api: TestApi;
let agent: string;
let scriptId: number;
const BIZ = 10;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: BIZ, name: "ten" })).status).toBe(201);
  await seedService(api, BIZ, "svc");
  scriptId = (await api.call("POST", `/api/v1/bizs/${BIZ}/scripts`, { name: "s1", type: "shell", content: "echo\n" })).body.id;
  agent = (await agentToken(api, BIZ, ["svc"])).token;
});
afterAll(() => api?.close());

/** 400 `invalid_argument` whose message starts with the field's name. */
function refused(r: { status: number; body: any }, field: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(400);
  expect(r.body.error.code).toBe("invalid_argument");
  expect(r.body.error.message.startsWith(`${field}: `), r.body.error.message).toBe(true);
}

describe("bodies nested thousands of levels deep", () => {
  it("error: are refused with 400 naming the field, never a stack overflow", async () => {
    // Sent as text: the test process need not build the value itself.
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    const json = { headers: { "content-type": "application/json" } };
    for (const n of [1000, 6000]) {
      refused(await api.call("PATCH", `/api/v1/bizs/${BIZ}/apps/svc`, `{"configType":${deep(n)}}`, json), "configType");
      refused(await api.call("PATCH", `/api/v1/bizs/${BIZ}/scripts/${scriptId}`, `{"tags":${deep(n)}}`, json), "tags.0");
    }
  });
});

describe("integers past int4 (2^31) and other non-ids", () => {
  it("error: in path ids", async () => {
    refused(await api.call("GET", `/api/v1/bizs/2147483648/scripts`), "biz");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/2147483648`), "scriptId");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/${scriptId}/versions/99999999999999999999`), "versionId");
    refused(await api.call("DELETE", `/api/v1/credentials/2147483648`), "id");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/groups/1.5`), "groupId");
    refused(await api.call("GET", `/feed/v1/bizs/2147483648/apps/svc/release?wait=0`, undefined, { token: agent }), "biz");
    // The largest int4 is a valid id that does not exist.
    expect((await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/2147483647`)).status).toBe(404);
  });

  it("error: in query limits, offsets and cursors", async () => {
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?offset=2147483648`), "offset");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?limit=-1`), "limit");
    refused(await api.call("GET", `/api/v1/audit?before=1e300`), "before");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients/u1/events?before=2147483648`), "before");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/versions/diff?from=2147483648&to=1`), "from");
    refused(await api.call("GET", `/feed/v1/bizs/${BIZ}/apps/svc/release?wait=0&current=2147483648`, undefined, { token: agent }), "current");
  });

  it("error: a number far past its range names the parameter's own bound, not JavaScript's safe-integer one", async () => {
    const huge = "99999999999999999999";
    const bound = (r: { status: number; body: any }, field: string, max: string) => {
      refused(r, field);
      expect(r.body.error.message).toMatch(new RegExp(`(<=|up to )${max}\\b`));
      expect(r.body.error.message).not.toContain("9007199254740991");
    };
    bound(await api.call("GET", `/feed/v1/bizs/${BIZ}/apps/svc/release?wait=${huge}`, undefined, { token: agent }), "wait", "60");
    bound(await api.call("GET", `/feed/v1/bizs/${BIZ}/apps/svc/release?wait=0&current=${huge}`, undefined, { token: agent }), "current", "2147483647");
    bound(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?limit=${huge}`), "limit", "500");
    bound(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/${huge}`), "scriptId", "2147483647");
    bound(await api.call("GET", `/api/v1/bizs/${huge}/scripts`), "biz", "2147483647");
    bound(await api.call("POST", "/api/v1/bizs", { id: 1e20, name: "big" }), "id", "2147483647");
    bound(await api.call("POST", `/api/v1/bizs/${BIZ}/groups`, { name: "g", selector: "env=prod", percent: 1e20 }), "percent", "100");
    // A fraction is still refused as one.
    expect((await api.call("POST", "/api/v1/bizs", { id: 1.5, name: "frac" })).body.error.message).toMatch(/^id: .*int/);
  });

  it("error: in JSON bodies, admin and agent alike", async () => {
    refused(await api.call("POST", "/api/v1/bizs", { id: 2 ** 31, name: "big" }), "id");
    refused(await api.call("POST", `/api/v1/bizs/${BIZ}/apps/svc/publishes`, { versionId: 2 ** 31 }), "versionId");
    refused(await api.call("POST", `/api/v1/bizs/${BIZ}/apps/svc/publishes`, { versionId: 1, groups: [1, 2 ** 40] }), "groups.1");
    refused(await api.call("PUT", `/api/v1/bizs/${BIZ}/apps/svc/hooks`, { pre: { scriptId: -1 } }), "pre.scriptId");
    refused(await api.call("POST", "/api/v1/credentials", { name: "n", kind: "agent", bizId: 2 ** 31, apps: ["a"] }), "bizId");
    refused(await api.call("POST", `/feed/v1/bizs/${BIZ}/apps/svc/events`, { uid: "u1", releaseId: 2 ** 31, status: "SUCCESS" }, { token: agent }), "releaseId");
    refused(await api.call("POST", `/feed/v1/bizs/${BIZ}/apps/svc/events`, { uid: "u1", releaseId: null, status: "SUCCESS", filesCount: 2 ** 31 }, { token: agent }), "filesCount");
    refused(await api.call("POST", `/feed/v1/bizs/${BIZ}/apps/svc/heartbeat`, { uid: "u1", currentReleaseId: 1.5 }, { token: agent }), "currentReleaseId");
  });
});

describe("NUL characters (Postgres text and jsonb cannot hold them)", () => {
  it("error: in body fields, nested ones and object keys", async () => {
    refused(await api.call("POST", `/api/v1/bizs/${BIZ}/scripts`, { name: "s2", type: "shell", content: "echo\n", memo: "a\u0000b" }), "memo");
    refused(await api.call("PATCH", `/api/v1/bizs/${BIZ}/scripts/${scriptId}`, { tags: ["ok", "b\u0000"] }), "tags.1");
    refused(await api.call("POST", `/api/v1/bizs/${BIZ}/groups`, { name: "g", selector: "env=\u0000" }), "selector");
    refused(await api.call("POST", "/api/v1/credentials", { name: "x\u0000", kind: "admin" }), "name");
    refused(await api.call("POST", `/feed/v1/bizs/${BIZ}/apps/svc/heartbeat`, { uid: "u\u0000" }, { token: agent }), "uid");
  });

  it("error: in query strings and path segments", async () => {
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?search=%00`), "search");
    refused(await api.call("GET", `/api/v1/audit?actor=a%00`), "actor");
    const r = await api.call("GET", `/api/v1/bizs/${BIZ}/apps/sv%00c`);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^app: /);
  });

  it("stores nothing for a refused request", async () => {
    const before = (await api.call("GET", "/api/v1/audit?limit=500")).body.items.length;
    await api.call("POST", `/api/v1/bizs/${BIZ}/scripts`, { name: "s3", type: "shell", content: "echo \u0000\n" });
    await api.call("POST", "/api/v1/bizs", { id: 2 ** 31, name: "big" });
    expect((await api.call("GET", "/api/v1/audit?limit=500")).body.items.length).toBe(before);
    expect((await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?search=s3`)).body.total).toBe(0);
  });
});

describe("an agent's event is never lost for what a script printed", () => {
  it("happy: a FAILED event whose hook printed NUL bytes is stored with them replaced", async () => {
    const tail = "step 1\u0000\u0000 done\nerror: boom\n";
    const r = await api.call(
      "POST",
      `/feed/v1/bizs/${BIZ}/apps/svc/events`,
      { uid: "host-nul", releaseId: null, status: "FAILED", message: "pre-script failed: \u0000", preHook: { exitCode: 3, durationMs: 12, outputTail: tail } },
      { token: agent },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const events = await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients/host-nul/events`);
    expect(events.body.items).toHaveLength(1);
    const ev = events.body.items[0];
    expect(ev.status).toBe("FAILED");
    expect(ev.preHook.outputTail).toBe("step 1\uFFFD\uFFFD done\nerror: boom\n");
    expect(ev.message).toBe("pre-script failed: \uFFFD");
    const clients = await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients`);
    expect(clients.body.items.find((c: any) => c.uid === "host-nul").lastStatus).toBe("FAILED");
  });

  it("happy: an oversized event is kept, its output cut to the last 8 KiB and its message to the first 8 KiB", async () => {
    const output = "x".repeat(500_000) + "THE END";
    const message = "START" + "m".repeat(300_000);
    const r = await api.call("POST", `/feed/v1/bizs/${BIZ}/apps/svc/events`, { uid: "host-big", releaseId: null, status: "FAILED", message, postHook: { exitCode: 1, durationMs: 5, outputTail: output } }, { token: agent });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const ev = (await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients/host-big/events`)).body.items[0];
    expect(ev.postHook.outputTail.length).toBe(8192);
    expect(ev.postHook.outputTail.endsWith("THE END")).toBe(true);
    expect(ev.postHook.outputTail.startsWith("…")).toBe(true);
    expect(ev.message.length).toBe(8192);
    expect(ev.message.startsWith("START")).toBe(true);
  });

  it("error: too many timings are refused, naming the field", async () => {
    const timings = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`t${i}`, i]));
    refused(await api.call("POST", `/feed/v1/bizs/${BIZ}/apps/svc/events`, { uid: "u1", releaseId: null, status: "SUCCESS", timings }, { token: agent }), "timings");
  });
});

describe("integers spelled other than in canonical decimal", () => {
  it("error: a sign, a leading zero, spaces, exponent or hex in a path id is a 400 naming the parameter, not an alias", async () => {
    for (const spelled of ["+10", "010", "%2010", "10%20", "1e1", "0x0a", "10.0"]) refused(await api.call("GET", `/api/v1/bizs/${spelled}/scripts`), "biz");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/+${scriptId}`), "scriptId");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/0${scriptId}`), "scriptId");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/${scriptId}/versions/00`), "versionId");
    refused(await api.call("DELETE", `/api/v1/credentials/+1`), "id");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/groups/01`), "groupId");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/files/+1`), "fileId");
    refused(await api.call("GET", `/feed/v1/bizs/+${BIZ}/apps/svc/release?wait=0`, undefined, { token: agent }), "biz");
    // The canonical spelling still answers.
    expect((await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/${scriptId}`)).status).toBe(200);
  });

  it("error: the same in query limits, offsets, cursors and ids", async () => {
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?limit=%2B5`), "limit");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?offset=01`), "offset");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/apps?limit=5.0`), "limit");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/files?limit=0x10`), "limit");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/versions/diff?from=%2B1&to=1`), "from");
    refused(await api.call("GET", `/api/v1/audit?biz=0${BIZ}`), "biz");
    refused(await api.call("GET", `/api/v1/audit?before=%201`), "before");
    refused(await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients/u1/events?limit=`), "limit");
    expect((await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?limit=5&offset=0`)).status).toBe(200);
  });
});

describe("bidi controls and invisible characters in file paths", () => {
  it("error: refused in every segment of a path and in the name, naming the field, as in names", async () => {
    const blob = (await api.call("PUT", `/api/v1/bizs/${BIZ}/blobs`, "x=1\n")).body.sha256;
    const create = (path: string, name: string) => api.call("POST", `/api/v1/bizs/${BIZ}/apps/svc/files`, { path, name, sha256: blob });
    for (const ch of ["\u202E", "\u2066", "\u200B", "\u200F", "\uFEFF", "\u061C", "\u2028"]) {
      refused(await create(`/etc/a${ch}b`, "app.conf"), "path");
      refused(await create(`/${ch}/etc`, "app.conf"), "path");
      refused(await create("/etc", `app${ch}.conf`), "name");
      refused(await api.call("PUT", `/api/v1/bizs/${BIZ}/apps/svc/files/content?path=${encodeURIComponent(`/etc/x${ch}/app.conf`)}`, "x=1\n"), "path");
    }
    const r = await create("/etc/\u202Eevil", "a.conf");
    expect(r.body.error.message).toContain("bidi");
    const ok = await create("/etc/café", "日本.conf");
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    refused(await api.call("PATCH", `/api/v1/bizs/${BIZ}/apps/svc/files/${ok.body.id}`, { name: "a\u200Db.conf" }), "name");
    const files = (await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/files`)).body.items;
    expect(files.map((f: any) => `${f.path}/${f.name}`)).toEqual(["/etc/café/日本.conf"]);
  });
});

describe("lone UTF-16 surrogates in JSON strings", () => {
  it("error: refused with 400 naming the field, in values, nested values and keys, never stored as U+FFFD", async () => {
    // Sent as text: JSON.stringify would escape the surrogate the same way, but this is what goes on the wire.
    const send = (method: string, path: string, body: string) => api.call(method, path, body, { headers: { "content-type": "application/json" } });
    refused(await send("POST", `/api/v1/bizs/${BIZ}/scripts`, `{"name":"s9","type":"shell","content":"echo \\ud800\\n"}`), "content");
    refused(await send("POST", `/api/v1/bizs/${BIZ}/scripts`, `{"name":"s9","type":"shell","content":"echo\\n","memo":"\\udc00 trailing"}`), "memo");
    refused(await send("PATCH", `/api/v1/bizs/${BIZ}/scripts/${scriptId}`, `{"tags":["ok","a\\udbff"]}`), "tags.1");
    refused(await send("POST", `/api/v1/bizs/${BIZ}/groups`, `{"name":"g\\ud83d","selector":"env=prod"}`), "name");
    const r = await send("POST", `/api/v1/bizs/${BIZ}/apps/svc/validators`, `{"pathGlob":"*.json","kind":"jsonschema","schema":{"\\ud800":{}}}`);
    refused(r, 'schema."\\ud800"');
    expect(r.body.error.message).toContain("key must not contain a lone UTF-16 surrogate");
    // A whole pair is a character like any other.
    const pair = await send("POST", `/api/v1/bizs/${BIZ}/scripts`, `{"name":"s9","type":"shell","content":"echo \\ud83d\\ude00\\n"}`);
    expect(pair.status, JSON.stringify(pair.body)).toBe(201);
    expect((await api.call("GET", `/api/v1/bizs/${BIZ}/scripts/${pair.body.id}/versions/${pair.body.version.id}`)).body.content).toBe("echo 😀\n");
    expect((await api.call("GET", `/api/v1/bizs/${BIZ}/scripts?search=s9`)).body.total).toBe(1);
  });

  it("happy: an agent's event text with a lone surrogate is kept, the surrogate replaced (events are never refused for their text)", async () => {
    const body = `{"uid":"host-sur","releaseId":null,"status":"FAILED","message":"bad \\ud800 byte","preHook":{"exitCode":1,"durationMs":1,"outputTail":"x\\udc00"}}`;
    const r = await api.call("POST", `/feed/v1/bizs/${BIZ}/apps/svc/events`, body, { token: agent, headers: { "content-type": "application/json" } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const ev = (await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients/host-sur/events`)).body.items[0];
    expect(ev.message).toBe("bad \uFFFD byte");
    expect(ev.preHook.outputTail).toBe("x\uFFFD");
  });
});
