import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { seedService } from "../helpers/seed";

let api: TestApi;
const biz = 14;
const apps = `/api/v1/bizs/${biz}/apps`;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "validation" })).status).toBe(201);
});
afterAll(() => api?.close());

async function upload(app: string, path: string, content: string | Uint8Array) {
  const r = await api.call("PUT", `${apps}/${app}/files/content?path=${encodeURIComponent(path)}`, content);
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
}

async function addValidator(app: string, body: object) {
  const r = await api.call("POST", `${apps}/${app}/validators`, body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: number };
}

const versionCount = async (app: string) => (await api.call("GET", `${apps}/${app}/versions`)).body.total as number;

const portSchema = {
  type: "object",
  required: ["port", "upstreams"],
  properties: { port: { type: "integer", minimum: 1, maximum: 65535 }, upstreams: { type: "array", items: { type: "string" }, minItems: 1 } },
};

describe("validators: happy paths", () => {
  it("passes a version whose files all parse, and keeps what ran on the version", async () => {
    await seedService(api, biz, "ok", [
      { path: "/etc/app/a.json", content: '{"a": 1}\n' },
      { path: "/etc/app/b.yaml", content: "a: 1\nlist:\n  - x\n" },
      { path: "/etc/app/c.toml", content: 'title = "x"\n[server]\nport = 80\n' },
      { path: "/etc/app/d.xml", content: "<root><a x='1'/></root>\n" },
      { path: "/etc/app/readme.txt", content: "not checked {" },
    ]);
    const json = await addValidator("ok", { pathGlob: "*.json", kind: "json" });
    await addValidator("ok", { pathGlob: "/etc/app/*.yaml", kind: "yaml" });
    await addValidator("ok", { pathGlob: "**/*.toml", kind: "toml" });
    await addValidator("ok", { pathGlob: "*.xml", kind: "xml" });
    await addValidator("ok", { pathGlob: "/etc/other/*.json", kind: "json", memo: "matches nothing" });
    const v = await api.call("POST", `${apps}/ok/versions`, { name: "v1" });
    expect(v.status, JSON.stringify(v.body)).toBe(201);
    expect(v.body.validation.validators).toHaveLength(5);
    expect(v.body.validation.validators[0]).toEqual({ id: json.id, pathGlob: "*.json", kind: "json", files: 1 });
    expect(v.body.validation.validators[4].files).toBe(0);
    const got = await api.call("GET", `${apps}/ok/versions/${v.body.id}`);
    expect(got.body.validation).toEqual(v.body.validation);
  });

  it("lists, reads, changes and deletes validators, each change audited", async () => {
    await seedService(api, biz, "crud");
    const v = await addValidator("crud", { pathGlob: "*.conf", kind: "json" });
    expect((await api.call("GET", `${apps}/crud/validators`)).body.items).toEqual([expect.objectContaining({ id: v.id, pathGlob: "*.conf", kind: "json", schema: null })]);
    const patched = await api.call("PATCH", `${apps}/crud/validators/${v.id}`, { kind: "jsonschema", schema: portSchema });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ kind: "jsonschema", schema: portSchema, pathGlob: "*.conf" });
    const back = await api.call("PATCH", `${apps}/crud/validators/${v.id}`, { kind: "yaml" });
    expect(back.body).toMatchObject({ kind: "yaml", schema: null });
    expect((await api.call("GET", `${apps}/crud/validators/${v.id}`)).body.kind).toBe("yaml");
    expect((await api.call("DELETE", `${apps}/crud/validators/${v.id}`)).status).toBe(200);
    expect((await api.call("GET", `${apps}/crud/validators/${v.id}`)).status).toBe(404);
    const audit = JSON.stringify((await api.call("GET", `/api/v1/audit?bizId=${biz}&limit=500`)).body);
    for (const action of ["validator.create", "validator.update", "validator.delete"]) expect(audit).toContain(action);
  });

  it("documents the routes in the OpenAPI document", async () => {
    const doc = (await api.call("GET", "/api/v1/openapi.json")).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/api/v1/bizs/{biz}/apps/{app}/validators", "/api/v1/bizs/{biz}/apps/{app}/validators/{validatorId}"]));
    expect(JSON.stringify(doc.paths["/api/v1/bizs/{biz}/apps/{app}/versions"].post.responses["422"])).toContain("VersionRefused");
    expect(Object.keys(doc.components.schemas.VersionRefused.properties.error.properties)).toContain("failures");
  });
});

