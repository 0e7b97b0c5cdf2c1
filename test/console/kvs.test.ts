import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApi } from "../helpers/app";
import { signedInConsole, type FormClient } from "../helpers/console";

let api: TestApi;
let web: FormClient;
const svc = "/ui/bizs/10/services/settings";
const SECRET = "console-secret-Zq9";

beforeAll(async () => {
  ({ api, web } = await signedInConsole());
  expect((await api.call("POST", "/api/v1/bizs/10/apps", { name: "settings", configType: "kv" })).status).toBe(201);
});
afterAll(() => api?.close());

const item = (key: string) => api.call("GET", `/api/v1/bizs/10/apps/settings/kvs/${key}?reveal=true`);

describe("console: key-value editor", () => {
  it("adds items of several types; the list masks the secret; a bad value is shown next to its field", async () => {
    expect((await web.post(`${svc}/kvs`, { key: "db.port", type: "number", value: "5432\r\n", memo: "" })).status).toBe(303);
    expect((await web.post(`${svc}/kvs`, { key: "features", type: "yaml", value: "a: 1\r\nb: 2\r\n", memo: "flags" })).status).toBe(303);
    expect((await web.post(`${svc}/kvs`, { key: "db.password", type: "secret", value: SECRET, memo: "" })).status).toBe(303);
    expect((await item("db.port")).body.value).toBe("5432");
    expect((await item("features")).body.value).toBe("a: 1\nb: 2\n");
    const page = await web.get(svc);
    expect(page.status).toBe(200);
    expect(page.html).toContain('data-key="db.password"');
    expect(page.html).toContain("******");
    expect(page.html).not.toContain(SECRET);
    const bad = await web.post(`${svc}/kvs`, { key: "broken", type: "json", value: "{nope", memo: "" });
    expect(bad.status).toBe(400);
    expect(bad.html).toMatch(/data-error-for="value">value: not valid JSON/);
  });

  it("the edit page fits the type: a password field for a secret (kept when left empty), reveal is audited", async () => {
    const edit = await web.get(`${svc}/kvs/db.password`);
    expect(edit.html).toContain('type="password"');
    expect(edit.html).not.toContain(SECRET);
    expect((await web.get(`${svc}/kvs/features`)).html).toContain("<textarea");
    expect((await web.get(`${svc}/kvs/db.port`)).html).toContain('inputmode="decimal"');
    // Empty secret field: the memo changes, the secret stays.
    expect((await web.post(`${svc}/kvs/db.password`, { type: "secret", value: "", memo: "rotated" })).status).toBe(303);
    expect((await item("db.password")).body).toMatchObject({ value: SECRET, memo: "rotated" });
    const shown = await web.post(`${svc}/kvs/db.password/reveal`, {});
    expect(shown.html).toContain(`data-testid="revealed">${SECRET}<`);
    const audit = await api.call("GET", "/api/v1/audit?biz=10&action=kv.reveal");
    expect(audit.body.items.length).toBeGreaterThan(0);
    const refused = await web.post(`${svc}/kvs/db.port`, { type: "number", value: "twelve", memo: "" });
    expect(refused.status).toBe(400);
    expect(refused.html).toContain("is not a finite decimal number");
  });

  it("exports as JSON and YAML (secrets masked) and imports back; a bad import changes nothing", async () => {
    const json = await web.get(`${svc}/kv-export?format=json`);
    expect(json.headers.get("content-disposition")).toContain("attachment");
    const items = JSON.parse(json.html);
    expect(items["db.password"]).toEqual({ type: "secret", value: "******" });
    const yaml = await web.get(`${svc}/kv-export?format=yaml`);
    expect(yaml.html).toContain("db.port:");
    expect(yaml.html).not.toContain(SECRET);

    const changed = yaml.html.replace('value: "5432"', 'value: "6432"').replace("value: 5432", "value: 6432") + "extra:\n  type: string\n  value: added\n";
    const imp = await web.post(`${svc}/kv-import`, { text: changed });
    expect(imp.status, imp.html).toBe(303);
    expect(decodeURIComponent(imp.headers.get("location") ?? "")).toContain("1 added, 1 changed");
    expect((await item("db.port")).body.value).toBe("6432");
    expect((await item("db.password")).body.value).toBe(SECRET);

    const bad = await web.post(`${svc}/kv-import`, { text: '{"db.port": {"type": "number", "value": "7000"}, "x": {"type": "xml", "value": "<a>"}}' });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain("not well-formed XML");
    expect((await item("db.port")).body.value).toBe("6432");
  });

  it("versions show the items masked and the diff lists key changes", async () => {
    expect((await web.post(`${svc}/versions`, { name: "V1", memo: "" })).status).toBe(303);
    expect((await web.post(`${svc}/kvs/extra/delete`, {})).status).toBe(303);
    expect((await web.post(`${svc}/versions`, { name: "V2", memo: "" })).status).toBe(303);
    const versions = (await api.call("GET", "/api/v1/bizs/10/apps/settings/versions")).body.items;
    const [v2, v1] = versions;
    const page = await web.get(`${svc}/versions/${v1.id}`);
    expect(page.html).toContain('data-testid="version-kvs"');
    expect(page.html).not.toContain(SECRET);
    const diff = await web.get(`${svc}/versions/diff?from=${v1.id}&to=${v2.id}`);
    expect(diff.html).toMatch(/Keys removed: <code>extra/);
  });
});
