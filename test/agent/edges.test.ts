/**
 * Edges of issue 9 through the public interface (agent process + real server): what the server
 * is told at the first poll, and a release whose event cannot be recorded.
 */
import { readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentSuite, readLines, runAgent, startAgent, startProxy, until } from "./harness";

const BIZ = 14;
const suite = new AgentSuite(BIZ, "edges");

beforeAll(() => suite.start(), 120_000);
afterAll(() => suite.stop());

/** The release the server shows as `uid`'s current one ("none" without a row or a release). */
async function currentOf(app: string, uid: string): Promise<number | "none"> {
  const { items } = await suite.admin.clients(BIZ, app);
  return items.find((c: { uid: string }) => c.uid === uid)?.currentRelease?.id ?? "none";
}

describe("the first poll", () => {
  it("happy: pull and watch report the release recorded in state from their first poll on (never 'none')", async () => {
    const app = "svc_current";
    await suite.service(app, { "/etc/a.conf": "a" });
    const v1 = await suite.admin.release(BIZ, app, "V1");
    // What the server shows for the polling host, looked at before the agent gets each answer.
    const shown: (number | "none")[] = [];
    let uid = "";
    const proxy = await startProxy(suite.server.url, { answered: async () => void shown.push(await currentOf(app, uid)) });
    try {
      const { env } = await suite.agentEnv([app], {}, proxy.addr);
      uid = env.uid;
      const first = await runAgent(suite.agent, ["pull"], env);
      expect(first.code, first.output).toBe(0);
      expect(await currentOf(app, uid)).toBe(v1);
      // The server writes a client's row at most every 30 s per (uid, release): a new uid on
      // the same disk (a pod restarted under a new name) makes each first poll's sighting a write.
      for (const command of ["pull", "watch"] as const) {
        uid = `${env.uid}-${command}`;
        shown.length = 0;
        const run = startAgent(suite.agent, [command], { ...env, uid });
        await until(() => shown.length > 0, `the first poll of ${command}`);
        if (command === "watch") await run.stop();
        const done = await run.exited;
        expect(done.code, done.output).toBe(0);
        expect(shown, command).toEqual(shown.map(() => v1));
        expect(await currentOf(app, uid)).toBe(v1);
      }
    } finally {
      await proxy.close();
    }
  }, 60_000);
});

describe("a release that cannot be recorded", () => {
  it("error: a link at {temp_dir}/metadata.json fails the pull (exit 1) before anything is touched, naming it", async () => {
    const app = "svc_unrecorded";
    await suite.service(app, { "/etc/a.conf": "v1\n" });
    const v1 = await suite.admin.release(BIZ, app, "V1");
    const { dir, env, appDir } = await suite.agentEnv([app]);
    expect((await runAgent(suite.agent, ["pull"], env)).code).toBe(0);
    await suite.admin.file(BIZ, app, "/etc/a.conf", "v2\n");
    const v2 = await suite.admin.release(BIZ, app, "V2");
    const outside = join(suite.work.path, "outside-metadata.json");
    await writeFile(outside, "");
    await rm(join(dir, "metadata.json"));
    await symlink(outside, join(dir, "metadata.json"));
    const refused = await runAgent(suite.agent, ["pull"], env);
    expect(refused.code, refused.output).toBe(1);
    expect(refused.output).toContain(`${join(dir, "metadata.json")} is a symbolic link`);
    expect(await readFile(join(appDir(app), "files/etc/a.conf"), "utf8")).toBe("v1\n");
    expect(await readFile(outside, "utf8")).toBe("");
    expect((await readLines(join(appDir(app), "metadata.json"))).map((e) => [e.releaseID, e.status])).toEqual([[v1, "SUCCESS"], [v2, "FAILED"]]);
  }, 60_000);

  it("error: a link planted there by the post-script: files in place, pull exits 1 until the event is recorded, then 0 (no re-run)", async () => {
    const app = "svc_unrecorded_post";
    const post = await suite.script("shell", '#!/bin/bash\necho ran >> "$bk_bscp_app_temp_dir/post_runs"\nif [ "$bk_bscp_current_version_name" = V2 ]; then rm -f "$bk_bscp_temp_dir/metadata.json"; ln -s "$bk_bscp_temp_dir/../outside.json" "$bk_bscp_temp_dir/metadata.json"; fi\n');
    await suite.service(app, { "/etc/a.conf": "v1\n" }, { post });
    const v1 = await suite.admin.release(BIZ, app, "V1");
    const { dir, env, appDir } = await suite.agentEnv([app]);
    expect((await runAgent(suite.agent, ["pull"], env)).code).toBe(0);
    await suite.admin.file(BIZ, app, "/etc/a.conf", "v2\n");
    const v2 = await suite.admin.release(BIZ, app, "V2");
    await writeFile(join(dir, "../outside.json"), "");
    const events = () => readLines(join(appDir(app), "metadata.json"));
    const state = async () => JSON.parse(await readFile(join(appDir(app), ".edgeconf/state.json"), "utf8"));

    const unrecorded = await runAgent(suite.agent, ["pull"], env);
    expect(unrecorded.code, unrecorded.output).toBe(1);
    expect(unrecorded.output).toMatch(/release V2 is in place, but its event could not be recorded in metadata\.json: .*metadata\.json is a symbolic link/);
    expect(await readFile(join(appDir(app), "files/etc/a.conf"), "utf8")).toBe("v2\n");
    expect(await state()).toMatchObject({ releaseId: v2, unrecorded: true });
    expect(await readFile(join(dir, "../outside.json"), "utf8")).toBe("");

    // Still a link: still not a success, and not "already applied" either.
    const again = await runAgent(suite.agent, ["pull"], env);
    expect(again.code, again.output).toBe(1);
    expect(again.output).toContain("its event was not recorded; recording it now");
    const clients = await suite.admin.clients(BIZ, app);
    expect(clients.items[0].lastEvent).toMatchObject({ status: "FAILED", message: expect.stringContaining("could not be recorded") });

    await rm(join(dir, "metadata.json"));
    const recorded = await runAgent(suite.agent, ["pull"], env);
    expect(recorded.code, recorded.output).toBe(0);
    expect((await events()).at(-1)).toMatchObject({ releaseID: v2, status: "SUCCESS" });
    expect(await readLines(join(dir, "metadata.json"))).toMatchObject([{ releaseID: v2, status: "SUCCESS", app }]);
    expect((await state()).unrecorded).toBeUndefined();
    expect(await readFile(join(appDir(app), "post_runs"), "utf8")).toBe("ran\nran\n");
    expect((await runAgent(suite.agent, ["pull"], env)).output).toContain("release already applied");
    expect(v1).toBeLessThan(v2);
  }, 60_000);
});
