import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, nodeOnly, type TestApi } from "../helpers/app";

let api: TestApi;
const biz = 10;
const apps = `/api/v1/bizs/${biz}/apps`;
const scripts = `/api/v1/bizs/${biz}/scripts`;
const enc = new TextEncoder();

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  for (const [name, configType] of [["web", "file"], ["empty", "file"], ["other", "file"], ["settings", "kv"]]) {
    expect((await api.call("POST", apps, { name, configType })).status).toBe(201);
  }
});
afterAll(() => api?.close());

const put = (app: string, p: string, body: string | Uint8Array, q = "") =>
  api.call("PUT", `${apps}/${app}/files/content?path=${encodeURIComponent(p)}${q}`, typeof body === "string" ? enc.encode(body) : body);

describe("versions: happy paths", () => {
  let pre: any;
  let v1: any;
  let v2: any;

  it("snapshots the draft's files and the bound script's online content", async () => {
    await put("web", "/etc/nginx/nginx.conf", "worker_processes 1;\nevents {}\n");
    await put("web", "/etc/nginx/mime.types", "types {}\n");
    await put("web", "/opt/app/logo.png", new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]));
    pre = (await api.call("POST", scripts, { name: "clean", type: "shell", content: "echo v1\n", versionName: "s1" })).body;
    await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: pre.id } });
    const r = await api.call("POST", `${apps}/web/versions`, { name: "V1", memo: "first" });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    v1 = r.body;
    expect(v1).toMatchObject({ name: "V1", memo: "first", createdBy: expect.any(String) });
    expect(v1.files.map((f: any) => `${f.path}/${f.name}`)).toEqual(["/etc/nginx/mime.types", "/etc/nginx/nginx.conf", "/opt/app/logo.png"]);
    expect(v1.hooks.pre).toMatchObject({ scriptName: "clean", versionName: "s1", type: "shell", content: "echo v1\n" });
    expect(v1.hooks.post).toBeNull();
  });

  it("keeps the snapshot when the draft and the script change afterwards", async () => {
    const s2 = await api.call("POST", `${scripts}/${pre.id}/versions`, { name: "s2", content: "echo v2\n" });
    await api.call("POST", `${scripts}/${pre.id}/versions/${s2.body.id}/publish`);
    await put("web", "/etc/nginx/nginx.conf", "worker_processes 4;\nevents {}\n");
    await put("web", "/etc/nginx/conf.d/site.conf", "server {}\n");
    const files = (await api.call("GET", `${apps}/web/files`)).body.items;
    const mime = files.find((f: any) => f.name === "mime.types");
    await api.call("PATCH", `${apps}/web/files/${mime.id}`, { privilege: "600" });
    const logo = files.find((f: any) => f.name === "logo.png");
    await api.call("DELETE", `${apps}/web/files/${logo.id}`);

    const got = await api.call("GET", `${apps}/web/versions/${v1.id}`);
    expect(got.body).toEqual(v1);
    v2 = (await api.call("POST", `${apps}/web/versions`, { name: "V2" })).body;
    expect(v2.hooks.pre).toMatchObject({ versionName: "s2", content: "echo v2\n" });
    const refs = await api.call("GET", `${scripts}/${pre.id}/references`);
    expect(refs.body.versions.map((v: any) => v.releaseName).sort()).toEqual(["V1", "V2"]);
  });

  it("lists versions newest first with counts, and names one by default", async () => {
    const list = await api.call("GET", `${apps}/web/versions`);
    expect(list.body.items.map((v: any) => v.name)).toEqual(["V2", "V1"]);
    expect(list.body.items[1]).toMatchObject({ fileCount: 3, publishCount: 0 });
    const unnamed = await api.call("POST", `${apps}/web/versions`, {});
    expect(unnamed.status).toBe(201);
    expect(unnamed.body.name).toMatch(/^v\d{14}$/);
  });

  it.skipIf(nodeOnly("sets api.deps.clock"))("suffixes a default name taken in the same second", async () => {
    const clock = api.deps.clock;
    api.deps.clock = () => new Date("2024-03-08T01:53:52Z");
    try {
      expect((await api.call("POST", `${apps}/web/versions`, {})).body.name).toBe("v20240308015352");
      expect((await api.call("POST", `${apps}/web/versions`, {})).body.name).toBe("v20240308015352-2");
    } finally {
      api.deps.clock = clock;
    }
  });

  it("diffs two versions: files added, removed, changed with a unified diff, and the script change", async () => {
    const d = await api.call("GET", `${apps}/web/versions/diff?from=${v1.id}&to=${v2.id}`);
    expect(d.status, JSON.stringify(d.body)).toBe(200);
    expect(d.body.identical).toBe(false);
    expect(d.body.files.added.map((f: any) => f.name)).toEqual(["site.conf"]);
    expect(d.body.files.removed.map((f: any) => f.name)).toEqual(["logo.png"]);
    const byName = Object.fromEntries(d.body.files.changed.map((c: any) => [c.name, c]));
    expect(byName["nginx.conf"]).toMatchObject({ contentChanged: true, permissionChanged: false, diffSkipped: null });
    expect(byName["nginx.conf"].diff).toContain("-worker_processes 1;");
    expect(byName["nginx.conf"].diff).toContain("+worker_processes 4;");
    expect(byName["mime.types"]).toMatchObject({ contentChanged: false, permissionChanged: true, diff: null });
    expect(byName["mime.types"].from.privilege).toBe("644");
    expect(byName["mime.types"].to.privilege).toBe("600");
    expect(d.body.hooks.pre).toMatchObject({ status: "changed", from: { versionName: "s1" }, to: { versionName: "s2" } });
    expect(d.body.hooks.pre.diff).toContain("-echo v1");
    expect(d.body.hooks.pre.diff).toContain("+echo v2");
    expect(d.body.hooks.post).toBeNull();
    const same = await api.call("GET", `${apps}/web/versions/diff?from=${v1.id}&to=${v1.id}`);
    expect(same.body.identical).toBe(true);
    expect(same.body.files.unchanged).toBe(3);
  });

  it("shows a binary change without a text diff, and a script added/removed", async () => {
    await put("web", "/opt/app/logo.png", new Uint8Array([0x89, 0x50, 0, 9]));
    await api.call("PUT", `${apps}/web/hooks`, { pre: null, post: { scriptId: pre.id } });
    const v3 = (await api.call("POST", `${apps}/web/versions`, { name: "V3" })).body;
    await put("web", "/opt/app/logo.png", new Uint8Array([0x89, 0x50, 0, 10]));
    const v4 = (await api.call("POST", `${apps}/web/versions`, { name: "V4" })).body;
    const d = await api.call("GET", `${apps}/web/versions/diff?from=${v3.id}&to=${v4.id}`);
    expect(d.body.files.changed[0]).toMatchObject({ name: "logo.png", diff: null, diffSkipped: "binary" });
    const h = await api.call("GET", `${apps}/web/versions/diff?from=${v2.id}&to=${v3.id}`);
    expect(h.body.hooks.pre).toMatchObject({ status: "removed", to: null });
    expect(h.body.hooks.post).toMatchObject({ status: "added", from: null });
  });
});

