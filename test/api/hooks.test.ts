import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";

let api: TestApi;
const biz = 10;
const apps = `/api/v1/bizs/${biz}/apps`;
const scripts = `/api/v1/bizs/${biz}/scripts`;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  expect((await api.call("POST", apps, { name: "web", configType: "file" })).status).toBe(201);
  expect((await api.call("POST", apps, { name: "settings", configType: "kv" })).status).toBe(201);
});
afterAll(() => api?.close());

async function newScript(name: string, type = "shell", content = "#!/bin/bash\necho one\n") {
  const res = await api.call("POST", scripts, { name, type, content, versionName: "v1" });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

describe("hooks: happy paths", () => {
  it("binds a pre script following its online version and a post script pinned to a version", async () => {
    const pre = await newScript("pre_clean");
    const post = await newScript("post_reload", "python", "print('reload')\n");
    const put = await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: pre.id }, post: { scriptId: post.id, versionId: post.version.id } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.pre).toMatchObject({ scriptId: pre.id, scriptName: "pre_clean", type: "shell", followsOnline: true, version: { id: pre.version.id, name: "v1", state: "deployed" } });
    expect(put.body.post).toMatchObject({ scriptId: post.id, type: "python", followsOnline: false, version: { id: post.version.id } });

    // Publishing a new script version moves the following draft, not the pinned one.
    const v2 = await api.call("POST", `${scripts}/${pre.id}/versions`, { name: "v2", content: "#!/bin/bash\necho two\n" });
    await api.call("POST", `${scripts}/${pre.id}/versions/${v2.body.id}/publish`);
    const v2post = await api.call("POST", `${scripts}/${post.id}/versions`, { name: "v2", content: "print('two')\n" });
    await api.call("POST", `${scripts}/${post.id}/versions/${v2post.body.id}/publish`);
    const got = await api.call("GET", `${apps}/web/hooks`);
    expect(got.body.pre.version).toMatchObject({ id: v2.body.id, name: "v2" });
    expect(got.body.post.version).toMatchObject({ id: post.version.id, name: "v1", state: "shutdown" });

    const refs = await api.call("GET", `${scripts}/${pre.id}/references`);
    expect(refs.body.drafts).toEqual([expect.objectContaining({ serviceName: "web", kind: "pre", followsOnline: true })]);
  });

  it("keeps a kind left out, unbinds with null, and audits every change", async () => {
    const s = await newScript("only_pre");
    await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: s.id } });
    const keep = await api.call("PUT", `${apps}/web/hooks`, { post: null });
    expect(keep.body.pre.scriptId).toBe(s.id);
    expect(keep.body.post).toBeNull();
    const none = await api.call("PUT", `${apps}/web/hooks`, { pre: null });
    expect(none.body).toEqual({ pre: null, post: null, validate: null });
    const audit = await api.call("GET", `/api/v1/audit?bizId=${biz}`);
    expect(JSON.stringify(audit.body).match(/service\.hooks\.update/g)?.length).toBeGreaterThanOrEqual(3);
  });
});

describe("hooks: errors", () => {
  it("refuses scripts on a kv service with 422 saying why", async () => {
    const s = await newScript("kv_try");
    const r = await api.call("PUT", `${apps}/settings/hooks`, { pre: { scriptId: s.id } });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/scripts apply to file services only/);
  });

  it("answers 404 for an unknown script or a version of another script", async () => {
    const r = await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: 99999 } });
    expect(r.status).toBe(404);
    expect(r.body.error.message).toMatch(/script 99999/);
    const a = await newScript("script_a");
    const b = await newScript("script_b");
    const cross = await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: a.id, versionId: b.version.id } });
    expect(cross.status).toBe(404);
    expect(cross.body.error.message).toMatch(/^pre\.versionId: /);
  });

  it("refuses a script without an online version (422) and a not-deployed pin, changing nothing", async () => {
    const s = await newScript("goes_offline");
    // The API always keeps one version online, so reach "no online version" directly in the database.
    await api.deps.db.execute(sql`update script_versions set state = 'shutdown' where script_id = ${s.id}`);
    const r = await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: s.id }, post: null });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/no online version/);
    const pending = await newScript("has_pending");
    const v2 = await api.call("POST", `${scripts}/${pending.id}/versions`, { name: "v2", content: "echo 2\n" });
    const pin = await api.call("PUT", `${apps}/web/hooks`, { post: { scriptId: pending.id, versionId: v2.body.id } });
    expect(pin.status).toBe(422);
    expect(pin.body.error.message).toMatch(/not deployed/);
    // A pinned shut-down version is allowed.
    expect((await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: s.id, versionId: s.version.id } })).status).toBe(200);
  });

  it("validates the body", async () => {
    expect((await api.call("PUT", `${apps}/web/hooks`, { pre: { scriptId: "x" } })).body.error.message).toMatch(/^pre\.scriptId: /);
    expect((await api.call("PUT", `${apps}/web/hooks`, { middle: null })).status).toBe(400);
    expect((await api.call("PUT", `${apps}/nope/hooks`, { pre: null })).status).toBe(404);
  });
});
