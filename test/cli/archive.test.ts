/**
 * `edgeconf export` → `import` carries a whole service (files with modes, owners and memos, the
 * pre/post/validate scripts, the service's validators, a kv service's items and what export does
 * with secrets), and an import (like a push) is whole or nothing. The CLI bundle as a process against a real
 * server process; assertions compare what the server holds before and after.
 */
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { x as extract } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256, type Admin } from "../agent/harness";
import { packTar, startCliServer } from "./harness";

const BIZ = 32;
const MAX_FILE_BYTES = 65_536;
let suite: Awaited<ReturnType<typeof startCliServer>>;
let admin: Admin;
let work: { path: string };

const run = (...args: string[]) => suite.run(...args);
const app = (name: string, rest = "") => `/api/v1/bizs/${BIZ}/apps/${name}${rest}`;
const strip = ({ id, serviceId, createdAt, updatedAt, ...rest }: any) => rest;

/** Everything an import may touch, as the API shows it (ids of files included: "as before" means the same rows). */
async function snapshot(name: string): Promise<any> {
  const svc = await admin.call<{ configType: string }>("GET", app(name));
  if (svc.configType === "kv") {
    const items = (await admin.call<{ items: any[] }>("GET", app(name, "/kvs?limit=1000"))).items.map(({ id, serviceId, createdAt, updatedAt, ...k }) => k);
    return { items, values: await admin.call("GET", app(name, "/kvs?format=map&reveal=true")) };
  }
  const files = (await admin.call<{ items: any[] }>("GET", app(name, "/files?limit=1000"))).items.map(({ serviceId, createdAt, updatedAt, ...f }) => f);
  const hooks = await admin.call<Record<string, any>>("GET", app(name, "/hooks"));
  const validators = (await admin.call<{ items: any[] }>("GET", app(name, "/validators"))).items.map(strip);
  const scripts = (await admin.call<{ items: any[] }>("GET", `/api/v1/bizs/${BIZ}/scripts?limit=500`)).items.map((s) => s.name).sort();
  return { files, hooks, validators, scripts };
}

async function bindHooks(name: string, hooks: Record<string, number>) {
  await admin.call("PUT", app(name, "/hooks"), Object.fromEntries(Object.entries(hooks).map(([k, id]) => [k, { scriptId: id }])));
}

async function unpack(archive: string) {
  const dir = join(work.path, `unpacked-${Math.random().toString(36).slice(2)}`);
  await mkdir(dir);
  await extract({ file: archive, cwd: dir, preserveOwner: false });
  return { dir, manifest: JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) };
}

/** A hand-made archive: manifest (format /2) for `files`, their bytes, nothing else. */
async function makeArchive(name: string, files: { full: string; data: string | Buffer; user?: string; privilege?: string }[]) {
  const now = new Date().toISOString();
  const entry = (full: string) => `files${full}`;
  const manifest = {
    format: "edgeconf-version/2",
    exportedAt: now,
    biz: BIZ,
    app: "hand-made",
    service: { configType: "file" },
    version: { id: 1, name: "H1", memo: "", createdBy: "test", createdAt: now },
    files: files.map((f) => {
      const cut = f.full.lastIndexOf("/");
      return { path: f.full.slice(0, cut) || "/", name: f.full.slice(cut + 1), entry: entry(f.full), sha256: sha256(f.data), size: Buffer.byteLength(f.data), fileType: "text", user: f.user ?? "root", group: "root", privilege: f.privilege ?? "644", memo: "" };
    }),
    hooks: { pre: null, post: null, validate: null },
    validators: [{ pathGlob: "*.never", kind: "json", schema: null, memo: "" }],
    kvs: null,
  };
  return packTar(join(work.path, name), [{ path: "manifest.json", data: JSON.stringify(manifest) }, ...files.map((f) => ({ path: entry(f.full), data: f.data }))]);
}

