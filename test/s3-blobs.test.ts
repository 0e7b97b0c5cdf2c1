import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { s3BlobStore } from "../functions/adapters/s3-blobs";
import type { BlobStore } from "../functions/core/ports";
import { createTestApi, testRuntime, type TestApi } from "./helpers/app";
import { startS3rver, type S3rverProcess } from "./helpers/s3rver";
import { startServer, type ServerProcess } from "./helpers/server";

let s3: S3rverProcess;
let store: BlobStore;

beforeAll(async () => {
  s3 = await startS3rver();
  store = s3BlobStore(s3.config);
});
afterAll(() => s3?.stop());

const text = (b: ReadableStream<Uint8Array>) => new Response(b).text();

describe("s3 blob store against s3rver: adapter", () => {
  it("puts, heads, gets and deletes bytes", async () => {
    const bytes = new TextEncoder().encode("hello s3\n");
    await store.put("10/abc", bytes);
    expect(await store.head("10/abc")).toEqual({ size: 9 });
    const got = await store.get("10/abc");
    expect(got?.size).toBe(9);
    expect(await text(got!.body)).toBe("hello s3\n");
    await store.delete("10/abc");
    expect(await store.head("10/abc")).toBeNull();
    expect(await store.get("10/abc")).toBeNull();
  });

  it("serves byte ranges (end inclusive, as in HTTP) and the empty blob", async () => {
    await store.put("10/range", new TextEncoder().encode("0123456789"));
    expect(await text((await store.get("10/range", { start: 2, end: 4 }))!.body)).toBe("234");
    expect(await text((await store.get("10/range", { start: 7 }))!.body)).toBe("789");
    const r = await store.get("10/range", { start: 20 });
    expect(r?.size).toBe(10);
    expect(await text(r!.body)).toBe("");
    await store.put("10/empty", new Uint8Array());
    const e = await store.get("10/empty");
    expect(e?.size).toBe(0);
    expect(await text(e!.body)).toBe("");
  });

  it("round-trips binary bytes exactly", async () => {
    const bytes = new Uint8Array(300_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
    await store.put("10/bin", bytes);
    const got = await store.get("10/bin");
    expect(new Uint8Array(await new Response(got!.body).arrayBuffer())).toEqual(bytes);
  });

  it("refuses keys that could leave the biz prefix", async () => {
    await expect(store.put("10/../x", new Uint8Array([1]))).rejects.toThrow(/bad blob key/);
    await expect(store.head("10/a b")).rejects.toThrow(/bad blob key/);
  });
});

describe.skipIf(testRuntime === "worker")("s3 blob store against s3rver: through the app", () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await createTestApi({ s3: s3.config });
    await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" });
    await api.call("POST", "/api/v1/bizs/10/apps", { name: "web", configType: "file" });
  });
  afterAll(() => api?.close());

  it("uploads a config file into the bucket and downloads it back, text and binary", async () => {
    const body = new TextEncoder().encode("server { listen 80; }\n");
    const up = await api.call("PUT", "/api/v1/bizs/10/apps/web/files/content?path=/etc/nginx/site.conf", body);
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    expect(await store.head(`10/${up.body.sha256}`)).toEqual({ size: body.byteLength });
    const dl = await api.request(`/api/v1/bizs/10/apps/web/files/${up.body.id}/content`, { headers: { authorization: `Bearer ${api.adminToken}` } });
    expect(await dl.text()).toBe("server { listen 80; }\n");

    const bin = new Uint8Array([0, 255, 1, 254, 0, 0, 9]);
    const b = await api.call("PUT", "/api/v1/bizs/10/apps/web/files/content?path=/opt/x.bin", bin);
    expect(b.body.fileType).toBe("binary");
    const dlb = await api.request(`/api/v1/bizs/10/apps/web/files/${b.body.id}/content`, { headers: { authorization: `Bearer ${api.adminToken}` } });
    expect(new Uint8Array(await dlb.arrayBuffer())).toEqual(bin);
  });

  it("diffs two versions whose blobs live in the bucket", async () => {
    await api.call("PUT", "/api/v1/bizs/10/apps/web/files/content?path=/etc/a.conf", new TextEncoder().encode("a=1\n"));
    const v1 = (await api.call("POST", "/api/v1/bizs/10/apps/web/versions", { name: "V1" })).body;
    await api.call("PUT", "/api/v1/bizs/10/apps/web/files/content?path=/etc/a.conf", new TextEncoder().encode("a=2\n"));
    const v2 = (await api.call("POST", "/api/v1/bizs/10/apps/web/versions", { name: "V2" })).body;
    const d = await api.call("GET", `/api/v1/bizs/10/apps/web/versions/diff?from=${v1.id}&to=${v2.id}`);
    expect(d.body.files.changed[0].diff).toContain("+a=2");
  });
});

describe.skipIf(testRuntime === "worker")("s3 blob store against s3rver: the Node entry wired by S3_* variables", () => {
  let server: ServerProcess;
  beforeAll(async () => {
    // The S3 wiring is what this checks; the server keeps its own PGlite database.
    server = await startServer({ env: s3.env });
  });
  afterAll(() => server?.stop());

  it("stores uploads in the bucket, not the data folder", async () => {
    expect(server.output()).toMatch(/blobs=s3 \(http:\/\/127\.0\.0\.1:\d+\/edgeconf\)/);
    const h = { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" };
    expect((await fetch(`${server.url}/api/v1/bizs`, { method: "POST", headers: h, body: JSON.stringify({ id: 20, name: "s3" }) })).status).toBe(201);
    const bytes = new TextEncoder().encode("from the entry\n");
    const up = await fetch(`${server.url}/api/v1/bizs/20/blobs`, { method: "PUT", headers: { authorization: h.authorization }, body: bytes });
    const { sha256 } = await up.json();
    expect(await store.head(`20/${sha256}`)).toEqual({ size: bytes.byteLength });
  });
});
