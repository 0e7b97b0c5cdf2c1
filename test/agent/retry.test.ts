/**
 * The agent's processes, retries and long-polls, end to end: the built agent as a real process
 * against a real server process on loopback. Scripts that must not run concurrently record
 * "start"/"end" lines; proxies in the test cut held polls the way a load balancer does.
 * Assertions are about outcomes (exit codes, files, metadata.json, log lines), never durations.
 */
import { readFile, mkdir, readdir, rm, symlink, writeFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentSuite, readLines, runAgent, startAgent, startProxy, until, type Admin, type ServerHandle } from "./harness";

const BIZ = 12;
const suite = new AgentSuite(BIZ, "retry");
let server: ServerHandle;
let admin: Admin;
let agent: string;
let token: string;
const agentEnv = (apps: string[], extra: Record<string, string> = {}, feed?: string) => suite.agentEnv(apps, extra, feed);
const script = (content: string) => suite.script("shell", content);
const service = (...args: Parameters<AgentSuite["service"]>) => suite.service(...args);
const publish = (app: string, versionId: number) => admin.call("POST", `/api/v1/bizs/${BIZ}/apps/${app}/publishes`, { versionId });
const exists = (path: string) => stat(path).then(() => true, () => false);

/** No such process, or a zombie (killed, not yet reaped by whoever adopted it). */
async function gone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  return stat === null || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

/** start/end lines of a script that must never overlap another copy of itself. */
function neverOverlaps(lines: string[]): boolean {
  let running = 0;
  for (const line of lines) {
    running += line.startsWith("start") ? 1 : -1;
    if (running < 0 || running > 1) return false;
  }
  return running === 0;
}

beforeAll(async () => {
  ({ server, admin, agent, token } = await suite.start());
}, 120_000);

afterAll(() => suite.stop());

