import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";

let api: TestApi;
const biz = 10;
const base = `/api/v1/bizs/${biz}/scripts`;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
});
afterAll(() => api?.close());

const preContent = "#!/bin/bash\nif [[ -f ${bk_bscp_app_temp_dir}/tag ]];then\n  rm -f ${bk_bscp_app_temp_dir}/tag\nfi\n";

async function newScript(name: string, extra: Record<string, unknown> = {}) {
  const res = await api.call("POST", base, { name, type: "shell", content: preContent, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

describe("scripts: happy paths", () => {
  it("creates a script whose first version is online at once, with the seed's default version name", async () => {
    const s = await newScript("clean_tag", { tags: ["tag", "cleanup"], memo: "removes the tag file" });
    expect(s).toMatchObject({ name: "clean_tag", type: "shell", tags: ["tag", "cleanup"], memo: "removes the tag file", usageCount: 0 });
    expect(s.version.state).toBe("deployed");
    expect(s.version.name).toMatch(/^v\d{14}$/);
    expect(s.onlineVersion).toEqual({ id: s.version.id, name: s.version.name });
  });

  it("lists scripts with tag filter, search, paging and the tags view", async () => {
    await newScript("write_tag", { type: "python", tags: ["tag"], content: "import os\nprint(os.environ['bk_bscp_app'])\n" });
    await newScript("check_disk", { tags: ["check"] });
    const byTag = await api.call("GET", `${base}?tag=tag`);
    expect(byTag.body.items.map((s: any) => s.name).sort()).toEqual(["clean_tag", "write_tag"]);
    const search = await api.call("GET", `${base}?search=DISK`);
    expect(search.body.items.map((s: any) => s.name)).toEqual(["check_disk"]);
    const page = await api.call("GET", `${base}?limit=2&offset=0`);
    expect(page.body.items).toHaveLength(2);
    expect(page.body.total).toBe(3);
    const tags = await api.call("GET", `${base}/tags`);
    expect(tags.body.items).toEqual([
      { tag: "check", count: 1 },
      { tag: "cleanup", count: 1 },
      { tag: "tag", count: 2 },
    ]);
  });

  it("updates tags and memo, but name and type are fixed", async () => {
    const s = await newScript("fixed_name");
    const ok = await api.call("PATCH", `${base}/${s.id}`, { tags: ["x"], memo: "m" });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ tags: ["x"], memo: "m", name: "fixed_name" });
    const rename = await api.call("PATCH", `${base}/${s.id}`, { name: "other" });
    expect(rename.status).toBe(400);
    expect(rename.body.error.message).toMatch(/^name: /);
    const retype = await api.call("PATCH", `${base}/${s.id}`, { type: "python" });
    expect(retype.status).toBe(400);
    expect(retype.body.error.message).toMatch(/^type: /);
  });

  it("walks a version through not_deployed → deployed → shutdown, and rolls back", async () => {
    const s = await newScript("lifecycle");
    const v1 = s.version;
    const v2 = await api.call("POST", `${base}/${s.id}/versions`, { name: "v2", content: preContent + "echo two\n", memo: "second" });
    expect(v2.status).toBe(201);
    expect(v2.body).toMatchObject({ name: "v2", state: "not_deployed", memo: "second" });

    const edited = await api.call("PATCH", `${base}/${s.id}/versions/${v2.body.id}`, { content: preContent + "echo 2\n" });
    expect(edited.status).toBe(200);
    expect(edited.body.content).toContain("echo 2");

    const pub = await api.call("POST", `${base}/${s.id}/versions/${v2.body.id}/publish`);
    expect(pub.status).toBe(200);
    expect(pub.body).toMatchObject({ state: "deployed", previousOnline: { id: v1.id } });
    expect((await api.call("GET", `${base}/${s.id}/versions/${v1.id}`)).body.state).toBe("shutdown");

    const rollback = await api.call("POST", `${base}/${s.id}/versions/${v1.id}/publish`);
    expect(rollback.body).toMatchObject({ state: "deployed", previousOnline: { id: v2.body.id } });
    expect((await api.call("GET", `${base}/${s.id}`)).body.onlineVersion).toEqual({ id: v1.id, name: v1.name });

    const list = await api.call("GET", `${base}/${s.id}/versions?state=shutdown`);
    expect(list.body.items.map((v: any) => v.id)).toEqual([v2.body.id]);
    expect(list.body.items[0].content).toBeUndefined();
    const search = await api.call("GET", `${base}/${s.id}/versions?search=second`);
    expect(search.body.total).toBe(1);

    const audit = await api.call("GET", `/api/v1/audit?biz=${biz}&action=script_version.rollback`);
    expect(audit.body.items[0]).toMatchObject({ actor: "first-admin", resourceId: String(v1.id) });
  });

  it("gives a default name when none is given, unique even within the same second", async () => {
    const s = await newScript("defaults");
    const v = await api.call("POST", `${base}/${s.id}/versions`, { content: "echo hi\n" });
    expect(v.status).toBe(201);
    expect(v.body.name).toMatch(/^v\d{14}(-\d+)?$/);
    expect(v.body.name).not.toBe(s.version.name);
  });

  it("diffs two versions as a unified diff", async () => {
    const s = await newScript("diffed");
    const v2 = await api.call("POST", `${base}/${s.id}/versions`, { name: "b", content: preContent.replace("rm -f", "rm -rf") });
    const d = await api.call("GET", `${base}/${s.id}/diff?from=${s.version.id}&to=${v2.body.id}`);
    expect(d.status).toBe(200);
    expect(d.body.identical).toBe(false);
    expect(d.body.diff).toContain("-  rm -f ${bk_bscp_app_temp_dir}/tag");
    expect(d.body.diff).toContain("+  rm -rf ${bk_bscp_app_temp_dir}/tag");
    expect(d.body.diff).toContain("@@");
  });

  it("deletes a script nobody binds, and its versions with it", async () => {
    const s = await newScript("unused");
    expect((await api.call("DELETE", `${base}/${s.id}`)).status).toBe(200);
    expect((await api.call("GET", `${base}/${s.id}`)).status).toBe(404);
    expect((await api.call("GET", `${base}/${s.id}/versions/${s.version.id}`)).status).toBe(404);
  });

  it("has empty references for a script nobody uses", async () => {
    const s = await newScript("lonely");
    const r = await api.call("GET", `${base}/${s.id}/references`);
    expect(r.body).toEqual({ scriptId: s.id, versionId: null, drafts: [], versions: [] });
    const rv = await api.call("GET", `${base}/${s.id}/versions/${s.version.id}/references`);
    expect(rv.body.versionId).toBe(s.version.id);
  });
});

describe("scripts: rules", () => {
  it("refuses a duplicate script name in the biz", async () => {
    await newScript("dup");
    const again = await api.call("POST", base, { name: "dup", type: "python", content: "print(1)" });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: "already_exists" });
    expect(again.body.error.message).toMatch(/^name: /);
  });

  it("refuses a second not_deployed version", async () => {
    const s = await newScript("one_pending");
    expect((await api.call("POST", `${base}/${s.id}/versions`, { name: "p1", content: "echo 1" })).status).toBe(201);
    const second = await api.call("POST", `${base}/${s.id}/versions`, { name: "p2", content: "echo 2" });
    expect(second.status).toBe(422);
    expect(second.body.error.message).toMatch(/not-deployed version 'p1'/);
  });

  it("refuses a duplicate version name in the script", async () => {
    const s = await newScript("dup_versions", { versionName: "V1" });
    const again = await api.call("POST", `${base}/${s.id}/versions`, { name: "V1", content: "echo 1" });
    expect(again.status).toBe(409);
  });

  it("refuses to edit or delete an online or shut-down version, saying why", async () => {
    const s = await newScript("immutable");
    const edit = await api.call("PATCH", `${base}/${s.id}/versions/${s.version.id}`, { content: "echo changed" });
    expect(edit.status).toBe(422);
    expect(edit.body.error.message).toMatch(/online.*immutable/);
    const del = await api.call("DELETE", `${base}/${s.id}/versions/${s.version.id}`);
    expect(del.status).toBe(422);
    const v2 = await api.call("POST", `${base}/${s.id}/versions`, { name: "n2", content: "echo 2" });
    await api.call("POST", `${base}/${s.id}/versions/${v2.body.id}/publish`);
    const delShut = await api.call("DELETE", `${base}/${s.id}/versions/${s.version.id}`);
    expect(delShut.status).toBe(422);
    expect(delShut.body.error.message).toMatch(/shut down/);
    const v3 = await api.call("POST", `${base}/${s.id}/versions`, { name: "n3", content: "echo 3" });
    expect((await api.call("DELETE", `${base}/${s.id}/versions/${v3.body.id}`)).status).toBe(200);
  });

  it("refuses bad content: empty, NUL byte, over 1 MiB, wrong type, path characters in names", async () => {
    const cases: [Record<string, unknown>, number, RegExp][] = [
      [{ name: "e1", type: "shell", content: "   \n" }, 400, /^content: .*empty/],
      [{ name: "e2", type: "shell", content: "echo\u0000x" }, 400, /^content: .*NUL/],
      [{ name: "e3", type: "shell", content: "#".repeat(1024 * 1024 + 1) }, 413, /^content: /],
      [{ name: "e4", type: "perl", content: "print 1" }, 400, /^type: /],
      [{ name: "../etc", type: "shell", content: "echo" }, 400, /^name: /],
      [{ name: "a/b", type: "shell", content: "echo" }, 400, /^name: /],
      [{ name: "a\\b", type: "shell", content: "echo" }, 400, /^name: /],
      [{ type: "shell", content: "echo" }, 400, /^name: /],
    ];
    for (const [body, status, message] of cases) {
      const res = await api.call("POST", base, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(res.body.error.message).toMatch(message);
    }
    expect((await api.call("GET", `${base}?search=e`)).body.items.filter((s: any) => /^e\d$/.test(s.name))).toEqual([]);
  });

  it("answers 404 for unknown biz, script and version, and 400 for malformed ids", async () => {
    expect((await api.call("GET", "/api/v1/bizs/999/scripts")).status).toBe(404);
    expect((await api.call("GET", `${base}/99999`)).status).toBe(404);
    const s = await newScript("lookup");
    expect((await api.call("GET", `${base}/${s.id}/versions/99999`)).status).toBe(404);
    const bad = await api.call("GET", `${base}/abc`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^scriptId: /);
  });

  it("keeps exactly one online version under concurrent publishes", async () => {
    const s = await newScript("race");
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const v = await api.call("POST", `${base}/${s.id}/versions`, { name: `r${i}`, content: `echo ${i}` });
      // Publish all but the last one right away so several shutdown versions exist.
      ids.push(v.body.id);
      if (i < 3) await api.call("POST", `${base}/${s.id}/versions/${v.body.id}/publish`);
    }
    const results = await Promise.all([...ids, s.version.id, ...ids].map((id) => api.call("POST", `${base}/${s.id}/versions/${id}/publish`)));
    for (const r of results) expect([200, 409]).toContain(r.status);
    const online = await api.call("GET", `${base}/${s.id}/versions?state=deployed`);
    expect(online.body.total).toBe(1);
  });
});
