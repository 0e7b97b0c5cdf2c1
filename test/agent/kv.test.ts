/**
 * A kv service end to end: a real server, the bundled agent as a process. `pull` writes kv.json
 * (0600, whole), `get kv` reads one value (exit 4 when absent), `watch` serves /kv/ on loopback
 * and follows a publish; a link at kv.json and scripts in a kv manifest are refused.
 */
import { lstat, readFile, readdir, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentSuite, freePort, readLines, runAgent, startAgent, startProxy, until } from "./harness";

const suite = new AgentSuite(31, "kv");
const app = "settings";
const SECRET = "pa55-w0rd-in-plain";
let v1: number;

const kvs = () => `/api/v1/bizs/${suite.biz}/apps/${app}/kvs`;

beforeAll(async () => {
  await suite.start();
  await suite.admin.call("POST", `/api/v1/bizs/${suite.biz}/apps`, { name: app, configType: "kv" });
  await suite.admin.call("POST", kvs(), { key: "db.port", type: "number", value: 5432 });
  await suite.admin.call("POST", kvs(), { key: "motd", type: "text", value: "hello\nworld\n" });
  await suite.admin.call("POST", kvs(), { key: "db.password", type: "secret", value: SECRET });
  v1 = await suite.admin.release(suite.biz, app, "V1");
}, 120_000);
afterAll(() => suite.stop());

describe("agent: kv services", () => {
  it("pull writes kv.json (0600, {key: {type, value}}, the secret in plaintext) and a SUCCESS event; get kv prints one value", async () => {
    const { env, appDir, dir } = await suite.agentEnv([app]);
    const run = await runAgent(suite.agent, ["pull"], env);
    expect(run.code, run.output).toBe(0);
    const file = join(appDir(app), "kv.json");
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({
      "db.password": { type: "secret", value: SECRET },
      "db.port": { type: "number", value: "5432" },
      motd: { type: "text", value: "hello\nworld\n" },
    });
    const events = await readLines(join(appDir(app), "metadata.json"));
    expect(events.at(-1)).toMatchObject({ releaseID: v1, status: "SUCCESS" });
    expect((await readLines(join(dir, "metadata.json"))).at(-1)).toMatchObject({ releaseID: v1, status: "SUCCESS", app });
    // No temp copy left, no files/ folder, and the agent's own state holds no value.
    expect((await readdir(appDir(app))).filter((n) => n.includes("edgeconf-tmp"))).toEqual([]);
    expect(await readFile(join(appDir(app), ".edgeconf", "state.json"), "utf8")).not.toContain(SECRET);

    const get = await runAgent(suite.agent, ["get", "kv", "--app", app, "db.port"], { biz: String(suite.biz), temp_dir: dir });
    expect(get).toEqual({ code: 0, output: "5432\n" });
    const json = await runAgent(suite.agent, ["get", "kv", `--app=${app}`, `--biz=${suite.biz}`, `--temp-dir=${dir}`, "--json", "motd"]);
    expect(JSON.parse(json.output)).toEqual({ type: "text", value: "hello\nworld\n" });
    const absent = await runAgent(suite.agent, ["get", "kv", "--app", app, "nope"], { biz: String(suite.biz), temp_dir: dir });
    expect(absent.code).toBe(4);
    expect(absent.output).toContain('key "nope" is absent');
    const usage = await runAgent(suite.agent, ["get", "kv", "--app", app], { biz: String(suite.biz), temp_dir: dir });
    expect(usage.code).toBe(2);

    // Pulled again with the release on disk: nothing to do; kv.json edited by hand: rewritten.
    await writeFile(file, "{}");
    const again = await runAgent(suite.agent, ["pull"], env);
    expect(again.code, again.output).toBe(0);
    expect(JSON.parse(await readFile(file, "utf8"))["db.port"].value).toBe("5432");
  }, 60_000);

  it("watch answers GET /kv/{app}/{key} on loopback (secrets refused) and follows a publish", async () => {
    const port = await freePort();
    const { env } = await suite.agentEnv([app], { port: String(port) });
    const agent = startAgent(suite.agent, ["watch"], env);
    try {
      const get = async (key: string) => {
        const res = await fetch(`http://127.0.0.1:${port}/kv/${app}/${key}`);
        return { status: res.status, type: res.headers.get("x-edgeconf-kv-type"), body: await res.text() };
      };
      await until(async () => (await get("db.port")).status === 200, "the first apply", 30_000);
      expect(await get("db.port")).toEqual({ status: 200, type: "number", body: "5432" });
      expect((await get("db.password")).status).toBe(403);
      expect((await get("absent")).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/kv/other/db.port`)).status).toBe(404);

      await suite.admin.call("PUT", `${kvs()}/db.port`, { value: 6432 });
      await suite.admin.release(suite.biz, app, "V2");
      await until(async () => (await get("db.port")).body === "6432", "V2 applied by watch", 30_000);
    } finally {
      const end = await agent.stop();
      expect(end.code, end.output).toBe(0);
    }
  }, 60_000);

  it("a link planted at kv.json is never followed: FAILED, the target untouched", async () => {
    const { env, appDir, dir } = await suite.agentEnv([app]);
    const outside = join(dir, "outside.txt");
    await writeFile(outside, "keep me");
    await runAgent(suite.agent, ["pull"], env); // creates the folder
    const file = join(appDir(app), "kv.json");
    await (await import("node:fs/promises")).rm(file);
    await symlink(outside, file);
    const run = await runAgent(suite.agent, ["pull"], { ...env, uid: `${env.uid}-b` });
    expect(run.code).toBe(1);
    expect(await readFile(outside, "utf8")).toBe("keep me");
    expect((await lstat(file)).isSymbolicLink()).toBe(true);
    expect((await readLines(join(appDir(app), "metadata.json"))).at(-1)).toMatchObject({ status: "FAILED", message: expect.stringContaining("symbolic link") });
  }, 60_000);

  it("scripts in a kv manifest are refused (FAILED, kv.json not written)", async () => {
    const proxy = await startProxy(suite.server.url, { release: (m) => ({ ...m, hooks: { pre: { type: "shell", content: "touch /tmp/should-not-run\n" }, post: null } }) });
    try {
      const { env, appDir } = await suite.agentEnv([app], {}, proxy.addr);
      const run = await runAgent(suite.agent, ["pull"], env);
      expect(run.code).toBe(1);
      expect((await readLines(join(appDir(app), "metadata.json"))).at(-1)).toMatchObject({ status: "FAILED", message: expect.stringContaining("scripts are refused for kv services") });
      await expect(stat(join(appDir(app), "kv.json"))).rejects.toThrow();
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