describe("validators: refusing a version", () => {
  it("lists every failing file with its line and reason, and creates nothing", async () => {
    await seedService(api, biz, "bad", [
      { path: "/etc/app/a.json", content: '{\n  "a": 1,\n}\n' },
      { path: "/etc/app/b.yaml", content: "a: 1\nb: [1, 2\nc: 3\n" },
      { path: "/etc/app/c.toml", content: 'title = "x"\nport = = 80\n' },
      { path: "/etc/app/d.xml", content: "<root>\n  <a>\n</root>\n" },
      { path: "/etc/app/fine.json", content: "[]" },
    ]);
    for (const kind of ["json", "yaml", "toml", "xml"]) await addValidator("bad", { pathGlob: `*.${kind}`, kind });
    const before = await versionCount("bad");
    const r = await api.call("POST", `${apps}/bad/versions`, { name: "v1" });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe("failed_precondition");
    expect(r.body.error.message).toContain("/etc/app/a.json");
    const byFile = Object.fromEntries(r.body.error.failures.map((f: any) => [f.file, f]));
    expect(Object.keys(byFile).sort()).toEqual(["/etc/app/a.json", "/etc/app/b.yaml", "/etc/app/c.toml", "/etc/app/d.xml"]);
    expect(byFile["/etc/app/a.json"]).toMatchObject({ kind: "json", line: 3 });
    expect(byFile["/etc/app/b.yaml"].line).toBeGreaterThanOrEqual(2);
    expect(byFile["/etc/app/c.toml"]).toMatchObject({ kind: "toml", line: 2 });
    expect(byFile["/etc/app/d.xml"].line).toBeGreaterThanOrEqual(2);
    for (const f of r.body.error.failures) expect(f.reason.length).toBeGreaterThan(0);
    expect(await versionCount("bad")).toBe(before);
  });

  it("a JSON schema refuses a version naming the file, the line and the value, in JSON and in YAML", async () => {
    await seedService(api, biz, "schema", [
      { path: "/etc/app/server.json", content: '{\n  "port": 80,\n  "upstreams": ["a"]\n}\n' },
      { path: "/etc/app/server.yaml", content: "port: 8080\nupstreams:\n  - b\n" },
    ]);
    await addValidator("schema", { pathGlob: "/etc/app/server.*", kind: "jsonschema", schema: portSchema });
    expect((await api.call("POST", `${apps}/schema/versions`, { name: "good" })).status).toBe(201);

    await upload("schema", "/etc/app/server.json", '{\n  "port": 70000,\n  "upstreams": ["a"]\n}\n');
    await upload("schema", "/etc/app/server.yaml", "port: 8080\nupstreams: []\n");
    const r = await api.call("POST", `${apps}/schema/versions`, { name: "bad" });
    expect(r.status).toBe(422);
    const failures = r.body.error.failures;
    expect(failures).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: "/etc/app/server.json", kind: "jsonschema", line: 2, reason: expect.stringMatching(/\/port: .*65535/) }),
        expect.objectContaining({ file: "/etc/app/server.yaml", kind: "jsonschema", line: 2, reason: expect.stringContaining("/upstreams") }),
      ]),
    );
    expect((await api.call("GET", `${apps}/schema/versions`)).body.items.map((v: any) => v.name)).toEqual(["good"]);
  });

  it("fails a file that is not UTF-8 text under a validator that matches it", async () => {
    await seedService(api, biz, "binary", [{ path: "/etc/app/blob.json", content: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }]);
    await addValidator("binary", { pathGlob: "*.json", kind: "json" });
    const r = await api.call("POST", `${apps}/binary/versions`, {});
    expect(r.status).toBe(422);
    expect(r.body.error.failures).toEqual([expect.objectContaining({ file: "/etc/app/blob.json", reason: "not UTF-8 text", line: null })]);
  });
});