beforeAll(async () => {
  suite = await startCliServer({ prefix: "edgeconf-cli-archive-", biz: BIZ, serverEnv: { EDGECONF_MAX_FILE_BYTES: String(MAX_FILE_BYTES) } });
  ({ admin, work } = suite);
}, 120_000);

afterAll(() => suite?.stop());

describe("export -> import round trip", () => {
  it("happy: a file service comes across whole: files (modes, owners, memos), pre/post/validate scripts, validators", async () => {
    await admin.service(BIZ, "full");
    const put = (full: string, data: string | Buffer, q: Record<string, string>) => admin.call("PUT", app("full", `/files/content?${new URLSearchParams({ path: full, ...q })}`), data);
    await put("/etc/app/app.json", '{"port": 8080}\n', { privilege: "640", user: "app", group: "staff", memo: "main config" });
    await put("/etc/app/blob.bin", Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256)), { privilege: "600" });
    await put("/opt/run.sh", "#!/bin/sh\necho hi\n", { privilege: "755", user: "1001", group: "1001" });
    await bindHooks("full", {
      pre: await admin.script(BIZ, "full_pre", "shell", "#!/bin/bash\necho pre\n"),
      post: await admin.script(BIZ, "full_post", "python", "print('post')\n"),
      validate: await admin.script(BIZ, "full_validate", "shell", "#!/bin/bash\ntest -f \"$bk_bscp_staged_dir/etc/app/app.json\"\n"),
    });
    await admin.call("POST", app("full", "/validators"), { pathGlob: "*.json", kind: "json", memo: "every JSON parses" });
    await admin.call("POST", app("full", "/validators"), { pathGlob: "/etc/app/app.json", kind: "jsonschema", schema: { type: "object", properties: { port: { type: "integer", maximum: 65535 } } } });
    expect((await run("release", "--app", "full", "--name", "F1")).code).toBe(0);

    const archive = join(work.path, "f1.tar.gz");
    const exported = await run("export", "--app", "full", "--version", "F1", "-o", archive);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain("exported F1 (3 files, 3 scripts, 2 validators)");
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    const first = await unpack(archive);
    expect(first.manifest).toMatchObject({ format: "edgeconf-version/2", service: { configType: "file" }, hooks: { validate: { scriptName: "full_validate", type: "shell" } } });
    expect(await readFile(join(first.dir, "scripts/validate_hook.sh"), "utf8")).toContain("bk_bscp_staged_dir");

    await admin.service(BIZ, "full-copy");
    const imported = await run("import", archive, "--app", "full-copy", "--prune");
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    const [src, copy] = [await snapshot("full"), await snapshot("full-copy")];
    const noId = (files: any[]) => files.map(({ id, ...f }) => f);
    expect(noId(copy.files)).toEqual(noId(src.files));
    expect(copy.validators).toEqual(src.validators);
    for (const kind of ["pre", "post", "validate"]) expect(copy.hooks[kind], kind).toMatchObject({ scriptName: src.hooks[kind].scriptName, version: { name: src.hooks[kind].version.name } });

    // And back out of the copy: the same archive but for ids, names and times.
    expect((await run("release", "--app", "full-copy", "--name", "C1")).code).toBe(0);
    const again = join(work.path, "c1.tar.gz");
    expect((await run("export", "--app", "full-copy", "--version", "C1", "-o", again)).code).toBe(0);
    const second = await unpack(again);
    for (const key of ["files", "hooks", "validators", "kvs", "service"]) expect(second.manifest[key], key).toEqual(first.manifest[key]);
    for (const f of first.manifest.files) expect(await readFile(join(second.dir, f.entry))).toEqual(await readFile(join(first.dir, f.entry)));
  });

  it("happy: a kv service comes across with its items; secrets only when asked, never as ******", async () => {
    await admin.call("POST", `/api/v1/bizs/${BIZ}/apps`, { name: "settings", configType: "kv" });
    const items = {
      "app.name": { type: "string", value: "shop", memo: "display name" },
      "db.port": { type: "number", value: "5432" },
      limits: { type: "json", value: '{"rps": 10}' },
      motd: { type: "text", value: "hello\nworld\n" },
      "db.password": { type: "secret", value: "hunter2-Pl41n" },
    };
    await admin.call("PUT", app("settings", "/kvs"), { items });
    expect((await run("release", "--app", "settings", "--name", "K1")).code).toBe(0);

    const refused = await run("export", "--app", "settings", "--version", "K1", "-o", join(work.path, "k1.tar.gz"));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("1 secret item(s) (db.password)");
    expect(refused.stderr).toContain("--reveal-secrets");
    await expect(stat(join(work.path, "k1.tar.gz"))).rejects.toThrow();

    const revealed = join(work.path, "k1-secrets.tar.gz");
    const out = await run("export", "--app", "settings", "--version", "K1", "-o", revealed, "--reveal-secrets");
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain("5 kv items");
    const { dir, manifest } = await unpack(revealed);
    expect(manifest.kvs).toMatchObject({ entry: "kvs.json", count: 5, secrets: "included", skippedSecrets: [] });
    const kvsJson = await readFile(join(dir, "kvs.json"), "utf8");
    expect(JSON.parse(kvsJson)["db.password"]).toEqual({ type: "secret", value: "hunter2-Pl41n", memo: "" });
    expect(kvsJson).not.toContain("******");
    const audit = (await admin.call<{ items: any[] }>("GET", `/api/v1/audit?biz=${BIZ}&limit=50`)).items;
    expect(audit.some((a) => a.action === "kv.reveal" && a.resourceType === "version")).toBe(true);

    await admin.call("POST", `/api/v1/bizs/${BIZ}/apps`, { name: "settings-copy", configType: "kv" });
    const dry = await run("import", revealed, "--app", "settings-copy", "--dry-run");
    expect(dry.stdout).toContain("added    kv db.password (secret)");
    expect(dry.stdout).toContain("dry run: the draft was not changed");
    expect(await admin.call("GET", app("settings-copy", "/kvs?format=map"))).toEqual({});
    const imported = await run("import", revealed, "--app", "settings-copy");
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    expect(await snapshot("settings-copy")).toEqual(await snapshot("settings"));

    // --skip-secrets: left out, said so; an import keeps the target's own secret, and refuses where there is none.
    const skipped = join(work.path, "k1-skipped.tar.gz");
    const skip = await run("export", "--app", "settings", "--version", "K1", "-o", skipped, "--skip-secrets");
    expect(skip.code, skip.stderr).toBe(0);
    expect(skip.stderr).toContain("secret items left out of the archive: db.password");
    const unpackedSkip = await unpack(skipped);
    expect(unpackedSkip.manifest.kvs).toMatchObject({ count: 4, secrets: "skipped", skippedSecrets: ["db.password"] });
    expect(await readFile(join(unpackedSkip.dir, "kvs.json"), "utf8")).not.toContain("db.password");
    await admin.call("POST", `/api/v1/bizs/${BIZ}/apps`, { name: "settings-new", configType: "kv" });
    const none = await run("import", skipped, "--app", "settings-new");
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("has no secret db.password to keep");
    expect(await admin.call("GET", app("settings-new", "/kvs?format=map"))).toEqual({});
    await admin.call("PUT", app("settings-new", "/kvs/db.password"), { type: "secret", value: "its-own" });
    const kept = await run("import", skipped, "--app", "settings-new");
    expect(kept.code, kept.stdout + kept.stderr).toBe(0);
    const values = await admin.call<Record<string, any>>("GET", app("settings-new", "/kvs?format=map&reveal=true"));
    expect(values["db.password"].value).toBe("its-own");
    expect(values["app.name"].value).toBe("shop");

    // A kv archive is not a file service's draft.
    await admin.service(BIZ, "files-only");
    const wrong = await run("import", revealed, "--app", "files-only");
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("holds a kv service's version and 'files-only' is a file service");
  });
});