describe("versions: errors", () => {
  it("refuses a version of an empty draft with 422 'draft is empty' (documented choice)", async () => {
    const r = await api.call("POST", `${apps}/empty/versions`, { name: "V1" });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/draft is empty/);
    expect((await api.call("POST", `${apps}/settings/versions`, { name: "V1" })).status).toBe(422);
    expect((await api.call("GET", `${apps}/empty/versions`)).body.total).toBe(0);
  });

  it("refuses a duplicate name in the service with 409 but allows it in another service", async () => {
    await put("other", "/etc/o.conf", "o\n");
    expect((await api.call("POST", `${apps}/other/versions`, { name: "V1" })).status).toBe(201);
    const dup = await api.call("POST", `${apps}/other/versions`, { name: "V1" });
    expect(dup.status).toBe(409);
    expect(dup.body.error.message).toMatch(/^name: /);
  });

  it("refuses a version whose bound script has no online version, writing nothing", async () => {
    const s = (await api.call("POST", scripts, { name: "offline", type: "shell", content: "echo\n" })).body;
    await api.call("PUT", `${apps}/other/hooks`, { post: { scriptId: s.id } });
    await api.deps.db.execute(sql`update script_versions set state = 'shutdown' where script_id = ${s.id}`);
    const before = (await api.call("GET", `${apps}/other/versions`)).body.total;
    const r = await api.call("POST", `${apps}/other/versions`, { name: "V9" });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/post script 'offline' has no online version/);
    expect((await api.call("GET", `${apps}/other/versions`)).body.total).toBe(before);
    await api.call("PUT", `${apps}/other/hooks`, { post: null });
  });

  it("answers 404 for a version of another service, in get and in diff", async () => {
    const mine = (await api.call("GET", `${apps}/web/versions`)).body.items[0];
    const theirs = (await api.call("GET", `${apps}/other/versions`)).body.items[0];
    expect((await api.call("GET", `${apps}/other/versions/${mine.id}`)).status).toBe(404);
    expect((await api.call("GET", `${apps}/web/versions/diff?from=${mine.id}&to=${theirs.id}`)).status).toBe(404);
    expect((await api.call("GET", `${apps}/web/versions/diff?from=abc&to=1`)).body.error.message).toMatch(/^from: /);
  });
});
