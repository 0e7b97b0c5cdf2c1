/**
 * The agent, unchanged, against the Worker URL (workerd through Miniflare, R2, the Durable Object,
 * Postgres through the Neon driver): `pull` applies the release; `watch` applies the next publish.
 * Worker pass only (EDGECONF_TEST_RUNTIME=worker, DATABASE_URL set).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, testRuntime, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

const inWorkerPass = testRuntime === "worker" && !!process.env.DATABASE_URL;
if (!inWorkerPass) console.log("skipped: the agent-against-the-Worker tests run in the worker pass (EDGECONF_TEST_RUNTIME=worker DATABASE_URL=...)");

const root = fileURLToPath(new URL("../..", import.meta.url));
const biz = 10;
const app = "service_demo";
const binary = new Uint8Array(Array.from({ length: 70_000 }, (_, i) => (i * 31) % 256));
let api: TestApi;
let token: string;
let tempDir: string;
let watcher: ChildProcess | undefined;

beforeAll(async () => {
  if (!inWorkerPass) return;
  api = await createTestApi();
  tempDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-agent-worker-"));
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
  await seedService(api, biz, app, [
    { path: "/etc/nginx/nginx.conf", content: "worker_processes 2;\n" },
    { path: "/opt/app/blob.bin", content: binary },
  ]);
  const v1 = await seedRelease(api, biz, app, "V1");
  await seedPublish(api, biz, app, v1.id);
  token = (await agentToken(api, biz, ["service_*"])).token;
});
afterAll(async () => {
  if (watcher && watcher.exitCode === null) {
    watcher.kill("SIGTERM");
    await new Promise((r) => watcher!.once("exit", r));
  }
  await api?.close();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

const agentArgs = (command: string, uid: string, extra: string[] = []) => [
  "--import",
  "tsx",
  path.join(root, "agent/main.ts"),
  command,
  `--biz=${biz}`,
  `--app=${app}`,
  `--feed-addrs=${api.baseUrl}`,
  `--token=${token}`,
  `--temp-dir=${path.join(tempDir, uid)}`,
  `--uid=${uid}`,
  "--labels=env=prod",
  ...extra,
];
const fileOf = (uid: string, p: string) => path.join(tempDir, uid, String(biz), app, "files", p);

async function until(cond: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.skipIf(!inWorkerPass)("agent against the Worker URL", () => {
  it("pull applies the published release byte for byte and reports a SUCCESS event", async () => {
    const child = spawn(process.execPath, agentArgs("pull", "pull-host"), { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout!.on("data", (d) => (log += d));
    child.stderr!.on("data", (d) => (log += d));
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    expect(code, log).toBe(0);
    expect(await readFile(fileOf("pull-host", "etc/nginx/nginx.conf"), "utf8")).toBe("worker_processes 2;\n");
    expect(new Uint8Array(await readFile(fileOf("pull-host", "opt/app/blob.bin")))).toEqual(binary);
    const clients = await api.call("GET", `/api/v1/bizs/${biz}/apps/${app}/clients`);
    expect(clients.status).toBe(200);
    expect(clients.body.items.find((c: any) => c.uid === "pull-host")).toMatchObject({ lastStatus: "SUCCESS" });
  });

  it("watch holds its long-poll in the Durable Object and applies the next publish", async () => {
    const service = (await api.call("GET", `/api/v1/bizs/${biz}/apps`)).body.items.find((s: any) => s.name === app);
    watcher = spawn(process.execPath, agentArgs("watch", "watch-host", ["--port=0", "--wait=30"]), { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    watcher.stdout!.on("data", (d) => (log += d));
    watcher.stderr!.on("data", (d) => (log += d));
    const conf = fileOf("watch-host", "etc/nginx/nginx.conf");
    await until(async () => (await readFile(conf, "utf8").catch(() => "")) === "worker_processes 2;\n", `the first apply\n${log}`);
    await until(async () => (await api.waiting(service.id)) >= 1, `the watch long-poll held by the Durable Object\n${log}`);
    await api.call("PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?path=${encodeURIComponent("/etc/nginx/nginx.conf")}`, new TextEncoder().encode("worker_processes 8;\n"));
    const v2 = await seedRelease(api, biz, app, "V2");
    await seedPublish(api, biz, app, v2.id);
    await until(async () => (await readFile(conf, "utf8").catch(() => "")) === "worker_processes 8;\n", `the second apply\n${log}`);
    watcher.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => watcher!.once("exit", r));
    expect(code, log).toBe(0);
  });
});