describe("import is whole or nothing", () => {
  /** A file service with two files, a pre-script and a validator; answers its snapshot. */
  async function target(name: string) {
    await admin.service(BIZ, name);
    await admin.file(BIZ, name, "/etc/a.conf", "a=old\n", { privilege: "644", user: "app" });
    await admin.file(BIZ, name, "/etc/keep.conf", "keep\n");
    await bindHooks(name, { pre: await admin.script(BIZ, `${name}_pre`, "shell", "#!/bin/bash\necho t\n") });
    await admin.call("POST", app(name, "/validators"), { pathGlob: "*.yaml", kind: "yaml" });
    return snapshot(name);
  }

  it("error: an archive whose third file has an owner the server refuses changes nothing (checked before the first request)", async () => {
    const before = await target("target");
    const archive = await makeArchive("bad-owner.tgz", [
      { full: "/etc/a.conf", data: "a=new\n" },
      { full: "/etc/b.conf", data: "b\n" },
      { full: "/etc/c.conf", data: "c\n", user: "bad owner!" },
    ]);
    const r = await run("import", archive, "--app", "target", "--prune");
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toContain('/etc/c.conf: user "bad owner!" is not a user/group name');
    expect(await snapshot("target")).toEqual(before);
  });

  it("error: a file the server refuses part-way (larger than its limit): what was changed before it is undone, the draft is exactly as before", async () => {
    const before = await target("target2");
    const archive = await makeArchive("too-big.tgz", [
      { full: "/etc/a.conf", data: "a=new\n", privilege: "600" },
      { full: "/etc/b.conf", data: "b\n" },
      { full: "/etc/z.bin", data: Buffer.alloc(MAX_FILE_BYTES + 1, 7) },
    ]);
    const r = await run("import", archive, "--app", "target2", "--prune");
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/413|too large|larger/i);
    expect(r.stderr).toContain("the 2 changes made before it were undone; the draft is as it was");
    expect(await snapshot("target2")).toEqual(before);
    // The same archive without the refused file goes in whole.
    const fine = await run("import", await makeArchive("fine.tgz", [{ full: "/etc/a.conf", data: "a=new\n", privilege: "600" }, { full: "/etc/b.conf", data: "b\n" }]), "--app", "target2", "--prune");
    expect(fine.code, fine.stdout + fine.stderr).toBe(0);
    const after = await snapshot("target2");
    expect(after.files.map((f: any) => [f.name, f.privilege])).toEqual([["a.conf", "600"], ["b.conf", "644"]]);
    expect(after.hooks.pre).toBeNull();
    expect(after.validators.map((v: any) => v.pathGlob)).toEqual(["*.never"]);
  });
});

describe("push is whole or nothing", () => {
  it("error: a file the server refuses part-way (larger than its limit): the change and the additions before it are undone, the draft is exactly as before", async () => {
    await admin.service(BIZ, "pushed");
    await admin.file(BIZ, "pushed", "/etc/a.conf", "a=old\n", { privilege: "644", user: "app" });
    await admin.file(BIZ, "pushed", "/etc/keep.conf", "keep\n");
    const before = await snapshot("pushed");
    const dir = join(work.path, "push-too-big");
    await mkdir(join(dir, "etc"), { recursive: true });
    await writeFile(join(dir, "etc/a.conf"), "a=new\n");
    await writeFile(join(dir, "etc/b.conf"), "b\n");
    await writeFile(join(dir, "etc/z.bin"), Buffer.alloc(MAX_FILE_BYTES + 1, 7));
    const r = await run("push", dir, "--app", "pushed", "--prune");
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/413|too large|larger/i);
    expect(r.stderr).toContain("push stopped: the 2 changes made before it were undone; the draft is as it was");
    expect(await snapshot("pushed")).toEqual(before);
  });
});
