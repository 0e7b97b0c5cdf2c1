import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsOf } from "../../db/types";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedGroup, seedPublish, seedRelease, seedService } from "../helpers/seed";

let api: TestApi;
let agent: string;
const biz = 10;
const apps = `/api/v1/bizs/${biz}/apps`;
const kvs = (app = "settings") => `${apps}/${app}/kvs`;
const SECRET = "hunter2-Pl41nText-xyzzy";

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  expect((await api.call("POST", apps, { name: "settings", configType: "kv" })).status).toBe(201);
  await seedService(api, biz, "web", [{ path: "/etc/web.conf", content: "a\n" }]);
  agent = (await agentToken(api, biz, ["*"])).token;
});
afterAll(() => api?.close());

describe("kv items: happy paths", () => {
  it("creates one item of each type, lists them sorted by key with the secret masked", async () => {
    const items = [
      { key: "app.name", type: "string", value: "shop" },
      { key: "db.port", type: "number", value: 5432 },
      { key: "motd", type: "text", value: "hello\nworld\n" },
      { key: "limits", type: "json", value: '{"rps": 10}' },
      { key: "features", type: "yaml", value: "a: 1\nb: [x, y]\n" },
      { key: "layout", type: "xml", value: "<root><a x=\"1\"/></root>" },
      { key: "db.password", type: "secret", value: SECRET, memo: "rotated monthly" },
    ];
    for (const it of items) {
      const r = await api.call("POST", kvs(), it);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body).toMatchObject({ key: it.key, type: it.type });
    }
    const list = await api.call("GET", kvs());
    expect(list.status).toBe(200);
    expect(list.body.items.map((x: any) => x.key)).toEqual(["app.name", "db.password", "db.port", "features", "layout", "limits", "motd"]);
    expect(list.body.items.find((x: any) => x.key === "db.port").value).toBe("5432");
    expect(list.body.items.find((x: any) => x.key === "db.password")).toMatchObject({ value: "******", masked: true, memo: "rotated monthly" });
    expect(JSON.stringify(list.body)).not.toContain(SECRET);
  });

  it("GET masks a secret; reveal=true shows it and is audited (without the value)", async () => {
    const masked = await api.call("GET", `${kvs()}/db.password`);
    expect(masked.body).toMatchObject({ value: "******", masked: true });
    const shown = await api.call("GET", `${kvs()}/db.password?reveal=true`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ value: SECRET, masked: false });
    const audit = await api.call("GET", `/api/v1/audit?biz=${biz}&limit=200`);
    const actions = audit.body.items.map((a: any) => a.action);
    expect(actions).toContain("kv.reveal");
    expect(actions).toContain("kv.create");
    expect(JSON.stringify(audit.body)).not.toContain(SECRET);
  });

  it("PUT replaces a value keeping its type, creates with a type, DELETE removes", async () => {
    const r = await api.call("PUT", `${kvs()}/db.port`, { value: "6432" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: "number", value: "6432" });
    const c = await api.call("PUT", `${kvs()}/new_key`, { type: "string", value: "v" });
    expect(c.status).toBe(201);
    expect((await api.call("DELETE", `${kvs()}/new_key`)).status).toBe(200);
    expect((await api.call("GET", `${kvs()}/new_key`)).status).toBe(404);
  });

  it("exports as a map (masked unless revealed) and imports back all or none", async () => {
    const map = await api.call("GET", `${kvs()}?format=map`);
    expect(map.body["db.password"]).toEqual({ type: "secret", value: "******" });
    expect(map.body["db.port"]).toEqual({ type: "number", value: "6432" });
    // The masked export imports back without touching the secret.
    const back = await api.call("PUT", kvs(), { items: map.body });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.changed).toEqual([]);
    expect(back.body.unchanged).toContain("db.password");
    expect((await api.call("GET", `${kvs()}/db.password?reveal=true`)).body.value).toBe(SECRET);
    // One bad value refuses the whole import.
    const bad = await api.call("PUT", kvs(), { items: { "app.name": { type: "string", value: "changed" }, broken: { type: "json", value: "{" } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("items.broken.value");
    expect((await api.call("GET", `${kvs()}/app.name`)).body.value).toBe("shop");
  });

  it("a version's secrets read masked; reveal=true shows them (for an export) and is audited with the version and keys", async () => {
    const v = await seedRelease(api, biz, "settings", "K-reveal");
    const masked = await api.call("GET", `${apps}/settings/versions/${v.id}`);
    expect(masked.body.kvs.find((k: any) => k.key === "db.password")).toMatchObject({ type: "secret", value: "******" });
    const shown = await api.call("GET", `${apps}/settings/versions/${v.id}?reveal=true`);
    expect(shown.status, JSON.stringify(shown.body)).toBe(200);
    expect(shown.body.kvs.find((k: any) => k.key === "db.password")).toMatchObject({ type: "secret", value: SECRET });
    expect(shown.body.kvs.find((k: any) => k.key === "db.port")).toMatchObject({ type: "number", value: "6432" });
    const audit = (await api.call("GET", `/api/v1/audit?biz=${biz}&limit=200`)).body.items;
    const entry = audit.find((a: any) => a.action === "kv.reveal" && a.resourceType === "version");
    expect(entry, JSON.stringify(audit.slice(0, 3))).toBeTruthy();
    expect(JSON.stringify(entry)).toContain("db.password");
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });
});

