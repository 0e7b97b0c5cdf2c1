import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsOf } from "../../db/types";
import { createTestApi, type TestApi } from "../helpers/app";

let api: TestApi;
const biz = 10;
const apps = `/api/v1/bizs/${biz}/apps`;
const files = `${apps}/web/files`;
const maxFileBytes = 64 * 1024;

beforeAll(async () => {
  api = await createTestApi({ maxFileBytes });
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  expect((await api.call("POST", apps, { name: "web", configType: "file" })).status).toBe(201);
  expect((await api.call("POST", apps, { name: "settings", configType: "kv" })).status).toBe(201);
});
afterAll(() => api?.close());

const enc = new TextEncoder();
const put = (p: string, body: Uint8Array | string, query = "") => api.call("PUT", `${files}/content?path=${encodeURIComponent(p)}${query}`, typeof body === "string" ? enc.encode(body) : body);

async function blobRows(): Promise<number> {
  return Number(rowsOf<{ n: number }>(await api.deps.db.execute(sql`select count(*)::int as n from blobs`))[0].n);
}

async function blobFiles(): Promise<string[]> {
  return api.blobKeys(biz);
}

describe("files: happy paths", () => {
  it("uploads a blob once by sha256 and adds a file from it", async () => {
    const up = await api.call("PUT", `/api/v1/bizs/${biz}/blobs`, enc.encode("worker_processes 4;\n"));
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ size: 20, fileType: "text" });
    expect(up.body.sha256).toMatch(/^[0-9a-f]{64}$/);
    const again = await api.call("PUT", `/api/v1/bizs/${biz}/blobs`, enc.encode("worker_processes 4;\n"));
    expect(again.body.sha256).toBe(up.body.sha256);
    expect((await blobFiles()).filter((f) => f === up.body.sha256)).toHaveLength(1);

    const f = await api.call("POST", files, { path: "/etc/nginx", name: "nginx.conf", sha256: up.body.sha256, user: "nginx", group: "nginx", privilege: "0640", memo: "main" });
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    expect(f.body).toMatchObject({ path: "/etc/nginx", name: "nginx.conf", size: 20, fileType: "text", user: "nginx", group: "nginx", privilege: "0640", memo: "main" });
    const list = await api.call("GET", files);
    expect(list.body.items.map((x: any) => `${x.path}/${x.name}`)).toContain("/etc/nginx/nginx.conf");
  });

  it("uploads and upserts by full path, keeping metadata not given", async () => {
    const first = await put("/etc/app/app.yaml", "a: 1\n", "&privilege=600&user=app");
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ path: "/etc/app", name: "app.yaml", privilege: "600", user: "app", group: "root", created: true });
    const second = await put("/etc/app/app.yaml", "a: 2\n");
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ id: first.body.id, privilege: "600", user: "app", created: false });
    expect(second.body.sha256).not.toBe(first.body.sha256);
    const dl = await api.request(`${files}/${first.body.id}/content`, { headers: { authorization: `Bearer ${api.adminToken}` } });
    expect(dl.status).toBe(200);
    expect(await dl.text()).toBe("a: 2\n");
    expect(dl.headers.get("etag")).toBe(`"${second.body.sha256}"`);
  });

  it("puts a file at the root directory", async () => {
    const r = await put("/motd", "hi\n");
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ path: "/", name: "motd" });
  });

  it("round-trips binary content byte for byte and calls it binary", async () => {
    const bytes = new Uint8Array(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) % 256;
    const r = await put("/opt/bin/blob.bin", bytes);
    expect(r.status).toBe(201);
    expect(r.body.fileType).toBe("binary");
    const dl = await api.request(`${files}/${r.body.id}/content`, { headers: { authorization: `Bearer ${api.adminToken}` } });
    expect(dl.headers.get("content-type")).toBe("application/octet-stream");
    expect(new Uint8Array(await dl.arrayBuffer())).toEqual(bytes);
    const invalidUtf8 = await put("/opt/bin/latin1.txt", new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    expect(invalidUtf8.body.fileType).toBe("binary");
    const utf8 = await put("/opt/bin/utf8.txt", "café ☕\n");
    expect(utf8.body.fileType).toBe("text");
  });

  it("updates permission, moves and deletes a file", async () => {
    const r = await put("/etc/x/one.conf", "1\n");
    const moved = await api.call("PATCH", `${files}/${r.body.id}`, { path: "/etc/y", name: "two.conf", privilege: "755", memo: "moved" });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ path: "/etc/y", name: "two.conf", privilege: "755", memo: "moved" });
    expect((await api.call("DELETE", `${files}/${r.body.id}`)).status).toBe(200);
    expect((await api.call("GET", `${files}/${r.body.id}`)).status).toBe(404);
  });
});

