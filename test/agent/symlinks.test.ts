/**
 * Design invariant 2 through the public interface (agent process + real server): a symlink
 * planted anywhere in the service folder makes the apply FAILED before anything is touched,
 * naming the path, and nothing outside the service folder changes.
 */
import { mkdir, readFile, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin, buildAgent, readLines, runAgent, startServer, tempDir, type ServerHandle } from "./harness";

const BIZ = 12;
let work: Awaited<ReturnType<typeof tempDir>>;
let server: ServerHandle;
let admin: Admin;
let agent: string;
let token: string;
let seq = 0;

beforeAll(async () => {
  work = await tempDir("edgeconf-symlinks-");
  [agent, server] = await Promise.all([buildAgent(work.path), startServer({ dataDir: join(work.path, "server") })]);
  admin = new Admin(server.url);
  await admin.biz(BIZ);
  token = await admin.agentToken(BIZ, ["*"]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await work?.remove();
});

/** Every file below `dir` with its content (what must not change). */
async function tree(dir: string, prefix = ""): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true }).catch(() => [])) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, await tree(dir, rel));
    else out[rel] = await readFile(join(dir, rel), "utf8");
  }
  return out;
}

/**
 * V1 applied with pull, then `plant` runs (given the service folder and an outside folder that
 * looks like the targets), then V2 is published and pulled.
 */
async function scenario(plant: (app: string, outside: string) => Promise<string>, pre?: string) {
  const name = `sym_${++seq}`;
  await admin.service(BIZ, name);
  await admin.file(BIZ, name, "/etc/nginx/nginx.conf", "v1\n");
  await admin.file(BIZ, name, "/etc/nginx/old.conf", "old\n");
  await admin.release(BIZ, name, "V1");
  const dir = join(work.path, name);
  const env = { biz: String(BIZ), app: name, feed_addrs: `127.0.0.1:${server.port}`, token, temp_dir: join(dir, "data"), uid: name, port: "0" };
  const first = await runAgent(agent, ["pull"], env);
  expect(first.code, first.output).toBe(0);
  const outside = join(dir, "outside");
  await mkdir(join(outside, "etc/nginx"), { recursive: true });
  await writeFile(join(outside, "etc/nginx/nginx.conf"), "outside\n");
  await writeFile(join(outside, "etc/nginx/old.conf"), "outside old\n");
  await writeFile(join(outside, "metadata.json"), "");
  const before = await tree(outside);
  const app = join(dir, "data", String(BIZ), name);
  const planted = await plant(app, outside);
  if (pre) await admin.hooks(BIZ, name, await admin.script(BIZ, `${name}_pre`, "shell", pre), null);
  await admin.file(BIZ, name, "/etc/nginx/nginx.conf", "v2\n");
  await admin.removeFile(BIZ, name, "/etc/nginx/old.conf");
  await admin.release(BIZ, name, "V2");
  const second = await runAgent(agent, ["pull"], env);
  return { second, before, after: await tree(outside), planted, app };
}

describe("symlinks in the service folder", () => {
  const cases: [string, (app: string, outside: string) => Promise<string>][] = [
    ["a folder below files/", async (app, outside) => {
      await rm(join(app, "files/etc/nginx"), { recursive: true });
      await symlink(join(outside, "etc/nginx"), join(app, "files/etc/nginx"));
      return join(app, "files/etc/nginx");
    }],
    ["files/ itself", async (app, outside) => {
      await rm(join(app, "files"), { recursive: true });
      await symlink(outside, join(app, "files"));
      return join(app, "files");
    }],
    ["a target file", async (app, outside) => {
      await rm(join(app, "files/etc/nginx/nginx.conf"));
      await symlink(join(outside, "etc/nginx/nginx.conf"), join(app, "files/etc/nginx/nginx.conf"));
      return join(app, "files/etc/nginx/nginx.conf");
    }],
    ["the state folder .edgeconf/", async (app, outside) => {
      await rm(join(app, ".edgeconf"), { recursive: true });
      await symlink(outside, join(app, ".edgeconf"));
      return join(app, ".edgeconf");
    }],
    ["metadata.json", async (app, outside) => {
      await rm(join(app, "metadata.json"));
      await symlink(join(outside, "metadata.json"), join(app, "metadata.json"));
      return join(app, "metadata.json");
    }],
  ];
  for (const [where, plant] of cases) {
    it(`security: a symlink at ${where} — FAILED naming it, nothing outside touched`, async () => {
      const { second, before, after, planted, app } = await scenario(plant);
      expect(second.code, second.output).toBe(1);
      expect(second.output).toContain(`${planted} is a symbolic link`);
      expect(after).toEqual(before);
      const state = JSON.parse(await readFile(join(app, ".edgeconf/state.json"), "utf8").catch(() => "{}"));
      if (where !== "the state folder .edgeconf/") expect(state.releaseName).toBe("V1");
    }, 60_000);
  }

  it("security: the service folder itself a symlink — FAILED naming it, nothing outside touched", async () => {
    const { second, before, after, planted } = await scenario(async (app, outside) => {
      await rm(app, { recursive: true });
      await mkdir(join(outside, "etc"), { recursive: true });
      await symlink(outside, app);
      return app;
    });
    expect(second.code, second.output).not.toBe(0);
    expect(second.output).toContain(planted);
    expect(after).toEqual(before);
  }, 60_000);

  it("security: a link the pre-script plants in files/ — FAILED naming it, nothing outside touched", async () => {
    let outsideDir = "";
    const { second, before, after, app } = await scenario(async (_app, outside) => {
      outsideDir = outside;
      return "";
    }, `#!/bin/bash\nrm -rf "$bk_bscp_app_temp_dir/files/etc/nginx"\nln -s "${join(work.path, `sym_${seq + 1}`, "outside")}/etc/nginx" "$bk_bscp_app_temp_dir/files/etc/nginx"\n`);
    expect(outsideDir).not.toBe("");
    expect(second.code, second.output).toBe(1);
    expect(second.output).toContain(`${join(app, "files/etc/nginx")} is a symbolic link`);
    expect(after).toEqual(before);
    expect((await readLines(join(app, "metadata.json"))).at(-1)).toMatchObject({ status: "FAILED" });
  }, 60_000);
});