describe("kv items: refused input", () => {
  const refused: [string, unknown, string][] = [
    ["json that does not parse", { key: "j", type: "json", value: "{a:" }, "value: not valid JSON"],
    ["yaml that does not parse", { key: "y", type: "yaml", value: "a: [1,\nb: 2" }, "value: not valid YAML"],
    ["xml not well formed", { key: "x", type: "xml", value: "<a><b></a>" }, "value: not well-formed XML"],
    ["a number that is not finite", { key: "n", type: "number", value: "1e999" }, "value:"],
    ["a number in hex", { key: "n", type: "number", value: "0x10" }, "value:"],
    ["a string with a line break", { key: "s", type: "string", value: "a\nb" }, "value: a string item is one line"],
    ["a key with a slash", { key: "a/b", type: "string", value: "v" }, "key:"],
    ["a key '..'", { key: "..", type: "string", value: "v" }, "key:"],
    ["a key too long", { key: "k".repeat(129), type: "string", value: "v" }, "key:"],
    ["an unknown type", { key: "t", type: "toml", value: "a=1" }, "type"],
  ];
  for (const [name, body, message] of refused) {
    it(`refuses ${name} with 400 naming the field`, async () => {
      const r = await api.call("POST", kvs(), body);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.message).toContain(message);
    });
  }

  it("refuses a duplicate key (409), a PUT creating without type (400), an absent key (404)", async () => {
    expect((await api.call("POST", kvs(), { key: "app.name", type: "string", value: "x" })).status).toBe(409);
    const noType = await api.call("PUT", `${kvs()}/brand_new`, { value: "x" });
    expect(noType.status).toBe(400);
    expect(noType.body.error.message).toContain("type");
    expect((await api.call("DELETE", `${kvs()}/absent`)).status).toBe(404);
  });

  it("refuses kv items on a file service and files and scripts on a kv service (422)", async () => {
    const onFile = await api.call("POST", kvs("web"), { key: "a", type: "string", value: "v" });
    expect(onFile.status).toBe(422);
    expect(onFile.body.error.message).toContain("file service");
    expect((await api.call("GET", kvs("web"))).status).toBe(422);
    const file = await api.call("PUT", `${apps}/settings/files/content?path=${encodeURIComponent("/etc/x")}`, new TextEncoder().encode("x"));
    expect(file.status).toBe(422);
    expect(file.body.error.message).toContain("kv service");
  });
});

