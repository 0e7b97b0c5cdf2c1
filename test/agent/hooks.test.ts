/** Pre/post scripts and the service lock on temp folders (no server): what runs, with what, for how long. */
import { spawn as nodeSpawn } from "node:child_process";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hookEnv, runHook, scriptEnvironment, writeHooks, type RunHookOptions } from "../../agent/hooks";
import { createLogger } from "../../agent/log";
import { isRunning, procStart, ServiceLock } from "../../agent/servicelock";

let dir: string;
let lines: string[];
const log = () => createLogger({ write: (line) => lines.push(line) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "edgeconf-hooks-"));
  // The runner opens and locks {temp_dir}/{biz}/{app} before writing scripts into it.
  await mkdir(join(dir, "10/svc"), { recursive: true });
  lines = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const run = (content: string, extra: Partial<RunHookOptions> = {}) =>
  runHook({ content, type: "shell", displayPath: join(dir, "hooks/post_hook.sh"), runDir: join(dir, "run"), name: "post_hook", cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, timeoutMs: 10_000, ...extra });

describe("hooks", () => {
  const env = () => hookEnv({ tempDir: dir, biz: 10, app: "svc", appDir: join(dir, "10/svc"), versionName: "V4", releaseId: 376 });

  for (const type of ["shell", "python"] as const) {
    it(`security: a ${type} script's first line waits until its process group is recorded (a kill -9 between the two leaves no unknown script)`, async () => {
      const marker = join(dir, "started");
      const content = type === "shell" ? `#!/bin/bash\necho yes > "${marker}"\n` : `open(${JSON.stringify(marker)}, "w").write("yes")\n`;
      let markerWhenRecorded: boolean | undefined;
      const result = await run(content, {
        type,
        onSpawn: async () => {
          await sleep(300); // a slow disk: the script must not start meanwhile
          markerWhenRecorded = await stat(marker).then(() => true, () => false);
        },
      });
      expect(result.exitCode, result.output).toBe(0);
      expect(markerWhenRecorded).toBe(false);
      expect(await readFile(marker, "utf8")).toContain("yes");
    });
  }

  it("happy: the seed's tag example with bash, variables, $0 and hooks/env", async () => {
    const appDir = join(dir, "10/svc");
    const pre = "#!/bin/bash\nif [[ -f ${bk_bscp_app_temp_dir}/tag ]];then\n  rm -f ${bk_bscp_app_temp_dir}/tag\nfi\n";
    const post = '#!/bin/bash\necho "${bk_bscp_current_version_name}" >${bk_bscp_app_temp_dir}/tag\necho "$PWD $bk_bscp_biz $bk_bscp_app $bk_bscp_temp_dir $bk_bscp_release_id $edgeconf_app $0"\n';
    const paths = await writeHooks(appDir, { pre: { type: "shell", content: pre }, post: { type: "shell", content: post } }, env());
    expect(paths.pre).toBe(join(appDir, "hooks/pre_hook.sh"));
    expect((await stat(paths.pre!)).mode & 0o777).toBe(0o755);
    await writeFile(join(appDir, "tag"), "old");
    const common = { runDir: join(appDir, ".edgeconf/run"), cwd: appDir, env: { ...env(), PATH: process.env.PATH! } };
    await mkdir(join(appDir, ".edgeconf"));
    expect((await run(pre, { ...common, displayPath: paths.pre!, name: "pre_hook" })).exitCode).toBe(0);
    await expect(stat(join(appDir, "tag"))).rejects.toThrow();
    const result = await run(post, { ...common, displayPath: paths.post! });
    expect(result.exitCode).toBe(0);
    expect(result.output.trim()).toBe(`${appDir} 10 svc ${dir} 376 svc ${paths.post}`);
    expect(await readFile(join(appDir, "tag"), "utf8")).toBe("V4\n");
    const envFile = await readFile(join(appDir, "hooks/env"), "utf8");
    expect(envFile).toContain(`export bk_bscp_app_temp_dir='${appDir}'`);
    expect(envFile).toContain("export bk_bscp_current_version_name='V4'");
    // Only the output file stays in the private folder: the script copy was never reachable by name.
    expect((await readdir(join(appDir, ".edgeconf/run"))).sort()).toEqual(["post_hook.out", "pre_hook.out"]);
    expect((await stat(join(appDir, ".edgeconf/run"))).mode & 0o777).toBe(0o700);
  });

  it("happy: python3 scripts see __file__ and argv as the hooks/ path; a type change removes the stale file", async () => {
    const appDir = join(dir, "10/svc");
    await writeHooks(appDir, { pre: { type: "shell", content: "exit 0" }, post: null }, env());
    const content = "import os, sys\nprint(os.environ['bk_bscp_current_version_name'], os.getcwd(), __file__, sys.argv[0], __name__)\n";
    const paths = await writeHooks(appDir, { pre: { type: "python", content }, post: null }, env());
    expect(await readdir(join(appDir, "hooks"))).toEqual(["env", "pre_hook.py"]);
    const result = await run(content, { type: "python", displayPath: paths.pre!, cwd: appDir, env: { ...env(), PATH: process.env.PATH! } });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(result.output.trim()).toBe(`V4 ${appDir} ${paths.pre} ${paths.pre} __main__`);
    const failing = await run("import sys\nprint('refused', file=sys.stderr)\nsys.exit(3)\n", { type: "python" });
    expect(failing.exitCode).toBe(3);
    expect(failing.outputTail.trim()).toBe("refused");
  });

  it("security: what runs is the given content, whatever another process writes into hooks/ meanwhile", async () => {
    const appDir = join(dir, "10/svc");
    const post = "echo manifest-post\n";
    const paths = await writeHooks(appDir, { pre: null, post: { type: "shell", content: post } }, env());
    await writeFile(paths.post!, "echo planted > " + join(dir, "planted") + "\n");
    const result = await run(post, { displayPath: paths.post! });
    expect(result.output.trim()).toBe("manifest-post");
    await expect(stat(join(dir, "planted"))).rejects.toThrow();
  });

  it("security: a symlinked hooks/ or app folder is refused, naming the path, nothing written through it", async () => {
    const outside = join(dir, "outside");
    await mkdir(outside);
    const appDir = join(dir, "10/svc");
    await mkdir(appDir, { recursive: true });
    await symlink(outside, join(appDir, "hooks"));
    await expect(writeHooks(appDir, { pre: { type: "shell", content: "true" }, post: null }, env())).rejects.toThrow(`${join(appDir, "hooks")} is a symbolic link`);
    expect(await readdir(outside)).toEqual([]);
    const other = join(dir, "10/other");
    await symlink(outside, other);
    await expect(writeHooks(other, { pre: { type: "shell", content: "true" }, post: null }, env())).rejects.toThrow(`${other} is a symbolic link`);
    expect(await readdir(outside)).toEqual([]);
  });

  it("security: the agent token is not in the script's environment, under any name", async () => {
    const token = "ect_secret_token_value_0123456789";
    const env = scriptEnvironment({ PATH: process.env.PATH, token, EDGECONF_TOKEN: token, OTHER: `Bearer ${token}`, KEEP: "yes" }, [token], { bk_bscp_app: "svc" });
    const result = await run("env\n", { env });
    expect(result.output).not.toContain(token);
    expect(result.output).toContain("KEEP=yes");
    expect(result.output).toContain("bk_bscp_app=svc");
  });

  it("error: exit code and a 4 KiB output tail", async () => {
    const result = await run("for i in $(seq 1 2000); do echo line-$i; done\necho boom >&2\nexit 3\n");
    expect(result.exitCode).toBe(3);
    expect(Buffer.byteLength(result.outputTail)).toBeLessThanOrEqual(4096);
    expect(result.outputTail.trimEnd().endsWith("boom")).toBe(true);
    expect(result.output).toContain("line-1\n");
  });

  it("error: a script past its timeout is killed with its children", async () => {
    const pidFile = join(dir, "child.pid");
    const result = await run(`sleep 300 &\necho $! > ${pidFile}\nsleep 300\n`, { timeoutMs: 500 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).not.toBe(0);
    const childPid = Number(await readFile(pidFile, "utf8"));
    await waitFor(() => !alive(childPid), "the child to die");
  });

  it("error: a missing interpreter reports 127, never throws", async () => {
    const result = await run("true\n", { env: { PATH: join(dir, "nowhere") } });
    expect(result.exitCode).toBe(127);
  });

  it("error: a chatty service a script leaves in the background outlives the run and the agent's reading (no SIGPIPE)", async () => {
    const pidFile = join(dir, "svc.pid");
    // The service writes to the stdout it inherited from the script, forever.
    const script = `(while true; do echo chatter; sleep 0.05; done) &\necho $! > ${pidFile}\necho started\n`;
    const result = await run(script);
    expect(result.exitCode).toBe(0);
    expect(result.output).toContain("started");
    const pid = Number(await readFile(pidFile, "utf8"));
    const out = join(dir, "run/post_hook.out");
    const size = (await stat(out)).size;
    // Still alive and still writing after the run resolved.
    await waitFor(async () => (await stat(out)).size > size + 64, "more chatter");
    expect(alive(pid)).toBe(true);
    process.kill(pid, "SIGKILL");
  });
});

describe("service lock", () => {
  it("happy: a second holder waits until the first releases", async () => {
    const privateDir = join(dir, ".edgeconf");
    await mkdir(privateDir);
    const first = await ServiceLock.acquire({ privateDir, log: log() });
    let second: ServiceLock | undefined;
    const pending = ServiceLock.acquire({ privateDir, log: log() }).then((l) => (second = l));
    await waitFor(() => lines.some((l) => l.includes("another agent is applying this service")), "the second to wait");
    expect(second).toBeUndefined();
    await first.release();
    await pending;
    expect(second).toBeDefined();
    await second!.release();
    expect(await readdir(privateDir)).toEqual([]);
  });

  it("error: a lock left by a dead agent whose script still runs: waits for the script, then takes over", async () => {
    const privateDir = join(dir, ".edgeconf");
    await mkdir(privateDir);
    const script = nodeSpawn("sleep", ["0.5"], { detached: true, stdio: "ignore" });
    const dead = nodeSpawn("true");
    await new Promise((r) => dead.once("exit", r));
    const hook = { pid: script.pid!, start: procStart(script.pid!), which: "post", startedAt: Date.now(), timeoutMs: 60_000 };
    const ns = (await import("node:fs")).readlinkSync("/proc/self/ns/pid");
    await writeFile(join(privateDir, "lock.json"), JSON.stringify({ agent: { pid: dead.pid, start: "1", ns }, hook }));
    const lock = await ServiceLock.acquire({ privateDir, log: log() });
    expect(isRunning(hook)).toBe(false);
    expect(lines.some((l) => l.includes("still running; waiting for it"))).toBe(true);
    expect(lines.some((l) => l.includes("left by a stopped agent finished"))).toBe(true);
    await lock.release();
  });

  it("error: the orphan past its timeout has its process group killed, with a line saying so", async () => {
    const privateDir = join(dir, ".edgeconf");
    await mkdir(privateDir);
    const script = nodeSpawn("bash", ["-c", "sleep 300 & sleep 300"], { detached: true, stdio: "ignore" });
    const ns = (await import("node:fs")).readlinkSync("/proc/self/ns/pid");
    const hook = { pid: script.pid!, start: procStart(script.pid!), which: "post", startedAt: Date.now() - 10_000, timeoutMs: 200 };
    await writeFile(join(privateDir, "lock.json"), JSON.stringify({ agent: { pid: 999_999_9, start: "1", ns }, hook }));
    const lock = await ServiceLock.acquire({ privateDir, log: log() });
    await waitFor(() => !isRunning(hook), "the orphan to die");
    expect(lines.some((l) => l.includes("killed its process group"))).toBe(true);
    await lock.release();
  });
});