describe("files: errors", () => {
  it("refuses a second file with the same path and name (409)", async () => {
    const up = await api.call("PUT", `/api/v1/bizs/${biz}/blobs`, enc.encode("dup\n"));
    expect((await api.call("POST", files, { path: "/etc/dup", name: "d.conf", sha256: up.body.sha256 })).status).toBe(201);
    const again = await api.call("POST", files, { path: "/etc/dup", name: "d.conf", sha256: up.body.sha256 });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/^name: /);
    const other = await api.call("POST", files, { path: "/etc/dup", name: "e.conf", sha256: up.body.sha256 });
    const clash = await api.call("PATCH", `${files}/${other.body.id}`, { name: "d.conf" });
    expect(clash.status).toBe(409);
  });

  it("refuses a sha256 that was never uploaded, and bad permissions", async () => {
    const r = await api.call("POST", files, { path: "/etc", name: "a", sha256: "0".repeat(64) });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/^sha256: no blob/);
    expect((await api.call("POST", files, { path: "/etc", name: "a", sha256: "xyz" })).body.error.message).toMatch(/^sha256: /);
    for (const privilege of ["64", "888", "12345", "rwx", "-644"]) {
      const res = await put("/etc/p.conf", "x", `&privilege=${encodeURIComponent(privilege)}`);
      expect(res.status, privilege).toBe(400);
      expect(res.body.error.message).toMatch(/^privilege: /);
    }
    expect((await put("/etc/p.conf", "x", "&user=a%20b")).body.error.message).toMatch(/^user: /);
  });

  it("refuses files on a kv service with a clear 422", async () => {
    const r = await api.call("PUT", `${apps}/settings/files/content?path=/etc/a.conf`, enc.encode("x"));
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/kv service.*file services only/);
  });

  it("refuses an upload over the limit with 413 and stores nothing (with and without Content-Length)", async () => {
    const before = await blobFiles();
    const rowsBefore = await blobRows();
    const big = new Uint8Array(maxFileBytes + 1).fill(65);
    const withLength = await api.request(`${files}/content?path=/etc/big.conf`, {
      method: "PUT",
      headers: { authorization: `Bearer ${api.adminToken}`, "content-length": String(big.byteLength) },
      body: big,
    });
    expect(withLength.status).toBe(413);
    const streamed = await api.request(`/api/v1/bizs/${biz}/blobs`, {
      method: "PUT",
      headers: { authorization: `Bearer ${api.adminToken}` },
      body: new ReadableStream({ start: (c) => (c.enqueue(big), c.close()) }),
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await streamed.json()).error.code).toBe("payload_too_large");
    expect(await blobFiles()).toEqual(before);
    expect((await api.call("GET", files)).body.items.some((f: any) => f.name === "big.conf")).toBe(false);
    expect(await blobRows()).toBe(rowsBefore);
    const exact = await api.call("PUT", `/api/v1/bizs/${biz}/blobs`, new Uint8Array(maxFileBytes).fill(66));
    expect(exact.status).toBe(200);
  });
});