describe("kv items: versions, diff, feed", () => {
  let v1: { id: number };
  let v2: { id: number };

  it("a version snapshots the items (secret masked); later draft edits do not change it", async () => {
    v1 = await seedRelease(api, biz, "settings", "V1");
    const got = await api.call("GET", `${apps}/settings/versions/${v1.id}`);
    expect(got.body.kvs.map((k: any) => k.key)).toContain("db.password");
    expect(got.body.kvs.find((k: any) => k.key === "db.password").value).toBe("******");
    expect(JSON.stringify(got.body)).not.toContain(SECRET);
    await api.call("PUT", `${kvs()}/db.port`, { value: 7000 });
    await api.call("DELETE", `${kvs()}/motd`);
    await api.call("POST", kvs(), { key: "added", type: "string", value: "new" });
    // The same secret set again keeps its envelope: not a change.
    await api.call("PUT", `${kvs()}/db.password`, { value: SECRET });
    v2 = await seedRelease(api, biz, "settings", "V2");
    expect((await api.call("GET", `${apps}/settings/versions/${v1.id}`)).body.kvs.find((k: any) => k.key === "db.port").value).toBe("6432");
  });

  it("the diff names added, removed and changed keys, secrets masked", async () => {
    await api.call("PUT", `${kvs()}/db.password`, { value: "another-secret-value" });
    const v3 = await seedRelease(api, biz, "settings", "V3");
    const d = await api.call("GET", `${apps}/settings/versions/diff?from=${v1.id}&to=${v2.id}`);
    expect(d.status).toBe(200);
    expect(d.body.kvs.added.map((k: any) => k.key)).toEqual(["added"]);
    expect(d.body.kvs.removed.map((k: any) => k.key)).toEqual(["motd"]);
    expect(d.body.kvs.changed).toEqual([{ key: "db.port", from: expect.objectContaining({ value: "6432" }), to: expect.objectContaining({ value: "7000" }), valueChanged: true }]);
    expect(d.body.identical).toBe(false);
    const d3 = await api.call("GET", `${apps}/settings/versions/diff?from=${v2.id}&to=${v3.id}`);
    expect(d3.body.kvs.changed).toEqual([{ key: "db.password", from: expect.objectContaining({ value: "******" }), to: expect.objectContaining({ value: "******" }), valueChanged: true }]);
    expect(JSON.stringify(d3.body)).not.toContain("another-secret-value");
  });

  it("the feed gives agents the items with the secret's plaintext; groups and rollback as for files", async () => {
    const poll = (uid: string, labels = "") => api.call("GET", `/feed/v1/bizs/${biz}/apps/settings/release?uid=${uid}&wait=0&labels=${labels}`, undefined, { token: agent });
    await seedPublish(api, biz, "settings", v2.id);
    const prod = await seedGroup(api, biz, "kv-prod", "env=prod");
    await seedPublish(api, biz, "settings", v1.id, [prod.id]);
    const a = await poll("h1");
    expect(a.status).toBe(200);
    expect(a.body.configType).toBe("kv");
    expect(a.body.release.id).toBe(v2.id);
    expect(a.body.kvs).toContainEqual({ key: "db.password", type: "secret", value: SECRET });
    expect(a.body.kvs).toContainEqual({ key: "db.port", type: "number", value: "7000" });
    const b = await poll("h2", "env%3Dprod");
    expect(b.body.release.id).toBe(v1.id);
    expect(b.body.kvs).toContainEqual({ key: "motd", type: "text", value: "hello\nworld\n" });
    // Rollback: publishing V1 to everyone again; the history marks it.
    await seedPublish(api, biz, "settings", v1.id);
    expect((await poll("h1")).body.release.id).toBe(v1.id);
    const history = await api.call("GET", `${apps}/settings/publishes`);
    expect(history.body.items[0]).toMatchObject({ version: { id: v1.id }, rollback: true });
  });

  it("no table of the database holds a secret's plaintext", async () => {
    const tables = rowsOf<{ t: string }>(await api.deps.db.execute(sql`select table_name as t from information_schema.tables where table_schema = 'public'`)).map((r) => r.t);
    expect(tables).toContain("kv_items");
    let dumped = "";
    for (const t of tables) dumped += JSON.stringify(rowsOf(await api.deps.db.execute(sql.raw(`select t::text as row from "${t}" t`))));
    expect(dumped).toContain("db.password");
    expect(dumped).not.toContain(SECRET);
    expect(dumped).not.toContain("another-secret-value");
    expect(dumped).not.toContain(Buffer.from(SECRET).toString("base64").slice(0, 16));
  });
});