describe("agent hooks end to end", () => {
  it("security: a post_hook.sh written by another process while the pre-script runs is never executed", async () => {
    // The pre-script stands for the other process: it replaces hooks/post_hook.sh on disk.
    const pre = await script('#!/bin/bash\nprintf \'#!/bin/bash\\ntouch "$bk_bscp_app_temp_dir/../../pwned"\\n\' > "$bk_bscp_app_temp_dir/hooks/post_hook.sh"\n');
    const post = await script('#!/bin/bash\necho verified > "$bk_bscp_app_temp_dir/post_ran"\n');
    await service("svc_planted", { "/etc/a.conf": "a" }, { pre, post });
    await admin.release(BIZ, "svc_planted", "V1");
    const { dir, env, appDir } = await agentEnv(["svc_planted"]);
    const run = await runAgent(agent, ["pull"], env);
    expect(run.code, run.output).toBe(0);
    expect(await readFile(join(appDir("svc_planted"), "post_ran"), "utf8")).toBe("verified\n");
    expect(await exists(join(dir, "pwned"))).toBe(false);
  });

  it("security: a symlinked hooks/ is FAILED naming the path; nothing is written outside the app folder", async () => {
    const post = await script("#!/bin/bash\ntrue\n");
    await service("svc_hooklink", { "/etc/a.conf": "a" }, { post });
    const r1 = await admin.release(BIZ, "svc_hooklink", "V1");
    const { env, appDir } = await agentEnv(["svc_hooklink"]);
    const outside = join(suite.work.path, "sentinel-hooklink");
    await mkdir(outside);
    await mkdir(appDir("svc_hooklink"), { recursive: true });
    await symlink(outside, join(appDir("svc_hooklink"), "hooks"));
    const run = await runAgent(agent, ["pull"], env);
    expect(run.code, run.output).toBe(1);
    const [event] = await readLines(join(appDir("svc_hooklink"), "metadata.json"));
    expect(event).toMatchObject({ releaseID: r1, status: "FAILED" });
    expect(event.message).toContain(`${join(appDir("svc_hooklink"), "hooks")} is a symbolic link`);
    expect(await readdir(outside)).toEqual([]);
    expect(await exists(join(appDir("svc_hooklink"), "files/etc/a.conf"))).toBe(false);
  });

  it("security: the agent token is not in the scripts' environment", async () => {
    const post = await script('#!/bin/bash\nenv > "$bk_bscp_app_temp_dir/post_env"\n');
    await service("svc_env", { "/etc/a.conf": "a" }, { post });
    await admin.release(BIZ, "svc_env", "V1");
    const { env, appDir } = await agentEnv(["svc_env"]);
    // The token as the seed's manifests pass it (`token`), and copied under another name.
    const run = await runAgent(agent, ["pull"], { ...env, EDGECONF_TOKEN: token });
    expect(run.code, run.output).toBe(0);
    const seen = await readFile(join(appDir("svc_env"), "post_env"), "utf8");
    expect(seen).toContain("bk_bscp_app=svc_env");
    expect(seen).not.toContain(token);
  });

  it("error: a post-script that backgrounds a chatty service: the apply ends, the service keeps running after the agent exits", async () => {
    const post = await script('#!/bin/bash\n(while true; do echo chatter; sleep 0.05; done) &\necho $! > "$bk_bscp_app_temp_dir/svc.pid"\necho started\n');
    await service("svc_chatty", { "/etc/a.conf": "a" }, { post });
    await admin.release(BIZ, "svc_chatty", "V1");
    const { env, appDir } = await agentEnv(["svc_chatty"]);
    const run = await runAgent(agent, ["pull"], env);
    expect(run.code, run.output).toBe(0);
    const pid = Number(await readFile(join(appDir("svc_chatty"), "svc.pid"), "utf8"));
    const out = join(appDir("svc_chatty"), ".edgeconf/run/post_hook.out");
    const size = (await stat(out)).size;
    await until(async () => (await stat(out)).size > size + 64, "the service to go on writing after the agent exited");
    expect(() => process.kill(pid, 0)).not.toThrow();
    process.kill(pid, "SIGKILL");
  });

  it("error: kill -9 during the post-script, restart: the orphan is waited for, never two copies at once", async () => {
    const post = await script(
      '#!/bin/bash\necho "start $$" >> "$bk_bscp_app_temp_dir/runs"\nwhile [ ! -f "$bk_bscp_app_temp_dir/go" ]; do sleep 0.05; done\necho "end $$" >> "$bk_bscp_app_temp_dir/runs"\n',
    );
    await service("svc_orphan", { "/etc/a.conf": "a" }, { post });
    await admin.release(BIZ, "svc_orphan", "V1");
    const { env, appDir } = await agentEnv(["svc_orphan"]);
    const dir = appDir("svc_orphan");
    const runs = async () => (await readFile(join(dir, "runs"), "utf8").catch(() => "")).trim().split("\n").filter(Boolean);
    const first = startAgent(agent, ["pull"], env);
    await until(async () => (await runs()).length === 1, "the post-script to start");
    first.child.kill("SIGKILL");
    await first.exited;
    const second = startAgent(agent, ["pull"], env);
    await until(() => second.output().includes("still running; waiting for it"), "the restarted agent to find the orphan");
    expect((await runs()).length).toBe(1);
    await writeFile(join(dir, "go"), "");
    const done = await second.exited;
    expect(done.code, done.output).toBe(0);
    expect(done.output).toContain("the script left by a stopped agent finished");
    const lines = await runs();
    expect(lines).toHaveLength(4);
    expect(neverOverlaps(lines)).toBe(true);
  });

  it("error: an orphan that outlives its timeout has its process group killed, with a log line saying so", async () => {
    const post = await script('#!/bin/bash\necho "start $$" >> "$bk_bscp_app_temp_dir/runs"\n[ -f "$bk_bscp_app_temp_dir/go" ] || sleep 300\necho "end $$" >> "$bk_bscp_app_temp_dir/runs"\n');
    await service("svc_orphan_kill", { "/etc/a.conf": "a" }, { post });
    await admin.release(BIZ, "svc_orphan_kill", "V1");
    const { env, appDir } = await agentEnv(["svc_orphan_kill"], { hook_timeout: "3" });
    const dir = appDir("svc_orphan_kill");
    const first = startAgent(agent, ["pull"], env);
    await until(async () => (await readFile(join(dir, "runs"), "utf8").catch(() => "")).includes("start"), "the post-script to start");
    first.child.kill("SIGKILL");
    await first.exited;
    const orphan = JSON.parse(await readFile(join(dir, ".edgeconf/lock.json"), "utf8")).hook.pid as number;
    // The orphan is past this point (in its sleep); the next copy will not wait.
    await writeFile(join(dir, "go"), "");
    const second = await runAgent(agent, ["pull"], env);
    expect(second.code, second.output).toBe(0);
    expect(second.output).toContain("killed its process group");
    await until(() => gone(orphan), "the orphan to be gone");
  });

  it("error: two agents on one host never run the same service's scripts at once", async () => {
    const post = await script('#!/bin/bash\necho "start $$" >> "$bk_bscp_app_temp_dir/runs"\nsleep 0.5\necho "end $$" >> "$bk_bscp_app_temp_dir/runs"\n');
    await service("svc_two", { "/etc/a.conf": "a" }, { pre: post, post });
    await admin.release(BIZ, "svc_two", "V1");
    const { env, appDir } = await agentEnv(["svc_two"]);
    const [a, b] = await Promise.all([runAgent(agent, ["pull"], env), runAgent(agent, ["pull"], { ...env, uid: "other" })]);
    expect([a.code, b.code], a.output + b.output).toEqual([0, 0]);
    const lines = (await readFile(join(appDir("svc_two"), "runs"), "utf8")).trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(neverOverlaps(lines)).toBe(true);
  });
});

