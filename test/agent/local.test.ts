/** Agent pieces that touch the disk and run processes, on temp folders (no server). */
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobCache } from "../../agent/cache";
import { hookEnv, runHook, writeHooks } from "../../agent/hooks";
import { createLogger } from "../../agent/log";

const sha = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
let dir: string;
let lines: string[];
const log = () => createLogger({ write: (line) => lines.push(line) });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "edgeconf-agent-"));
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

describe("hooks", () => {
  const env = () => hookEnv({ tempDir: dir, biz: 10, app: "svc", appDir: join(dir, "10/svc"), versionName: "V4", releaseId: 376 });

  it("happy: the seed's tag example with bash, variables and hooks/env", async () => {
    const appDir = join(dir, "10/svc");
    const paths = await writeHooks(appDir, {
      pre: { type: "shell", content: "#!/bin/bash\nif [[ -f ${bk_bscp_app_temp_dir}/tag ]];then\n  rm -f ${bk_bscp_app_temp_dir}/tag\nfi\n" },
      post: { type: "shell", content: '#!/bin/bash\necho "${bk_bscp_current_version_name}" >${bk_bscp_app_temp_dir}/tag\necho "$PWD $bk_bscp_biz $bk_bscp_app $bk_bscp_temp_dir $bk_bscp_release_id $edgeconf_app"\n' },
    }, env());
    expect(paths.pre).toBe(join(appDir, "hooks/pre_hook.sh"));
    expect((await stat(paths.pre!)).mode & 0o777).toBe(0o755);
    await writeFile(join(appDir, "tag"), "old");
    const pre = await runHook({ path: paths.pre!, type: "shell", cwd: appDir, env: env(), timeoutMs: 10_000 });
    expect(pre.exitCode).toBe(0);
    await expect(stat(join(appDir, "tag"))).rejects.toThrow();
    const post = await runHook({ path: paths.post!, type: "shell", cwd: appDir, env: env(), timeoutMs: 10_000 });
    expect(post.exitCode).toBe(0);
    expect(post.output.trim()).toBe(`${appDir} 10 svc ${dir} 376 svc`);
    expect(await readFile(join(appDir, "tag"), "utf8")).toBe("V4\n");
    const envFile = await readFile(join(appDir, "hooks/env"), "utf8");
    expect(envFile).toContain(`export bk_bscp_app_temp_dir='${appDir}'`);
    expect(envFile).toContain("export bk_bscp_current_version_name='V4'");
  });

  it("happy: python3 scripts; a type change removes the stale file", async () => {
    const appDir = join(dir, "10/svc");
    await writeHooks(appDir, { pre: { type: "shell", content: "exit 0" }, post: null }, env());
    const paths = await writeHooks(appDir, { pre: { type: "python", content: "import os\nprint(os.environ['bk_bscp_current_version_name'], os.getcwd())\n" }, post: null }, env());
    expect(await readdir(join(appDir, "hooks"))).toEqual(["env", "pre_hook.py"]);
    const result = await runHook({ path: paths.pre!, type: "python", cwd: appDir, env: env(), timeoutMs: 10_000 });
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(result.output.trim()).toBe(`V4 ${appDir}`);
  });

  it("error: exit code and a 4 KiB output tail", async () => {
    const appDir = join(dir, "app");
    await mkdir(appDir);
    const script = join(dir, "fail.sh");
    await writeFile(script, "for i in $(seq 1 2000); do echo line-$i; done\necho boom >&2\nexit 3\n");
    const result = await runHook({ path: script, type: "shell", cwd: appDir, env: {}, timeoutMs: 10_000 });
    expect(result.exitCode).toBe(3);
    expect(Buffer.byteLength(result.outputTail)).toBeLessThanOrEqual(4096);
    expect(result.outputTail.trimEnd().endsWith("boom")).toBe(true);
    expect(result.output).toContain("line-1\n");
  });

  it("error: a script past its timeout is killed with its children", async () => {
    const script = join(dir, "slow.sh");
    const pidFile = join(dir, "child.pid");
    await writeFile(script, `sleep 300 &\necho $! > ${pidFile}\nsleep 300\n`);
    const result = await runHook({ path: script, type: "shell", cwd: dir, env: {}, timeoutMs: 500 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).not.toBe(0);
    const childPid = Number(await readFile(pidFile, "utf8"));
    for (let i = 0; i < 50 && alive(childPid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(childPid)).toBe(false);
  });

  it("error: a missing interpreter or file reports 127, never throws", async () => {
    const result = await runHook({ path: join(dir, "missing.sh"), type: "shell", cwd: dir, env: {}, timeoutMs: 5000 });
    expect(result.exitCode).toBe(127);
  });
});

describe("cache", () => {
  it("happy: cleans oldest-first to 90% of the threshold; blobs over 10% are not accepted", async () => {
    const cacheDir = join(dir, "cache");
    await mkdir(cacheDir);
    const threshold = 10_000;
    const cache = new BlobCache(cacheDir, threshold, true, log());
    expect(cache.accepts(1000)).toBe(true);
    expect(cache.accepts(1001)).toBe(false);
    const names: string[] = [];
    for (let i = 0; i < 12; i++) {
      const data = Buffer.alloc(1000, i);
      const name = sha(data);
      names.push(name);
      await writeFile(join(cacheDir, name), data);
      const t = new Date(Date.UTC(2024, 0, 1, 0, i));
      await utimes(join(cacheDir, name), t, t);
    }
    const result = await cache.cleanup();
    expect(result).toEqual({ sizeBefore: 12_000, sizeAfter: 9000, removed: 3 });
    const left = await readdir(cacheDir);
    expect(left.sort()).toEqual(names.slice(3).sort());
    expect(lines.some((l) => l.includes('msg="calculate current cache directory size"'))).toBe(true);
  });

  it("security: a corrupt cached blob is dropped on read", async () => {
    const cacheDir = join(dir, "cache");
    await mkdir(cacheDir);
    const cache = new BlobCache(cacheDir, 1e9, true, log());
    const good = Buffer.from("hello");
    await writeFile(join(cacheDir, sha(good)), good);
    expect(await cache.get(sha(good))).toBe(join(cacheDir, sha(good)));
    await writeFile(join(cacheDir, sha(good)), "tampered");
    expect(await cache.get(sha(good))).toBeNull();
    expect(await readdir(cacheDir)).toEqual([]);
  });
});