describe("validators: errors", () => {
  it("refuses a schema that is not a valid JSON Schema, a missing schema and a schema on a syntax kind", async () => {
    await seedService(api, biz, "inputs");
    const bad = [
      { body: { pathGlob: "*.json", kind: "jsonschema", schema: { type: "strin" } }, field: "schema" },
      { body: { pathGlob: "*.json", kind: "jsonschema", schema: { properties: { a: { required: "x" } } } }, field: "schema" },
      { body: { pathGlob: "*.json", kind: "jsonschema", schema: { $ref: "#/$defs/missing" } }, field: "schema" },
      { body: { pathGlob: "*.json", kind: "jsonschema", schema: [1] }, field: "schema" },
      { body: { pathGlob: "*.json", kind: "jsonschema" }, field: "schema" },
      { body: { pathGlob: "*.json", kind: "json", schema: portSchema }, field: "schema" },
      { body: { pathGlob: "*.json", kind: "ini" }, field: "kind" },
      { body: { pathGlob: "", kind: "json" }, field: "pathGlob" },
      { body: { pathGlob: "*.json", kind: "json", extra: 1 }, field: "" },
    ];
    for (const b of bad) {
      const r = await api.call("POST", `${apps}/inputs/validators`, b.body);
      expect(r.status, JSON.stringify(b.body)).toBe(400);
      expect(r.body.error.message).toContain(b.field);
    }
    let deep: unknown = { type: "object" };
    for (let i = 0; i < 200; i++) deep = { properties: { a: deep } };
    const r = await api.call("POST", `${apps}/inputs/validators`, { pathGlob: "*.json", kind: "jsonschema", schema: deep });
    expect(r.status).toBe(400);
    expect((await api.call("GET", `${apps}/inputs/validators`)).body.items).toEqual([]);
  });

  it("refuses validators on a kv service with 422 saying why", async () => {
    expect((await api.call("POST", apps, { name: "settings", configType: "kv" })).status).toBe(201);
    const r = await api.call("POST", `${apps}/settings/validators`, { pathGlob: "*", kind: "json" });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/kv service/);
  });

  it("answers 404 for a validator of another service or a missing service", async () => {
    await seedService(api, biz, "one");
    await seedService(api, biz, "two");
    const v = await addValidator("one", { pathGlob: "*", kind: "yaml" });
    expect((await api.call("GET", `${apps}/two/validators/${v.id}`)).status).toBe(404);
    expect((await api.call("PATCH", `${apps}/two/validators/${v.id}`, { memo: "x" })).status).toBe(404);
    expect((await api.call("DELETE", `${apps}/two/validators/${v.id}`)).status).toBe(404);
    expect((await api.call("GET", `${apps}/nope/validators`)).status).toBe(404);
  });
});

describe("validate script: bound, versioned and shipped like pre/post", () => {
  const scripts = `/api/v1/bizs/${biz}/scripts`;
  const check = "import os, sys\nroot = os.environ['edgeconf_staged_dir']\nsys.exit(0 if os.path.isdir(root) else 1)\n";

  it("binds a validate script, pins its content into versions, shows it in the diff, the references and the feed manifest", async () => {
    await seedService(api, biz, "checked", [{ path: "/etc/app/app.conf", content: "port 80\n" }]);
    const s = await api.call("POST", scripts, { name: "app_check", type: "python", content: check, versionName: "v1" });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const put = await api.call("PUT", `${apps}/checked/hooks`, { validate: { scriptId: s.body.id } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toMatchObject({ pre: null, post: null, validate: { scriptName: "app_check", type: "python", followsOnline: true, version: { name: "v1" } } });

    const v1 = await api.call("POST", `${apps}/checked/versions`, { name: "V1" });
    expect(v1.status, JSON.stringify(v1.body)).toBe(201);
    expect(v1.body.hooks.validate).toMatchObject({ scriptName: "app_check", versionName: "v1", type: "python", content: check });

    const v2script = await api.call("POST", `${scripts}/${s.body.id}/versions`, { name: "v2", content: `${check}# v2\n` });
    expect((await api.call("POST", `${scripts}/${s.body.id}/versions/${v2script.body.id}/publish`)).status).toBe(200);
    const v2 = await api.call("POST", `${apps}/checked/versions`, { name: "V2" });
    expect(v2.body.hooks.validate.versionName).toBe("v2");
    expect((await api.call("GET", `${apps}/checked/versions/${v1.body.id}`)).body.hooks.validate.content).toBe(check);
    const diff = await api.call("GET", `${apps}/checked/versions/diff?from=${v1.body.id}&to=${v2.body.id}`);
    expect(diff.body.hooks.validate).toMatchObject({ status: "changed", from: { versionName: "v1" }, to: { versionName: "v2" } });
    expect(diff.body.identical).toBe(false);

    const refs = await api.call("GET", `${scripts}/${s.body.id}/references`);
    expect(refs.body.drafts).toEqual([expect.objectContaining({ serviceName: "checked", kind: "validate" })]);

    expect((await api.call("POST", `${apps}/checked/publishes`, { versionId: v2.body.id })).status).toBe(201);
    const token = (await api.call("POST", "/api/v1/credentials", { name: "validate-feed", kind: "agent", bizId: biz, apps: ["checked"] })).body.token;
    const feed = await api.call("GET", `/feed/v1/bizs/${biz}/apps/checked/release?uid=h1`, undefined, { token });
    expect(feed.status).toBe(200);
    expect(feed.body.hooks.validate).toMatchObject({ type: "python", scriptName: "app_check", versionName: "v2", content: `${check}# v2\n` });
    expect(feed.body.hooks.pre).toBeNull();
  });

  it("refuses a validate script on a kv service like pre and post", async () => {
    await api.call("POST", apps, { name: "kv_validate", configType: "kv" });
    const s = await api.call("POST", scripts, { name: "kv_check", type: "shell", content: "exit 0\n" });
    const r = await api.call("PUT", `${apps}/kv_validate/hooks`, { validate: { scriptId: s.body.id } });
    expect(r.status).toBe(422);
    expect(r.body.error.message).toMatch(/kv service: scripts apply to file services only/);
  });
});