describe("agent retries end to end", () => {
  it("error: a release refused by its post-script is not applied: pull fails again until the post-script passes", async () => {
    const post = await script('#!/bin/bash\necho run >> "$bk_bscp_app_temp_dir/post_runs"\n[ -f "$bk_bscp_app_temp_dir/allow" ] || { echo "refused: not allowed" >&2; exit 4; }\n');
    await service("svc_refused", { "/etc/a.conf": "a" }, { post });
    const r1 = await admin.release(BIZ, "svc_refused", "V1");
    const { env, appDir } = await agentEnv(["svc_refused"]);
    const dir = appDir("svc_refused");
    for (let i = 0; i < 2; i++) {
      const run = await runAgent(agent, ["pull"], env);
      expect(run.code, run.output).toBe(1);
      expect(run.output).not.toContain("release already applied");
    }
    await writeFile(join(dir, "allow"), "");
    const ok = await runAgent(agent, ["pull"], env);
    expect(ok.code, ok.output).toBe(0);
    expect((await readFile(join(dir, "post_runs"), "utf8")).trim().split("\n")).toHaveLength(3);
    const again = await runAgent(agent, ["pull"], env);
    expect(again.code).toBe(0);
    expect(again.output).toContain("release already applied");
    expect((await readLines(join(dir, "metadata.json"))).map((e) => [e.releaseID, e.status])).toEqual([
      [r1, "FAILED"],
      [r1, "FAILED"],
      [r1, "SUCCESS"],
    ]);
  });

  it("happy: publishing the failed version again reaches a waiting watch at once (a retry)", async () => {
    const pre = await script('#!/bin/bash\n[ -f "$bk_bscp_app_temp_dir/../maintenance" ] && { echo "host in maintenance" >&2; exit 3; }\nexit 0\n');
    await service("svc_republish", { "/etc/a.conf": "1" }, { pre });
    await admin.release(BIZ, "svc_republish", "V1");
    // Retries by backoff are far off: only the new publish can bring V2 again.
    const { dir, env, appDir } = await agentEnv(["svc_republish"], { retry_interval: "600" });
    const events = () => readLines(join(appDir("svc_republish"), "metadata.json"));
    const watch = startAgent(agent, ["watch"], env);
    try {
      await until(async () => (await events()).length === 1, "V1 applied");
      await writeFile(join(dir, String(BIZ), "maintenance"), "");
      await admin.file(BIZ, "svc_republish", "/etc/a.conf", "2");
      const v2 = await admin.release(BIZ, "svc_republish", "V2");
      await until(async () => (await events()).some((e) => e.releaseID === v2 && e.status === "FAILED"), "V2 refused");
      await until(() => watch.output().includes("release failed; it will be retried"), "the retry to be scheduled");
      await rm(join(dir, String(BIZ), "maintenance"));
      await publish("svc_republish", v2);
      await until(async () => (await events()).some((e) => e.releaseID === v2 && e.status === "SUCCESS"), "V2 applied after the new publish");
      expect(watch.output()).toContain("release published again: retrying it now");
      expect(await readFile(join(appDir("svc_republish"), "files/etc/a.conf"), "utf8")).toBe("2");
    } finally {
      const stopped = await watch.stop();
      expect(stopped.code, stopped.output).toBe(0);
    }
  });

  it("happy: watch retries a failed release by itself, with a growing backoff, until it applies", async () => {
    const pre = await script('#!/bin/bash\n[ -f "$bk_bscp_app_temp_dir/../maintenance" ] && exit 3\nexit 0\n');
    await service("svc_backoff", { "/etc/a.conf": "1" }, { pre });
    const { dir, env, appDir } = await agentEnv(["svc_backoff"], { retry_interval: "0.2" });
    await mkdir(join(dir, String(BIZ)), { recursive: true });
    await writeFile(join(dir, String(BIZ), "maintenance"), "");
    const v1 = await admin.release(BIZ, "svc_backoff", "V1");
    const events = () => readLines(join(appDir("svc_backoff"), "metadata.json"));
    const watch = startAgent(agent, ["watch"], env);
    try {
      const retries = () => [...watch.output().matchAll(/release failed; it will be retried.*retryInMs=(\d+)/g)].map((m) => Number(m[1]));
      await until(() => retries().length >= 3, "three failed attempts");
      expect((await events()).filter((e) => e.status === "FAILED").length).toBeGreaterThanOrEqual(3);
      const delays = retries();
      // Jittered in [d/2, d] with d doubling: the third ceiling is four times the first.
      expect(delays[2]).toBeGreaterThan(delays[0]);
      await rm(join(dir, String(BIZ), "maintenance"));
      await until(async () => (await events()).some((e) => e.releaseID === v1 && e.status === "SUCCESS"), "V1 applied by a retry");
    } finally {
      await watch.stop();
    }
  });
});

