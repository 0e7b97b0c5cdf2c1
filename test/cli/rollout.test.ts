/**
 * `edgeconf release --waves ... --wait` and `edgeconf rollout ...` against a real server and eight
 * real agent processes (watch mode, distinct uids and temp folders). A host fails its pre-script
 * when a marker file sits in its temp folder. Outcomes: exit codes, the hosts named, the rollout
 * as the API shows it, and the files on the hosts.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readLines, until } from "../agent/harness";
import { startFleet, type Fleet } from "./harness";

const BIZ = 33;
const APP = "edge";
const HOSTS = Array.from({ length: 8 }, (_, i) => `node-${i + 1}`);
const FAILING = ["node-2", "node-5", "node-7"];
const PRE = `#!/bin/bash
if [[ -f "\${bk_bscp_temp_dir}/fail-pre" ]]; then
  echo "health probe refused the new config" >&2
  exit 4
fi
`;

type Wave = { index: number; released: boolean; targeted: number; succeeded: number; failed: number; failing: { uid: string; reason: string }[] };
type Rollout = { id: number; state: string; currentWave: number; version: { id: number; name: string }; progress: Wave[] };

let fleet: Fleet;
const hostDir = (uid: string) => fleet.hostDir(uid);
const config = (uid: string) => fleet.config(uid);
const run = (...args: string[]) => fleet.run(...args);
const pushRelease = (content: string, name: string, ...extra: string[]) => fleet.pushRelease(content, name, ...extra);
const rollout = (id: number) => fleet.admin.call<Rollout>("GET", `/api/v1/bizs/${BIZ}/apps/${APP}/rollouts/${id}`);
const startedId = (stdout: string) => Number(/started rollout (\d+)/.exec(stdout)?.[1]);

beforeAll(async () => {
  fleet = await startFleet({ prefix: "edgeconf-cli-rollout-", biz: BIZ, app: APP, hosts: HOSTS, pre: PRE, file: "etc/edge/edge.conf", labels: "role=edge" });
}, 180_000);

afterAll(() => fleet?.stop());

describe("edgeconf release --waves --wait with real agents", () => {
  it("happy: every host healthy: the rollout completes wave by wave, exit 0, the new file on every host", async () => {
    const r = await pushRelease("v=2\n", "V2", "--waves", "25,50,100", "--bake", "1s", "--report-timeout", "60s", "--wait", "--timeout", "90s");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/started rollout \d+ of V2 in waves 25%, 50%, 100% \(bake 1 s, max failures 0%, report timeout 60 s, auto rollback\)/);
    // Plain lines (not a terminal): one per wave as it changes, and the end.
    expect(r.stdout).toMatch(/wave 1\/3 \(25%\): \d+\/\d+ succeeded/);
    expect(r.stdout).toMatch(/wave 3\/3 \(100%\): 8\/8 succeeded, 0 failed, 0 pending/);
    expect(r.stdout).toMatch(/rollout \d+ completed: V2 released to every wave \(8 hosts succeeded\)/);
    for (const uid of HOSTS) expect(await config(uid)).toBe("v=2\n");
    const done = await rollout(startedId(r.stdout));
    expect(done.state).toBe("completed");
  });

  it("error: a pre-script failing on some hosts halts the rollout in the first wave holding one: exit 1 naming those hosts with reason and output; they get V2 back", async () => {
    for (const uid of FAILING) await writeFile(join(hostDir(uid), "fail-pre"), "");
    const r = await pushRelease("v=3\n", "V3", "--waves", "25,50,100", "--bake", "1s", "--max-failures", "0%", "--report-timeout", "60s", "--wait", "--timeout", "90s");
    expect(r.code, r.stdout + r.stderr).toBe(1);
    const id = startedId(r.stdout);
    const halted = await rollout(id);
    expect(halted.state).toBe("rolled_back");
    const wave = halted.progress[halted.currentWave];
    const named = [...new Set(halted.progress.flatMap((w) => w.failing.map((f) => f.uid)))].sort();
    // The halting wave is the first one that holds a failing host; every host it names is one of those set to fail.
    expect(named.length).toBeGreaterThan(0);
    expect(FAILING).toEqual(expect.arrayContaining(named));
    expect(halted.progress.slice(0, halted.currentWave).every((w) => w.failed === 0)).toBe(true);
    for (const uid of named) {
      expect(r.stderr).toMatch(new RegExp(`FAILED ${uid}: .*`));
      expect(r.stderr).toContain("health probe refused the new config");
    }
    expect(r.stderr).toContain(`rollout ${id} halted in wave ${halted.currentWave + 1}/3`);
    expect(r.stderr).toContain(`${wave.failed} of ${wave.targeted} hosts failed (threshold 0%)`);
    expect(r.stderr).toContain(`and rolled back`);
    expect(r.stderr).toContain(`failing hosts: ${named.join(", ")}`);
    // After the rollback every host holds V2 again (the failing ones never left it), and hosts outside the released waves never saw V3.
    for (const uid of HOSTS) await until(async () => (await config(uid)) === "v=2\n", `${uid} back on V2`, 60_000);
    const v3 = halted.version.id;
    const released = new Set<string>();
    for (const uid of HOSTS) {
      const events = await readLines(join(hostDir(uid), String(BIZ), APP, "metadata.json"));
      if (events.some((e) => e.releaseID === v3)) released.add(uid);
    }
    expect(released.size).toBeLessThanOrEqual(wave.targeted);
    for (const uid of named) expect(released.has(uid)).toBe(true);
  });

  it("happy: rollout status shows the waves, the failing hosts with their output, and the end", async () => {
    const r = await run("rollout", "status", "--app", APP);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rollout \d+ of V3: rolled back/);
    expect(r.stdout).toContain("settings: waves 25%, 50%, 100%, bake 1 s, max failures 0%, report timeout 60 s, auto rollback");
    expect(r.stdout).toMatch(/wave 1\/3 \(25%\): \d+\/\d+ succeeded/);
    expect(r.stdout).toContain("failing hosts:");
    expect(r.stdout).toContain("    | health probe refused the new config");
    const json = JSON.parse((await run("rollout", "status", "--app", APP, "--json")).stdout);
    expect(json).toMatchObject({ state: "rolled_back", version: { name: "V3" }, waves: [25, 50, 100] });
  });

  it("happy: pause, resume, advance and abort steer a rollout; a control its state refuses exits 3 with the reason", async () => {
    for (const uid of FAILING) await rm(join(hostDir(uid), "fail-pre"));
    // A bake of an hour: the rollout sits in wave 1 until someone advances it.
    const started = await pushRelease("v=4\n", "V4", "--waves", "50,100", "--bake", "1h");
    expect(started.code, started.stderr).toBe(0);
    const id = startedId(started.stdout);
    const pause = await run("rollout", "pause", "--app", APP);
    expect(pause.code, pause.stderr).toBe(0);
    expect(pause.stdout).toContain(`pause: rollout ${id} was running, now paused`);
    const again = await run("rollout", "pause", "--app", APP, "--id", String(id));
    expect(again.code).toBe(3);
    expect(again.stderr).toContain("pause applies only when running");
    expect((await run("rollout", "resume", "--app", APP)).stdout).toContain("was paused, now running");
    const advance = await run("rollout", "advance", "--app", APP);
    expect(advance.code, advance.stderr).toBe(0);
    expect((await rollout(id)).currentWave).toBe(1);
    for (const uid of HOSTS) await until(async () => (await config(uid)) === "v=4\n", `${uid} applies V4 after advance`, 60_000);
    const abort = await run("rollout", "abort", "--app", APP);
    expect(abort.code, abort.stderr).toBe(0);
    expect(abort.stdout).toContain(`abort: rollout ${id} was running, now aborted`);
    const status = await run("rollout", "status", "--app", APP, "--wait");
    expect(status.code).toBe(0); // already over: status prints it and does not wait
    expect(status.stdout).toContain(`rollout ${id} was aborted`);
  });
});
