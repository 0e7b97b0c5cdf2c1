/**
 * `edgeconf push`, `export`, `import` and the error exits, as processes against a real server.
 * Assertions are about outcomes: exit codes, what the server's draft and versions hold, bytes and
 * modes on disk.
 */
import { chmod, mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { x as extract } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../helpers/database";
import { Admin, freePort, sha256, startServer, tempDir, type ServerHandle } from "../agent/harness";
import { buildCliBundle, packTar, runCli } from "./harness";

const BIZ = 31;
let work: Awaited<ReturnType<typeof tempDir>>;
let server: ServerHandle;
let admin: Admin;
let cli: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let env: Record<string, string>;

const run = (...args: string[]) => runCli(cli, args, env);
type DraftFile = { id: number; path: string; name: string; sha256: string; privilege: string; user: string; group: string };
async function draft(app: string): Promise<Map<string, DraftFile>> {
  const list = await admin.call<{ items: DraftFile[] }>("GET", `/api/v1/bizs/${BIZ}/apps/${app}/files?limit=1000`);
  return new Map(list.items.map((f) => [`${f.path === "/" ? "" : f.path}/${f.name}`, f]));
}
async function put(root: string, rel: string, content: string | Buffer, mode = 0o644) {
  const file = join(root, rel);
  await mkdir(join(file, ".."), { recursive: true });
  await writeFile(file, content);
  await chmod(file, mode);
}

beforeAll(async () => {
  work = await tempDir("edgeconf-cli-draft-");
  database = await createTestDatabase();
  [cli, server] = await Promise.all([buildCliBundle(work.path), startServer({ dataDir: join(work.path, "server"), databaseUrl: database?.url })]);
  admin = new Admin(server.url);
  await admin.biz(BIZ);
  env = { EDGECONF_URL: server.url, EDGECONF_TOKEN: admin.token, EDGECONF_BIZ: String(BIZ) };
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await database?.drop();
  await work?.remove();
});

describe("edgeconf push", () => {
  it("happy: dry run changes nothing; push adds with modes; changes are listed; without --prune extra files are kept, with it removed", async () => {
    await admin.service(BIZ, "web");
    await admin.file(BIZ, "web", "/etc/legacy.conf", "old\n");
    const dir = join(work.path, "push-web");
    await put(dir, "etc/nginx/nginx.conf", "worker_processes 2;\n");
    await put(dir, "etc/app/secret.key", Buffer.from([0, 1, 2, 255]), 0o600);
    await put(dir, "usr/local/bin/reload.sh", "#!/bin/sh\n", 0o755);
    await put(dir, "top.conf", "x=1\n");

    const dry = await run("push", dir, "--app", "web", "--dry-run");
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("added    /etc/nginx/nginx.conf (644");
    expect(dry.stdout).toContain("dry run: 4 added, 0 changed, 0 removed, 1 kept, 0 unchanged");
    expect([...(await draft("web")).keys()]).toEqual(["/etc/legacy.conf"]);

    const first = await run("push", dir, "--app", "web");
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("kept     /etc/legacy.conf");
    let files = await draft("web");
    expect([...files.keys()].sort()).toEqual(["/etc/app/secret.key", "/etc/legacy.conf", "/etc/nginx/nginx.conf", "/top.conf", "/usr/local/bin/reload.sh"]);
    expect(files.get("/etc/app/secret.key")).toMatchObject({ privilege: "600", sha256: sha256(Buffer.from([0, 1, 2, 255])), user: "root", group: "root" });
    expect(files.get("/usr/local/bin/reload.sh")!.privilege).toBe("755");
    expect(files.get("/top.conf")).toMatchObject({ path: "/", name: "top.conf" });

    await put(dir, "etc/nginx/nginx.conf", "worker_processes 4;\n");
    await chmod(join(dir, "top.conf"), 0o640);
    const again = await run("push", dir, "--app", "web", "--prune", "--user", "www-data", "--group", "www-data");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("changed  /etc/nginx/nginx.conf (content, user root -> www-data, group root -> www-data)");
    expect(again.stdout).toContain("changed  /top.conf (mode 644 -> 640");
    expect(again.stdout).toContain("removed  /etc/legacy.conf");
    files = await draft("web");
    expect(files.has("/etc/legacy.conf")).toBe(false);
    expect(files.get("/etc/nginx/nginx.conf")).toMatchObject({ sha256: sha256("worker_processes 4;\n"), user: "www-data" });
    expect(files.get("/top.conf")!.privilege).toBe("640");

    const idle = await run("push", dir, "--app", "web", "--prune", "--user", "www-data", "--group", "www-data");
    expect(idle.stdout).toContain("0 added, 0 changed, 0 removed, 0 kept, 4 unchanged");
  });

  it("security: a symbolic link is skipped with a warning and never followed out of DIR", async () => {
    await admin.service(BIZ, "linked");
    const outside = join(work.path, "outside-secret");
    await writeFile(outside, "do not upload\n");
    const dir = join(work.path, "push-linked");
    await put(dir, "etc/a.conf", "a\n");
    await symlink(outside, join(dir, "etc/leak.conf"));
    await symlink(work.path, join(dir, "etc/tree"));
    const r = await run("push", dir, "--app", "linked");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("skipped etc/leak.conf: a symbolic link");
    expect(r.stderr).toContain("skipped etc/tree: a symbolic link");
    expect([...(await draft("linked")).keys()]).toEqual(["/etc/a.conf"]);
  });
});

describe("edgeconf export and import", () => {
  it("happy: export -> import -> release -> export gives byte-identical files, modes, owners and scripts", async () => {
    await admin.service(BIZ, "source");
    const dir = join(work.path, "push-source");
    const binary = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
    await put(dir, "etc/app/app.conf", "name=source\n", 0o640);
    await put(dir, "etc/app/blob.bin", binary, 0o600);
    await put(dir, "opt/run.sh", "#!/bin/sh\necho hi\n", 0o755);
    expect((await run("push", dir, "--app", "source", "--user", "app", "--group", "staff")).code).toBe(0);
    const pre = await admin.script(BIZ, "cli_pre_check", "shell", "#!/bin/bash\necho checking\n");
    await admin.hooks(BIZ, "source", pre, null);
    const released = await run("release", "--app", "source", "--name", "S1");
    expect(released.code, released.stderr).toBe(0);

    const archive = join(work.path, "s1.tar.gz");
    const exported = await run("export", "--app", "source", "--version", "S1", "-o", archive);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toContain("exported S1 (3 files, 1 scripts)");

    // The archive itself: modes in the tar headers, scripts, a manifest with owners.
    const unpacked = join(work.path, "s1-unpacked");
    await mkdir(unpacked);
    await extract({ file: archive, cwd: unpacked, preserveOwner: false });
    expect((await stat(join(unpacked, "files/etc/app/blob.bin"))).mode & 0o777).toBe(0o600);
    expect((await stat(join(unpacked, "files/opt/run.sh"))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(unpacked, "files/etc/app/blob.bin"))).toEqual(binary);
    expect(await readFile(join(unpacked, "scripts/pre_hook.sh"), "utf8")).toBe("#!/bin/bash\necho checking\n");
    const manifest = JSON.parse(await readFile(join(unpacked, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ format: "edgeconf-version/2", app: "source", version: { name: "S1" }, hooks: { pre: { scriptName: "cli_pre_check", type: "shell" }, post: null } });
    expect(manifest.files.find((f: any) => f.name === "app.conf")).toMatchObject({ user: "app", group: "staff", privilege: "640" });

    await admin.service(BIZ, "copy");
    await admin.file(BIZ, "copy", "/etc/stale.conf", "stale\n");
    const dry = await run("import", archive, "--app", "copy", "--dry-run", "--prune");
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("dry run: 3 added, 0 changed, 1 removed");
    expect(dry.stdout).toContain("would bind script cli_pre_check version");
    expect((await draft("copy")).size).toBe(1);

    const imported = await run("import", archive, "--app", "copy", "--prune");
    expect(imported.code, imported.stderr).toBe(0);
    expect((await run("release", "--app", "copy", "--name", "C1")).code).toBe(0);
    const archive2 = join(work.path, "c1.tar.gz");
    expect((await run("export", "--app", "copy", "--version", "C1", "-o", archive2)).code).toBe(0);
    const unpacked2 = join(work.path, "c1-unpacked");
    await mkdir(unpacked2);
    await extract({ file: archive2, cwd: unpacked2, preserveOwner: false });
    const manifest2 = JSON.parse(await readFile(join(unpacked2, "manifest.json"), "utf8"));
    const strip = (files: any[]) => files.map(({ path, name, sha256, size, user, group, privilege }) => ({ path, name, sha256, size, user, group, privilege })).sort((a, b) => a.name.localeCompare(b.name));
    expect(strip(manifest2.files)).toEqual(strip(manifest.files));
    expect(manifest2.hooks.pre).toMatchObject({ scriptName: "cli_pre_check", sha256: manifest.hooks.pre.sha256 });
    for (const rel of ["etc/app/app.conf", "etc/app/blob.bin", "opt/run.sh"]) {
      expect(await readFile(join(unpacked2, "files", rel))).toEqual(await readFile(join(unpacked, "files", rel)));
      expect((await stat(join(unpacked2, "files", rel))).mode & 0o7777).toBe((await stat(join(unpacked, "files", rel))).mode & 0o7777);
    }
  });

  it("security: an archive with a symlink, a '..' path or an entry the manifest does not name is refused before the draft changes", async () => {
    await admin.service(BIZ, "target");
    const manifest = (files: { entry: string; data: string }[]) =>
      JSON.stringify({
        format: "edgeconf-version/1",
        exportedAt: new Date().toISOString(),
        biz: BIZ,
        app: "x",
        version: { id: 1, name: "X", memo: "", createdBy: "t", createdAt: new Date().toISOString() },
        files: files.map((f) => ({ path: "/etc", name: f.entry.split("/").pop(), entry: f.entry, sha256: sha256(f.data), size: f.data.length, fileType: "text", user: "root", group: "root", privilege: "644", memo: "" })),
        hooks: { pre: null, post: null },
      });
    const make = (name: string, entries: { path: string; type?: string; data?: string; linkpath?: string }[]) => packTar(join(work.path, name), entries);
    const good = { path: "files/etc/a.conf", data: "a\n" };
    const cases = [
      { name: "link.tgz", entries: [{ path: "manifest.json", data: manifest([{ entry: "files/etc/a.conf", data: "a\n" }]) }, good, { path: "files/etc/evil", type: "SymbolicLink", linkpath: "/etc/shadow" }], says: "SymbolicLink" },
      { name: "dotdot.tgz", entries: [{ path: "manifest.json", data: manifest([{ entry: "files/../../etc/a.conf", data: "a\n" }]) }, { path: "files/../../etc/a.conf", data: "a\n" }], says: "escapes the archive" },
      { name: "extra.tgz", entries: [{ path: "manifest.json", data: manifest([{ entry: "files/etc/a.conf", data: "a\n" }]) }, good, { path: "files/etc/hidden.conf", data: "h\n" }], says: "not in manifest.json" },
      { name: "tampered.tgz", entries: [{ path: "manifest.json", data: manifest([{ entry: "files/etc/a.conf", data: "a\n" }]) }, { path: "files/etc/a.conf", data: "b\n" }], says: "does not match its sha256" },
      { name: "device.tgz", entries: [{ path: "manifest.json", data: manifest([]) }, { path: "files/dev/sda", type: "BlockDevice" }], says: "BlockDevice" },
    ];
    for (const c of cases) {
      const r = await run("import", await make(c.name, c.entries), "--app", "target");
      expect(r.code, `${c.name}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr, c.name).toContain(c.says);
    }
    expect((await draft("target")).size).toBe(0);

    // setuid/setgid/sticky in an archive: dropped with a warning, like push.
    const suid = manifest([{ entry: "files/etc/a.conf", data: "a\n" }]).replace('"privilege":"644"', '"privilege":"4755"');
    const r = await run("import", await make("suid.tgz", [{ path: "manifest.json", data: suid }, good]), "--app", "target");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toContain("/etc/a.conf: setuid/setgid/sticky bits dropped (mode 4755)");
    expect([...(await draft("target")).values()].map((f) => f.privilege)).toEqual(["755"]);
  });
});

describe("edgeconf errors", () => {
  it("error: usage mistakes exit 2 with the reason and the command's help hint", async () => {
    const cases: [string[], string][] = [
      [["push"], "missing DIR"],
      [["push", work.path], "missing --app"],
      [["push", join(work.path, "nope"), "--app", "web"], "is not a folder"],
      [["push", join(work.path, "push-web"), "--app", "web", "--user", "no such user"], 'user "no such user" is not a user/group name'],
      [["release", "--app", "web", "--frobnicate"], "Unknown option '--frobnicate'"],
      [["release", "--app", "web", "--wait", "--timeout", "soon"], "--timeout"],
      [["release", "--app", "web", "--groups", "no-such-group"], "no group 'no-such-group'"],
      [["release", "--app", "web", "--waves", "5,3,100"], "--waves: 5,3,100 is not increasing"],
      [["release", "--app", "web", "--waves", "5,50"], "--waves: the last wave must be 100"],
      [["release", "--app", "web", "--waves", "0,100"], "--waves: \"0\" is not a whole percentage"],
      [["release", "--app", "web", "--waves", "5,100", "--bake", "a while"], "--bake: \"a while\" is not a duration"],
      [["release", "--app", "web", "--waves", "5,100", "--bake", "1500ms"], "--bake: \"1500ms\" is not a whole number of seconds"],
      [["release", "--app", "web", "--waves", "5,100", "--max-failures", "150%"], "--max-failures: \"150%\" is not a whole percentage"],
      [["release", "--app", "web", "--waves", "5,100", "--report-timeout", "0s"], "--report-timeout: must be at least 1 s"],
      [["release", "--app", "web", "--bake", "60s"], "--bake: only with --waves"],
      [["rollout", "--app", "web"], "missing the action"],
      [["rollout", "restart", "--app", "web"], "unknown action \"restart\""],
      [["rollout", "pause", "--app", "web", "--rollback"], "--rollback: only with 'rollout abort'"],
      [["rollout", "status", "--app", "web", "--id", "x"], "--id: \"x\" is not a rollout id"],
      [["rollout", "status", "--app", "web"], "service 'web' has no rollout yet"],
      [["rollback", "--app", "web", "--to", "V99"], "no version named 'V99'"],
      [["frob"], "unknown command"],
    ];
    for (const [args, says] of cases) {
      const r = await run(...args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(says);
    }
    const noUrl = await runCli(cli, ["status", "--app", "web"], { EDGECONF_TOKEN: "t", EDGECONF_BIZ: "1" });
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain("missing --url (or EDGECONF_URL)");
  });

  it("happy: help for each command and version exit 0", async () => {
    for (const cmd of ["push", "release", "rollout", "status", "rollback", "export", "import"]) {
      const r = await runCli(cli, [cmd, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: edgeconf ${cmd}`);
      expect(r.stdout).toContain("Exit codes:");
      expect(r.stdout).toContain("Examples:");
    }
    expect((await runCli(cli, ["-h"])).stdout).toContain("Commands:");
    expect((await runCli(cli, ["version"])).stdout).toMatch(/^edgeconf \d+\.\d+\.\d+\n$/);
  });

  it("error: an unreachable server, a bad token and an unknown service exit 3 with the server's message", async () => {
    const port = await freePort();
    const down = await runCli(cli, ["status", "--app", "web", "--url", `http://127.0.0.1:${port}`], { EDGECONF_TOKEN: "t", EDGECONF_BIZ: String(BIZ) });
    expect(down.code).toBe(3);
    expect(down.stderr).toContain("cannot reach the edgeconf server");
    const badToken = await runCli(cli, ["status", "--app", "web", "--token", "wrong"], { EDGECONF_URL: server.url, EDGECONF_BIZ: String(BIZ) });
    expect(badToken.code).toBe(3);
    expect(badToken.stderr).toContain("invalid or revoked token");
    const unknown = await run("release", "--app", "no-such-service");
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/404.*no-such-service/);
  });
});