describe("agent long-polls behind a proxy", () => {
  it("happy: held polls cut with 504 shorten the hold (said once), are not server failures, and a publish still arrives", async () => {
    await service("svc_proxy", { "/etc/a.conf": "1" });
    await admin.release(BIZ, "svc_proxy", "V1");
    const proxy = await startProxy(server.url, { cutMs: () => 1500 });
    const { env, appDir } = await agentEnv(["svc_proxy"], { wait: "8" }, proxy.addr);
    const events = () => readLines(join(appDir("svc_proxy"), "metadata.json"));
    const watch = startAgent(agent, ["watch"], env);
    try {
      await until(async () => (await events()).length === 1, "V1 applied");
      await until(() => watch.output().includes("hold shortened"), "the hold to be shortened", 60_000);
      const cutsBefore = proxy.cuts();
      await admin.file(BIZ, "svc_proxy", "/etc/a.conf", "2");
      const v2 = await admin.release(BIZ, "svc_proxy", "V2");
      await until(async () => (await events()).some((e) => e.releaseID === v2 && e.status === "SUCCESS"), "V2 applied through the proxy");
      expect(watch.output().match(/hold shortened/g)).toHaveLength(1);
      expect(watch.output()).toMatch(/hold shortened.*fromSeconds=8 toSeconds=1/);
      expect(watch.output()).not.toContain("feed request failed");
      expect(cutsBefore).toBeGreaterThan(0);
    } finally {
      await watch.stop();
      await proxy.close();
    }
  });

  it("happy: once the proxy lets held polls through again, the hold grows back to the configured wait (said once)", async () => {
    await service("svc_regrow", { "/etc/a.conf": "1" });
    await admin.release(BIZ, "svc_regrow", "V1");
    let cutting = true;
    const proxy = await startProxy(server.url, { cutMs: () => (cutting ? 1200 : null) });
    const { env, appDir } = await agentEnv(["svc_regrow"], { wait: "4" }, proxy.addr);
    const held = () => proxy.polls.filter((u) => u.searchParams.get("wait") !== "0").map((u) => Number(u.searchParams.get("wait")));
    const watch = startAgent(agent, ["watch"], env);
    try {
      await until(async () => (await readLines(join(appDir("svc_regrow"), "metadata.json"))).length === 1, "V1 applied");
      // 4 s is cut at 1.2 s, 2 s is cut, 1 s gets through: shortened to 1.
      await until(() => watch.output().includes("hold shortened"), "the hold to be shortened", 60_000);
      expect(watch.output()).toMatch(/hold shortened.*fromSeconds=4 toSeconds=1/);
      // While the proxy still cuts, growing back is tried (2 s) and cut again: back to 1.
      const before = held().length;
      await until(() => held().slice(before).includes(2) && held().slice(before).at(-1) === 1 && proxy.cuts() >= 3, "a growth tried and cut", 60_000);
      expect(watch.output()).not.toContain("hold back to the configured wait");
      cutting = false;
      await until(() => watch.output().includes("hold back to the configured wait"), "the hold to grow back", 60_000);
      const grown = held().length;
      await until(() => held().length > grown, "the next held poll");
      expect(held().slice(grown)).toEqual(held().slice(grown).map(() => 4));
      expect(watch.output().match(/hold back to the configured wait/g)).toHaveLength(1);
      expect(watch.output()).not.toContain("feed request failed");
    } finally {
      await watch.stop();
      await proxy.close();
    }
  }, 90_000);
});
