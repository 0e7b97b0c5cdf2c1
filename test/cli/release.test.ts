/**
 * `edgeconf release --wait`, `status` and `rollback` against a real server and three real agent
 * processes (watch mode, distinct uids and temp folders). One host fails its pre-script when a
 * marker file sits in its temp folder. Outcomes: exit codes, the hosts named, files on the hosts.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../agent/harness";
import { startFleet, type Fleet } from "./harness";

const BIZ = 32;
const APP = "web";
const HOSTS = ["host-1", "host-2", "host-3"];
const PRE = `#!/bin/bash
if [[ -f "\${bk_bscp_temp_dir}/fail-pre" ]]; then
  echo "disk check failed on this host" >&2
  exit 3
fi
`;

let fleet: Fleet;
const hostDir = (uid: string) => fleet.hostDir(uid);
const config = (uid: string) => fleet.config(uid);
const run = (...args: string[]) => fleet.run(...args);
const pushRelease = (content: string, name: string, ...extra: string[]) => fleet.pushRelease(content, name, ...extra);

beforeAll(async () => {
  fleet = await startFleet({ prefix: "edgeconf-cli-release-", biz: BIZ, app: APP, hosts: HOSTS, pre: PRE, file: "etc/app/app.conf", labels: "role=web" });
}, 120_000);

afterAll(() => fleet?.stop());

describe("edgeconf release --wait with real agents", () => {
  it("happy: every healthy host reports SUCCESS: exit 0, the new file on each host", async () => {
    const r = await pushRelease("v=2\n", "V2", "--wait", "--timeout", "60s");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("release succeeded on all 3 targeted online hosts");
    for (const uid of HOSTS) {
      expect(r.stdout).toContain(`${uid}: SUCCESS`);
      expect(await config(uid)).toBe("v=2\n");
    }
  });

  it("error: a pre-script failing on one host: exit 1 naming that host with the reason; the others applied", async () => {
    await writeFile(join(hostDir("host-2"), "fail-pre"), "");
    const r = await pushRelease("v=3\n", "V3", "--wait", "--timeout", "60s");
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/FAILED host-2: .*pre-script/);
    expect(r.stderr).toContain("disk check failed on this host");
    expect(r.stderr).toContain("release failed on 1 of 3 hosts: host-2");
    expect(r.stderr).not.toMatch(/FAILED host-[13]/);
    expect(await config("host-1")).toBe("v=3\n");
    expect(await config("host-3")).toBe("v=3\n");
    expect(await config("host-2")).toBe("v=2\n");
  });

  it("happy: status shows clients by version and last status, and the failing host", async () => {
    const r = await run("status", "--app", APP);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("3 clients, 3 online");
    expect(r.stdout).toContain("published: V3 to every client");
    expect(r.stdout).toMatch(/V3\s+SUCCESS\s+2\s+0/);
    expect(r.stdout).toMatch(/V2\s+FAILED\s+1\s+0/);
    expect(r.stdout).toMatch(/host-2: V3: .*disk check failed/);
    const json = JSON.parse((await run("status", "--app", APP, "--json")).stdout);
    expect(json.clients.map((c: { uid: string }) => c.uid).sort()).toEqual(HOSTS);
  });

  it("happy: rollback --to V2 --wait publishes V2 again and every host has it", async () => {
    await rm(join(hostDir("host-2"), "fail-pre"));
    const r = await run("rollback", "--app", APP, "--to", "V2", "--wait", "--timeout", "60s");
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("published V2");
    for (const uid of HOSTS) expect(await config(uid)).toBe("v=2\n");
    const history = await fleet.admin.call<{ items: { version: { name: string }; rollback: boolean }[] }>("GET", `/api/v1/bizs/${BIZ}/apps/${APP}/publishes`);
    expect(history.items[0]).toMatchObject({ version: { name: "V2" }, rollback: true });
  });

  it("error: a targeted online client that never reports: exit 4 on timeout, naming it; other groups untouched", async () => {
    await fleet.admin.call("POST", `/api/v1/bizs/${BIZ}/groups`, { name: "silent", selector: "role=silent" });
    // A client that is online (heartbeat through the feed) but never applies anything.
    const feed = new Admin(fleet.server.url, fleet.agentToken);
    await feed.call("POST", `/feed/v1/bizs/${BIZ}/apps/${APP}/heartbeat`, { uid: "silent-host", labels: { role: "silent" }, currentReleaseId: null }, 204);
    const r = await pushRelease("v=4\n", "V4", "--groups", "silent", "--wait", "--timeout", "2s");
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stdout).toContain("published V4 (version");
    expect(r.stdout).toContain("to groups silent");
    expect(r.stderr).toContain("timed out: 0/1 succeeded, 0 failed, 1 pending; no report yet from silent-host");
    for (const uid of HOSTS) expect(await config(uid)).toBe("v=2\n");
  });
});
