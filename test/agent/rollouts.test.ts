/**
 * Rollouts end to end: 20 real agent processes (distinct uids and temp folders) watching two
 * services against a real server. A version whose pre-script fails on some hosts halts in the first
 * wave whose failures pass the threshold and is rolled back; no host outside the released waves ever
 * gets it. The same fleet with a healthy version completes.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inRolloutShare } from "../../functions/core/targeting";
import { AgentSuite, readLines, startAgent, until, type AgentProcess } from "./harness";

const BIZ = 31;
const HOSTS = 20;
/** Fails when the host carries the marker file, as a host-specific check (disk, package) would. */
const PRE_CHECK = `#!/bin/bash
if [[ -f \${bk_bscp_temp_dir}/broken ]]; then
  echo "pre-check: $(cat \${bk_bscp_temp_dir}/broken)"
  exit 3
fi
`;

const suite = new AgentSuite(BIZ, "rollouts");
type Host = { uid: string; dir: string; appDir: (app: string) => string; agent: AgentProcess };
const hosts: Host[] = [];
const v: Record<string, number> = {};

const api = (app: string) => `/api/v1/bizs/${BIZ}/apps/${app}`;
const content = (h: Host, app: string) => readFile(join(h.appDir(app), "files/etc/app.conf"), "utf8").catch(() => null);
const releasesSeen = async (h: Host, app: string) => new Set((await readLines(join(h.appDir(app), "metadata.json"))).map((e) => e.releaseID));

beforeAll(async () => {
  await suite.start();
  for (const app of ["fleet", "fleet_ok"]) {
    await suite.service(app, { "/etc/app.conf": "one\n" });
    v[`${app}1`] = await suite.admin.release(BIZ, app, "V1");
  }
  for (let i = 0; i < HOSTS; i++) {
    const { dir, env, appDir } = await suite.agentEnv(["fleet", "fleet_ok"], { uid: `host-${String(i).padStart(2, "0")}`, retry_interval: "1" });
    hosts.push({ uid: env.uid, dir, appDir, agent: startAgent(suite.agent, ["watch"], env) });
  }
  await until(async () => (await Promise.all(hosts.flatMap((h) => [content(h, "fleet"), content(h, "fleet_ok")]))).every((c) => c === "one\n"), "every host on V1 of both services", 45_000);
  // V2 of `fleet` carries the pre-check; `fleet_ok` gets a plain V2.
  await suite.admin.hooks(BIZ, "fleet", await suite.script("shell", PRE_CHECK), null);
  for (const app of ["fleet", "fleet_ok"]) {
    await suite.admin.file(BIZ, app, "/etc/app.conf", "two\n");
    v[`${app}2`] = (await suite.admin.call("POST", `${api(app)}/versions`, { name: "V2" })).id;
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(hosts.map((h) => h.agent.stop()));
  await suite.stop();
});

async function rolloutUntil(app: string, id: number, done: (r: any) => boolean, what: string) {
  let last: any;
  return until(
    async () => {
      last = await suite.admin.call("GET", `${api(app)}/rollouts/${id}`);
      return done(last) ? last : null;
    },
    `${what} (last: ${JSON.stringify(last?.state)} wave ${last?.currentWave})`,
    40_000,
  );
}

describe("rollouts with real agents", () => {
  it("halts in the first wave whose failures pass the threshold, rolls its hosts back, and never reaches hosts outside the released waves", async () => {
    const start = await suite.admin.call("POST", `${api("fleet")}/rollouts`, { versionId: v.fleet2, waves: [10, 50, 100], bakeSeconds: 1, maxFailurePercent: 15, reportTimeoutSeconds: 20, autoRollback: true });
    const id = start.id;
    const inWave = (h: Host, k: number) => inRolloutShare(h.uid, id, [10, 50, 100][k]);
    // Two hosts that join in wave 2 are broken: wave 2 (≈10 hosts) then fails 20 % > 15 %. The gate
    // counts the wave's online hosts; at 15 % one failure never halts and two always do for 7 to 13
    // of them (at 10 %, a host counted offline under load made one failure of 9 halt it). They get
    // the version only after wave 1 reported and baked, so marking them now is in time.
    const broken = hosts.filter((h) => !inWave(h, 0) && inWave(h, 1)).slice(0, 2);
    expect(broken.length).toBe(2);
    for (const h of broken) await writeFile(join(h.dir, "broken"), `disk full on ${h.uid}\n`);

    const r = await rolloutUntil("fleet", id, (x) => x.state === "rolled_back", "rolled back");
    expect(r.currentWave).toBe(1);
    expect(r.reason).toMatch(/^wave 2 \(50 %\): 2 of \d+ clients failed, more than 15 %/);
    expect(r.progress[0].failed).toBe(0);
    expect(r.progress[1].failing.map((f: any) => f.uid).sort()).toEqual(broken.map((h) => h.uid).sort());
    expect(r.progress[1].failing[0].preHook).toMatchObject({ exitCode: 3, outputTail: expect.stringContaining("pre-check: disk full on") });

    // Every host runs V1 again (the released waves' healthy hosts got it back); the broken ones never left it.
    // A healthy host may still be applying V2 when the broken ones halt the rollout (its files still
    // V1): it finishes V2, then gets V1 back. So wait for its V1 event, not only for V1's files.
    const rolledBack = hosts.filter((h) => inWave(h, 1) && !broken.includes(h));
    const lastEventIsV1 = async (h: Host) => (await readLines(join(h.appDir("fleet"), "metadata.json"))).at(-1)?.releaseID === v.fleet1;
    await until(
      async () => (await Promise.all(hosts.map((h) => content(h, "fleet")))).every((c) => c === "one\n") && (await Promise.all(rolledBack.map(lastEventIsV1))).every(Boolean),
      "every host back on V1",
      30_000,
    );
    for (const h of hosts) {
      const seen = await releasesSeen(h, "fleet");
      if (!inWave(h, 1)) expect(seen.has(v.fleet2), `${h.uid} is outside the released waves`).toBe(false);
    }
    for (const h of rolledBack) {
      const events = await readLines(join(h.appDir("fleet"), "metadata.json"));
      expect(events.map((e) => `${e.releaseID}:${e.status}`).slice(-2), h.uid).toEqual([`${v.fleet2}:SUCCESS`, `${v.fleet1}:SUCCESS`]);
    }
    const history = await suite.admin.call("GET", `${api("fleet")}/publishes`);
    expect(history.items[0]).toMatchObject({ version: { id: v.fleet1 }, rollback: true });
  }, 90_000);

  it("with every host healthy, completes wave by wave and every host ends on the new version", async () => {
    const start = await suite.admin.call("POST", `${api("fleet_ok")}/rollouts`, { versionId: v.fleet_ok2, waves: [10, 50, 100], bakeSeconds: 1, maxFailurePercent: 0, reportTimeoutSeconds: 20, autoRollback: true });
    const r = await rolloutUntil("fleet_ok", start.id, (x) => x.state !== "running", "finished");
    expect(r.state, r.reason).toBe("completed");
    expect(r.progress[2]).toMatchObject({ targeted: HOSTS, succeeded: HOSTS, failed: 0, pending: 0 });
    await until(async () => (await Promise.all(hosts.map((h) => content(h, "fleet_ok")))).every((c) => c === "two\n"), "every host on V2", 30_000);
  }, 90_000);
});