describe("files: security (path traversal in every form)", () => {
  const badFull: [string, RegExp][] = [
    ["../etc/passwd", /absolute/],
    ["etc/passwd", /absolute/],
    ["/etc/../../passwd", /'\.\.'/],
    ["/etc/nginx/../x", /'\.\.'/],
    ["/etc/./x", /'\.'/],
    ["/etc/%2e%2e/x", /'\.\.'/],
    ["/etc/%2E%2E/x", /'\.\.'/],
    ["/etc/..%2fx/y", /encoded/],
    ["/etc\\..\\x", /backslash/],
    ["/..\\..\\x", /backslash/],
    ["/etc/a\u0000b", /NUL/],
    ["/etc/a\nb", /control/],
    ["/etc//x", /'\/\/'/],
    ["/etc/nginx/", /not end with/],
    ["/..", /'\.\.'/],
  ];
  it.each(badFull)("PUT content refuses %j", async (p, why) => {
    const r = await put(p, "x");
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.message).toMatch(/^path: /);
    expect(r.body.error.message).toMatch(why);
  });

  const badParts: [string, string, string][] = [
    ["relative path", "etc/nginx", "a.conf"],
    ["dot-dot dir", "/etc/..", "a.conf"],
    ["dot-dot name", "/etc", ".."],
    ["name with slash", "/etc", "nginx/a.conf"],
    ["name traversal", "/etc", "../../passwd"],
    ["backslash name", "/etc", "..\\passwd"],
    ["NUL in name", "/etc", "a\u0000.conf"],
    ["encoded dot-dot name", "/etc", "%2e%2e"],
    ["empty name", "/etc", ""],
    ["trailing slash dir", "/etc/", "a"],
  ];
  it.each(badParts)("POST files refuses a %s", async (_what, p, name) => {
    const up = await api.call("PUT", `/api/v1/bizs/${biz}/blobs`, enc.encode("t\n"));
    const r = await api.call("POST", files, { path: p, name, sha256: up.body.sha256 });
    expect(r.status, JSON.stringify(r.body)).toBe(400);
    expect(r.body.error.message).toMatch(/^(path|name): /);
  });

  it("PATCH refuses a traversal too and leaves the file as it was", async () => {
    const r = await put("/etc/safe.conf", "safe\n");
    const bad = await api.call("PATCH", `${files}/${r.body.id}`, { path: "/etc/../root" });
    expect(bad.status).toBe(400);
    expect((await api.call("GET", `${files}/${r.body.id}`)).body.path).toBe("/etc");
  });

  it("keeps files of one biz out of another biz's reach", async () => {
    expect((await api.call("POST", "/api/v1/bizs", { id: 11, name: "other" })).status).toBe(201);
    const up = await api.call("PUT", `/api/v1/bizs/${biz}/blobs`, enc.encode("secret\n"));
    await api.call("POST", `/api/v1/bizs/11/apps`, { name: "web", configType: "file" });
    const r = await api.call("POST", `/api/v1/bizs/11/apps/web/files`, { path: "/etc", name: "s", sha256: up.body.sha256 });
    expect(r.status).toBe(400);
    const mine = await put("/etc/mine.conf", "mine\n");
    expect((await api.call("GET", `/api/v1/bizs/11/apps/web/files/${mine.body.id}/content`)).status).toBe(404);
  });
});

describe("files: clients as they are", () => {
  it("accepts curl's default form content type on raw uploads (curl --data-binary)", async () => {
    const r = await api.request(`${files}/content?path=/etc/curl.conf`, {
      method: "PUT",
      headers: { authorization: `Bearer ${api.adminToken}`, "content-type": "application/x-www-form-urlencoded" },
      body: "a=1&b=2\n",
    });
    expect(r.status).toBe(201);
    expect((await r.json()).size).toBe(8);
    const j = await api.request(`/api/v1/bizs/${biz}/blobs`, {
      method: "PUT",
      headers: { authorization: `Bearer ${api.adminToken}`, "content-type": "application/json" },
      body: "{not json",
    });
    expect(j.status).toBe(200);
  });
});

describe("files: text detection", () => {
  it("calls a multi-byte character split across the 1 MiB decoding step text, and a broken one binary", async () => {
    const { detectFileType } = await import("../../functions/core/files");
    const head = new Uint8Array(1024 * 1024 - 1).fill(0x61);
    const euro = new Uint8Array([0xe2, 0x82, 0xac]);
    const split = new Uint8Array([...head, ...euro, 0x0a]);
    expect(detectFileType(split)).toBe("text");
    expect(detectFileType(new Uint8Array([...head, 0xe2, 0x82]))).toBe("binary");
    expect(detectFileType(new Uint8Array())).toBe("text");
  });
});
