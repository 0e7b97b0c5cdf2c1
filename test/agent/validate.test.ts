/**
 * The validate script on a real agent against a real server: it sees the whole new version staged
 * like files/, and a non-zero exit refuses the release with nothing swapped and no post-script.
 */
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentSuite, readLines, runAgent } from "./harness";

const BIZ = 14;
const suite = new AgentSuite(BIZ, "validate");

beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

/** An `nginx -t`-style check: parses the staged app.conf and refuses a port out of range. */
const CHECK = `import os, sys
staged = os.environ["edgeconf_staged_dir"]
assert staged == os.environ["bk_bscp_staged_dir"]
seen = []
for root, dirs, files in os.walk(staged):
    for f in files:
        seen.append(os.path.relpath(os.path.join(root, f), staged))
with open(os.path.join(os.environ["bk_bscp_app_temp_dir"], "validate_runs"), "a") as out:
    out.write(os.environ["bk_bscp_current_version_name"] + " " + staged + " " + ",".join(sorted(seen)) + "\\n")
conf = os.path.join(staged, "etc/app/app.conf")
for n, line in enumerate(open(conf), 1):
    key, _, value = line.strip().rstrip(";").partition(" ")
    if key == "port" and not (value.isdigit() and 0 < int(value) < 65536):
        print("app.conf:%d: invalid port %s" % (n, value))
        sys.exit(1)
print("configuration ok")
`;
const POST = `#!/bin/bash\necho "$bk_bscp_current_version_name" >> "$bk_bscp_app_temp_dir/post_runs"\n`;

/** Every file below `dir` with its bytes and mode, to compare a folder before and after. */
async function snapshot(dir: string, rel = ""): Promise<Record<string, { data: string; mode: number }>> {
  const out: Record<string, { data: string; mode: number }> = {};
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, await snapshot(dir, r));
    else out[r] = { data: (await readFile(join(dir, r))).toString("base64"), mode: (await stat(join(dir, r))).mode & 0o7777 };
  }
  return out;
}

describe("agent: validate script", () => {
  it("refuses a release whose staged config fails the check: old files byte-identical, post-script not run, FAILED naming the script and its output", async () => {
    const check = await suite.script("python", CHECK);
    const post = await suite.script("shell", POST);
    const app = "svc_validate";
    await suite.service(app, { "/etc/app/app.conf": "worker 1;\nport 8080;\n", "/etc/app/mime.types": "types {}\n" }, { post });
    await suite.admin.call("PUT", `/api/v1/bizs/${BIZ}/apps/${app}/hooks`, { validate: { scriptId: check } });
    const v1 = await suite.admin.release(BIZ, app, "V1");
    const { env, appDir } = await suite.agentEnv([app]);
    const dir = appDir(app);

    const first = await runAgent(suite.agent, ["pull"], env);
    expect(first.code, first.output).toBe(0);
    expect(first.output).toMatch(/msg="exec hook success" .*script=validate_hook/);
    const staged = join(dir, ".edgeconf/validate");
    expect(await readFile(join(dir, "validate_runs"), "utf8")).toBe(`V1 ${staged} etc/app/app.conf,etc/app/mime.types\n`);
    expect(await readFile(join(dir, "post_runs"), "utf8")).toBe("V1\n");
    expect(await readFile(join(dir, "hooks/validate_hook.py"), "utf8")).toBe(CHECK);
    const before = await snapshot(join(dir, "files"));

    // V2: one file changed to a bad port, one file added; mime.types unchanged still appears staged.
    await suite.admin.file(BIZ, app, "/etc/app/app.conf", "worker 2;\nport 70000;\n");
    await suite.admin.file(BIZ, app, "/etc/app/extra.conf", "extra\n");
    const v2 = await suite.admin.release(BIZ, app, "V2");
    const refused = await runAgent(suite.agent, ["pull"], env);
    expect(refused.code, refused.output).toBe(1);
    expect(await snapshot(join(dir, "files"))).toEqual(before);
    expect(await readFile(join(dir, "post_runs"), "utf8")).toBe("V1\n");
    expect((await readFile(join(dir, "validate_runs"), "utf8")).split("\n")[1]).toBe(`V2 ${staged} etc/app/app.conf,etc/app/extra.conf,etc/app/mime.types`);
    await expect(stat(staged)).rejects.toThrow(); // the staged folder is removed
    const last = (await readLines(join(dir, "metadata.json"))).at(-1);
    expect(last).toMatchObject({ releaseID: v2, status: "FAILED" });
    expect(last.message).toMatch(/^validate-script s_\d+_\d+@v\d+ exited with code 1, nothing applied: app\.conf:2: invalid port 70000$/);
    const clients = await suite.admin.clients(BIZ, app);
    expect(JSON.stringify(clients)).toContain("invalid port 70000");

    // Fixed in V3: applied, post-script runs; V1 stays the last good state until then.
    await suite.admin.file(BIZ, app, "/etc/app/app.conf", "worker 2;\nport 8443;\n");
    const v3 = await suite.admin.release(BIZ, app, "V3");
    const fixed = await runAgent(suite.agent, ["pull"], env);
    expect(fixed.code, fixed.output).toBe(0);
    expect(await readFile(join(dir, "files/etc/app/app.conf"), "utf8")).toBe("worker 2;\nport 8443;\n");
    expect(await readFile(join(dir, "post_runs"), "utf8")).toBe("V1\nV3\n");
    expect((await readLines(join(dir, "metadata.json"))).map((l) => [l.releaseID, l.status])).toEqual([[v1, "SUCCESS"], [v2, "FAILED"], [v3, "SUCCESS"]]);
  });

  it("security: links a validate script leaves in its staged copy are removed unfollowed, and do not block the next release", async () => {
    const outside = join(suite.work.path, "outside.conf");
    await writeFile(outside, "outside\n");
    const planter = await suite.script("shell", `#!/bin/bash\nln -s "${outside}" "$edgeconf_staged_dir/planted"\nln -s / "$edgeconf_staged_dir/etc/root"\nexit 0\n`);
    const app = "svc_validate_links";
    await suite.service(app, { "/etc/app/app.conf": "port 80;\n" }, {});
    await suite.admin.call("PUT", `/api/v1/bizs/${BIZ}/apps/${app}/hooks`, { validate: { scriptId: planter } });
    await suite.admin.release(BIZ, app, "V1");
    const { env, appDir } = await suite.agentEnv([app]);
    const first = await runAgent(suite.agent, ["pull"], env);
    expect(first.code, first.output).toBe(0);
    await suite.admin.file(BIZ, app, "/etc/app/app.conf", "port 81;\n");
    await suite.admin.release(BIZ, app, "V2");
    const second = await runAgent(suite.agent, ["pull"], env);
    expect(second.code, second.output).toBe(0);
    expect(await readFile(join(appDir(app), "files/etc/app/app.conf"), "utf8")).toBe("port 81;\n");
    expect(await readFile(outside, "utf8")).toBe("outside\n");
    await expect(stat(join(appDir(app), ".edgeconf/validate"))).rejects.toThrow();
  });
});
