/**
 * The agent's command line as a user meets it: the bundle (built as `npm run build:agent` does)
 * run as a process, under its own name and under another, with no server (what is checked here
 * fails or answers before any request).
 */
import { chmod, copyFile, mkdir, readdir, stat, symlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAgent, runAgent, tempDir } from "./harness";

let work: Awaited<ReturnType<typeof tempDir>>;
let agent: string;
let copy: string;
const env = { biz: "10", app: "service_demo", feed_addrs: "127.0.0.1:9", token: "ect_cli_test_token_value" };

beforeAll(async () => {
  work = await tempDir("edgeconf-agent-cli-");
  agent = await buildAgent(work.path);
  copy = join(work.path, "agent-copy.mjs");
  await copyFile(agent, copy);
}, 60_000);

afterAll(async () => {
  await work?.remove();
});

describe("agent command line", () => {
  it("happy: the bundle works under any file name or symlink: --help, -h, help, version", async () => {
    const link = join(work.path, "edgeconf-agent-link");
    await symlink(copy, link);
    for (const path of [agent, copy, link]) {
      for (const args of [["--help"], ["-h"], ["help"]]) {
        const run = await runAgent(path, args);
        expect(run.code, `${path} ${args}`).toBe(0);
        expect(run.output).toContain("usage: edgeconf-agent <command>");
        expect(run.output).toContain("exit codes:");
      }
    }
    for (const args of [["version"], ["--version"]]) {
      const run = await runAgent(copy, args);
      expect(run.code).toBe(0);
      expect(run.output).toMatch(/^edgeconf-agent v\d+\.\d+\.\d+\n$/);
    }
  });

  it("happy: per-command help with examples and exit codes; watch-only settings only on watch's page", async () => {
    const pull = await runAgent(copy, ["pull", "--help"]);
    const watch = await runAgent(copy, ["watch", "-h"]);
    const helpPull = await runAgent(copy, ["help", "pull"]);
    expect([pull.code, watch.code, helpPull.code]).toEqual([0, 0, 0]);
    expect(pull.output).toContain("usage: edgeconf-agent pull");
    expect(watch.output).toContain("usage: edgeconf-agent watch");
    expect(pull.output).not.toBe(watch.output);
    expect(helpPull.output).toBe(pull.output);
    for (const page of [pull.output, watch.output]) {
      expect(page).toContain("examples:");
      expect(page).toMatch(/ {2}5 {2}local error/);
    }
    expect(pull.output).not.toContain("--wait");
    expect(watch.output).toContain("--wait");
  });

  it("error: usage errors exit 2 naming the flag as typed, or the environment variable", async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["pull", "--wait=5"], env, /--wait applies to watch only/],
      [["pull", "--port", "9000"], env, /--port applies to watch only/],
      [["watch", "--wait=120"], env, /--wait: 120 is out of range \(1 to 60\)/],
      [["watch", "--wait=0"], env, /--wait: 0 is out of range/],
      // A typed mistake is named before settings left out (the README's example has no biz/app).
      [["watch", "--wait=120"], {}, /--wait: 120 is out of range \(1 to 60\)/],
      [["watch"], { ...env, wait: "90" }, /wait \(environment variable\): 90 is out of range/],
      [["watch", "--hook_timeout=abc"], env, /--hook_timeout: "abc" is not a valid number/],
      [["pull", "--biz=x"], env, /--biz: "x" is not a valid whole number/],
      [["pull"], { ...env, biz: "x" }, /biz \(environment variable\): "x"/],
      [["pull", "--nope=1"], env, /unknown flag --nope/],
      [["pull", "--token"], env, /flag --token needs a value/],
      [["deploy"], env, /unknown command "deploy"/],
      [[], env, /missing command/],
      [["pull"], { ...env, token: "" }, /missing token/],
      [["pull", "--log-level=loud"], env, /--log-level: "loud" is not DEBUG/],
      // Numbers in plain decimal only; addresses http(s) only; a uid the server would refuse.
      [["pull", "--biz=1e3"], env, /--biz: "1e3" is not a valid whole number/],
      [["pull", "--biz=010"], env, /--biz: "010" is not a valid whole number/],
      [["watch", "--wait=0x10"], env, /--wait: "0x10" is not a valid whole number/],
      [["pull", "--feed-addrs=ftp://127.0.0.1:1"], env, /--feed-addrs: "ftp:\/\/127.0.0.1:1" is not http:\/\/ or https:\/\//],
      [["pull", "--uid=host\u202eevil"], env, /--uid: must be 1-256 characters with no control, bidi or invisible characters/],
      [["pull"], { ...env, uid: "a".repeat(257) }, /uid \(environment variable\): must be 1-256 characters/],
    ];
    for (const [args, e, pattern] of cases) {
      const run = await runAgent(copy, args, e);
      expect(run.code, `${args.join(" ")}: ${run.output}`).toBe(2);
      expect(run.output).toMatch(pattern);
      expect(run.output).toMatch(/run 'edgeconf-agent( \w+)? --help' for usage/);
    }
  });

  it("happy: watch-only settings in the environment do not stop pull (the seed's shared env)", async () => {
    // Nothing listens on port 9: the run gets past the configuration to the feed (exit 3).
    const run = await runAgent(copy, ["pull", `--temp-dir=${join(work.path, "t1")}`], { ...env, wait: "30", port: "9616" });
    expect(run.code, run.output).toBe(3);
  }, 30_000);

  it("error: an unwritable temp_dir is one clear line and exit 5, before any request", async () => {
    const locked = join(work.path, "locked");
    await mkdir(locked);
    await chmod(locked, 0o500);
    const file = join(work.path, "plainfile");
    await copyFile(agent, file);
    const runs = [
      await runAgent(copy, ["pull", `--temp-dir=${join(file, "sub")}`], env),
      await runAgent(copy, ["pull"], { ...env, temp_dir: join(file, "sub") }),
    ];
    if (process.getuid?.() !== 0) runs.push(await runAgent(copy, ["pull", `--temp-dir=${locked}`], env));
    for (const run of runs) {
      expect(run.code, run.output).toBe(5);
      const errors = run.output.split("\n").filter((l) => l.includes("level=ERROR"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/cannot write (--temp-dir|temp_dir) /);
      expect(run.output).not.toContain("feed request failed");
    }
    await chmod(locked, 0o700);
  });

  it("security: a cache folder that is a symlink (planted in a shared temp_dir) is refused at start: exit 5, the target untouched", async () => {
    const temp = join(work.path, "t-cachelink");
    const victim = join(work.path, "victim");
    await mkdir(temp, { recursive: true });
    await mkdir(victim, { recursive: true });
    await chmod(victim, 0o755);
    await symlink(victim, join(temp, "cache"));
    const run = await runAgent(copy, ["pull", `--temp-dir=${temp}`], env);
    expect(run.code, run.output).toBe(5);
    expect(run.output).toMatch(/cannot write file_cache_dir .*cache: .*symbolic link/);
    expect((await stat(victim)).mode & 0o777).toBe(0o755);
    expect(await readdir(victim)).toEqual([]);
  });
});
