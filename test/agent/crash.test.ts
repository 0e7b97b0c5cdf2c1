/**
 * `kill -9` of a real agent process at random instants of a multi-file apply (design: "Agent
 * safety invariants" 1–3), complementing the in-process crashes of faults.test.ts. Each run
 * starts from V1 applied, pulls V2 (pre-script, downloads slowed by a proxy, swap, post-script:
 * each script takes a while, so every phase has a window) and kills the agent after a delay
 * drawn by a seeded random across the length of an uninterrupted pull (stratified, so every
 * part of it is hit). Then an agent starts again on the same disk without reaching the feed
 * (it finishes or undoes the interrupted apply and stops), and the invariants are checked:
 * `files/` is exactly V1 or V2 (bytes and modes), `state` names it, the last SUCCESS event
 * names it, no journal is left, no two copies of a script ever ran at once, and a sentinel tree
 * outside the service folder is unchanged. A last pull then brings V2 whole. Seed:
 * EDGECONF_CRASH_SEED (printed with the phases hit).
 */
import { cp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentSuite, freePort, readLines, runAgent, sha256, snapshot, startAgent, startProxy, until, type AgentProcess, type Proxy } from "./harness";
import { expected, tempFilesLeft, V1, V2 as BASE_V2, type Files } from "./versions";

const BIZ = 16;
const APP = "crash";
const RUNS = 8;
/** Kills aimed at the swap, a few milliseconds after "files fetched". */
const SWAP_RUNS = 3;
const SEED = Number(process.env.EDGECONF_CRASH_SEED ?? 20261130);
const suite = new AgentSuite(BIZ, "crash");

/** faults.test.ts's V1 → V2, plus a 256 KiB file so a download lasts long enough to be killed in. */
const V2: Files = { ...BASE_V2, "/etc/app/big.bin": ["x".repeat(256 * 1024), "644"] };
const canon = (x: Record<string, string>) => JSON.stringify(Object.entries(x).sort());

/** A script that notes its start and end in `{app}/scripts.log`, and takes a while between. */
const slowScript = (kind: string) => `#!/bin/bash\necho "start ${kind}" >> "$bk_bscp_app_temp_dir/scripts.log"\nsleep 0.3\necho "end ${kind}" >> "$bk_bscp_app_temp_dir/scripts.log"\n`;

/** mulberry32: a small seeded generator, so a failing run can be replayed with its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The phase an agent was in, from the last step its log names. */
function phaseOf(output: string): string {
  const hooks = output.match(/exec hook success/g)?.length ?? 0;
  if (output.includes("pull files success")) return "recording";
  if (output.includes("files applied")) return "post-script";
  if (output.includes("files fetched")) return "swap";
  if (hooks > 0) return "download";
  return output.includes("instance fingerprint") ? "pre-script" : "start-up";
}

/** Resolves the moment the agent's output says `text` (or it exits), not at the next poll. */
function said(agent: AgentProcess, text: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!agent.output().includes(text)) return;
      agent.child.stdout!.off("data", check);
      agent.child.stderr!.off("data", check);
      resolve();
    };
    agent.child.stdout!.on("data", check);
    agent.child.stderr!.on("data", check);
    void agent.exited.then(() => resolve());
  });
}

let proxy: Proxy;
let ids: { v1: number; v2: number };
let template: string;
let env: Record<string, string>;

beforeAll(async () => {
  await suite.start();
  await suite.admin.service(BIZ, APP);
  for (const [path, [content, privilege]] of Object.entries(V1)) await suite.admin.file(BIZ, APP, path, content, { privilege });
  const [pre, post] = [await suite.script("shell", slowScript("pre")), await suite.script("shell", slowScript("post"))];
  await suite.admin.hooks(BIZ, APP, pre, post);
  const v1 = await suite.admin.release(BIZ, APP, "V1");
  proxy = await startProxy(suite.server.url, { blobDelayMs: 300 });
  const agentEnv = await suite.agentEnv([APP], {}, proxy.addr);
  ({ env } = agentEnv);
  template = agentEnv.dir;
  const first = await runAgent(suite.agent, ["pull"], env);
  expect(first.code, first.output).toBe(0);
  await mkdir(join(template, "sentinel/etc/app"), { recursive: true });
  await writeFile(join(template, "sentinel/etc/app/main.conf"), "outside\n");
  await suite.admin.removeFile(BIZ, APP, "/etc/old/gone.conf");
  for (const [path, [content, privilege]] of Object.entries(V2)) await suite.admin.file(BIZ, APP, path, content, { privilege });
  ids = { v1, v2: await suite.admin.release(BIZ, APP, "V2") };
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await suite.stop();
});

let seq = 0;
/** A fresh temp_dir holding V1 as applied (a copy of the template) and its environment. */
async function fromV1(): Promise<{ root: string; runEnv: Record<string, string> }> {
  const root = join(suite.work.path, `crash-${++seq}`);
  await cp(template, root, { recursive: true, preserveTimestamps: true });
  return { root, runEnv: { ...env, temp_dir: root } };
}

/** What is violated after an attempt (empty when every invariant holds). */
async function violations(root: string): Promise<string[]> {
  const app = join(root, String(BIZ), APP);
  const out: string[] = [];
  const disk = canon(await snapshot(join(app, "files")));
  const version = disk === canon(expected(V1)) ? ids.v1 : disk === canon(expected(V2)) ? ids.v2 : null;
  if (version === null) out.push(`files/ is neither V1 nor V2: ${disk}`);
  const state = JSON.parse(await readFile(join(app, ".edgeconf/state.json"), "utf8"));
  if (state.releaseId !== version) out.push(`state names ${state.releaseId}, disk holds ${version}`);
  const events = await readLines(join(app, "metadata.json"));
  if (events.filter((e) => e.status === "SUCCESS").at(-1)?.releaseID !== version) out.push(`last SUCCESS event is not ${version}: ${JSON.stringify(events)}`);
  if (events.at(-1)?.status === "SUCCESS" && events.at(-1)?.releaseID !== version) out.push("last event disagrees with the disk");
  if (await stat(join(app, ".edgeconf/journal.json")).then(() => true, () => false)) out.push("journal left behind");
  const temps = await tempFilesLeft(app);
  if (temps.length) out.push(`temp files left behind: ${temps.join(", ")}`);
  if (canon(await snapshot(join(root, "sentinel"))) !== canon({ "etc/app/main.conf": `644 ${sha256("outside\n")}` })) out.push("sentinel tree changed");
  let running = 0;
  for (const line of (await readFile(join(app, "scripts.log"), "utf8")).trim().split("\n")) {
    running += line.startsWith("start") ? 1 : -1;
    if (running > 1) out.push("two copies of a script ran at once");
  }
  return out;
}

describe("kill -9 of the agent process during an apply", () => {
  it("error: at random instants of pre-script, download, swap and post-script, one whole version survives and the next pull completes", async () => {
    // The length of an uninterrupted pull, to spread the kills across it.
    const calibration = await fromV1();
    const t0 = Date.now();
    const whole = await runAgent(suite.agent, ["pull"], calibration.runEnv);
    const span = Date.now() - t0;
    expect(whole.code, whole.output).toBe(0);
    expect(await violations(calibration.root)).toEqual([]);

    const noFeed = `http://127.0.0.1:${await freePort()}`;
    const random = seeded(SEED);
    const hits: string[] = [];
    let resumed = 0;
    for (let i = 0; i < RUNS + SWAP_RUNS; i++) {
      const { root, runEnv } = await fromV1();
      const agent = startAgent(suite.agent, ["pull"], runEnv);
      // Spread over the pull; the swap takes milliseconds, so it is also aimed at: a few
      // milliseconds after the agent says every file is fetched.
      const swap = i >= RUNS;
      const delay = swap ? Math.floor(random() * 4) : Math.floor((span * (i + random())) / RUNS);
      if (swap) await said(agent, "files fetched");
      await new Promise((r) => setTimeout(r, delay));
      const phase = phaseOf(agent.output());
      const killed = await agent.stop("SIGKILL");
      hits.push(killed.code === null ? `${phase}@${swap ? "fetched+" : ""}${delay}ms` : `finished@${delay}ms`);
      // Started again with no feed to reach (same token: its journal is sealed with a key derived
      // from it, agent/integrity.ts): it only finishes what the crash left.
      const recover = await runAgent(suite.agent, ["pull"], { ...runEnv, feed_addrs: noFeed });
      expect(recover.code, recover.output).toBe(3);
      if (recover.output.includes("found an interrupted apply")) resumed++;
      // An orphaned script of the killed agent has been waited for; its last line is written.
      await until(async () => (await readFile(join(root, String(BIZ), APP, "scripts.log"), "utf8")).trim().split("\n").at(-1)?.startsWith("end"), "the scripts to end");
      expect(await violations(root), `kill at ${delay} ms (${phase})`).toEqual([]);
      const next = await runAgent(suite.agent, ["pull"], runEnv);
      expect(next.code, next.output).toBe(0);
      expect(await violations(root)).toEqual([]);
      expect(canon(await snapshot(join(root, String(BIZ), APP, "files")))).toBe(canon(expected(V2)));
      await rm(root, { recursive: true, force: true });
    }
    console.log(`crash suite: seed ${SEED}, ${RUNS + SWAP_RUNS} kills over a ${span} ms pull: ${hits.join(", ")}; ${resumed} interrupted applies finished or undone at restart; 0 invariant violations`);
  }, 120_000);
});
