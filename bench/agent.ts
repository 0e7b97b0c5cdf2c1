/**
 * `npm run bench:agent`: the agent against a real server process on loopback.
 * - RSS of an idle `watch`
 * - pull of 1,000 files / 100 MB, cold (empty cache) and warm (cache filled), next to plain
 *   parallel HTTP GETs of the same blobs in the same run (the ratio is the figure; target ≤ 1.2×)
 * - bytes transferred when 1 of 1,000 files changes (must equal that file's size)
 */
import { randomBytes } from "node:crypto";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Admin, ADMIN_TOKEN, buildAgent, freePort, runAgent, sha256, startAgent, startProxy, startServer, tempDir, until } from "../test/agent/harness";

const BIZ = 77;
const APP = "bench_files";
const FILES = Number(process.env.BENCH_FILES ?? 1000);
const FILE_SIZE = Number(process.env.BENCH_FILE_SIZE ?? 100 * 1024);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONCURRENCY = 8;

const execFileAsync = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (n: number) => `${n.toFixed(0)} ms`;

async function mapLimit<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

/**
 * The floor: a separate Node process (like the agent: its own start, cold JIT) that GETs every
 * blob with `CONCURRENCY` keep-alive connections, bytes discarded. Plain JavaScript, run with
 * `node --input-type=module`, so no TypeScript loader's start-up is counted against it.
 */
const PLAIN_DOWNLOAD = `
const [base, token, concurrency, ...shas] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
let next = 0, bytes = 0;
const get = (sha) => new Promise((resolve, reject) => {
  http.get(base + sha, { agent, headers: { authorization: "Bearer " + token } }, (res) => {
    if (res.statusCode !== 200) return reject(new Error("blob " + sha + ": " + res.statusCode));
    res.on("data", (c) => (bytes += c.length));
    res.on("end", resolve);
    res.on("error", reject);
  }).on("error", reject);
});
await Promise.all(Array.from({ length: Number(concurrency) }, async () => { while (next < shas.length) await get(shas[next++]); }));
agent.destroy();
process.stdout.write(String(bytes));
`;

async function plainDownload(base: string, shas: string[]): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  const { stdout } = await execFileAsync(process.execPath, ["--input-type=module", "-e", PLAIN_DOWNLOAD, `${base}/feed/v1/bizs/${BIZ}/blobs/`, ADMIN_TOKEN, String(CONCURRENCY), ...shas], { maxBuffer: 1 << 20 });
  return { ms: performance.now() - started, bytes: Number(stdout) };
}

async function timedPull(agentPath: string, env: Record<string, string>): Promise<number> {
  const started = performance.now();
  const run = await runAgent(agentPath, ["pull"], env);
  const elapsed = performance.now() - started;
  if (run.code !== 0) throw new Error(`pull failed (${run.code}):\n${run.output.slice(-3000)}`);
  return elapsed;
}

/** Each timed step starts with no dirty pages left by the one before (writeback would slow it). */
function settle(): void {
  execFileSync("sync");
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function main(): Promise<void> {
  const work = await tempDir("edgeconf-bench-agent-");
  const log = (line: string) => process.stdout.write(line + "\n");
  const [agentPath, server] = await Promise.all([buildAgent(work.path), startServer({ dataDir: join(work.path, "server") })]);
  try {
    const admin = new Admin(server.url);
    await admin.biz(BIZ);
    await admin.service(BIZ, APP);
    log(`uploading ${FILES} files of ${FILE_SIZE} bytes...`);
    const contents = Array.from({ length: FILES }, () => randomBytes(FILE_SIZE));
    const t0 = performance.now();
    await mapLimit(contents.map((c, i) => [c, i] as const), 8, ([content, i]) =>
      admin.file(BIZ, APP, `/srv/bench/d${i % 20}/f${i}.bin`, content).then(() => undefined),
    );
    await admin.release(BIZ, APP, "B1");
    log(`uploaded and released in ${ms(performance.now() - t0)}`);
    const shas = contents.map((c) => sha256(c));
    const env = (dir: string, extra: Record<string, string> = {}) => ({
      biz: String(BIZ), app: APP, feed_addrs: `127.0.0.1:${server.port}`, token: ADMIN_TOKEN, temp_dir: dir, uid: "bench", port: "0",
      download_concurrency: String(CONCURRENCY), log_level: "WARN", ...extra,
    });

    const plain: number[] = [];
    const cold: number[] = [];
    const warm: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      settle();
      const p = await plainDownload(server.url, shas);
      if (p.bytes !== FILES * FILE_SIZE) throw new Error(`plain download got ${p.bytes} bytes`);
      plain.push(p.ms);
      const coldDir = join(work.path, `cold-${run}`);
      settle();
      cold.push(await timedPull(agentPath, env(coldDir)));
      settle();
      warm.push(await timedPull(agentPath, env(join(work.path, `warm-${run}`), { file_cache_dir: join(coldDir, "cache") })));
    }

    // One file changes: count the blob bytes that cross a proxy during the next pull.
    const changed = randomBytes(FILE_SIZE + 123);
    await admin.file(BIZ, APP, `/srv/bench/d0/f0.bin`, changed);
    await admin.release(BIZ, APP, "B2");
    let blobBytes = 0;
    const proxy = await startProxy(server.url, { blob: (_sha, body) => ((blobBytes += body.length), body) });
    await timedPull(agentPath, { ...env(join(work.path, "cold-0")), feed_addrs: proxy.addr });
    await proxy.close();

    // Idle watch (with /metrics served): everything applied, long-polling. V8's memory reducer
    // gives back the start-up peak after ~10 s of quiet; the steady state is the figure.
    const watch = startAgent(agentPath, ["watch"], { ...env(join(work.path, "cold-0")), log_level: "INFO", port: String(await freePort()) });
    await until(() => /release already applied/.test(watch.output()), "watch to settle", 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    const settlingRss = await rssOf(watch.child.pid!);
    await new Promise((r) => setTimeout(r, 15_000));
    const idleRss = await rssOf(watch.child.pid!);
    await watch.stop();

    const ratio = median(cold) / median(plain);
    log("");
    log(`agent benchmark (${FILES} files × ${FILE_SIZE} B = ${((FILES * FILE_SIZE) / 1e6).toFixed(0)} MB, concurrency ${CONCURRENCY}, median of ${RUNS})`);
    log(`  plain parallel GETs (own process)  ${ms(median(plain))}   runs: ${plain.map(ms).join(", ")}`);
    log(`  pull, cold (empty cache)   ${ms(median(cold))}   runs: ${cold.map(ms).join(", ")}   ratio to plain: ${ratio.toFixed(2)}× (target ≤ 1.2×)`);
    log(`  pull, warm (cache filled)  ${ms(median(warm))}   runs: ${warm.map(ms).join(", ")}`);
    log(`  1 of ${FILES} changed         ${blobBytes} blob bytes transferred; changed file is ${changed.length} B -> ${blobBytes === changed.length ? "equal" : "NOT EQUAL"}`);
    log(`  idle watch RSS             ${(idleRss / 1024 / 1024).toFixed(1)} MB after 18 s idle (target < 50 MB); ${(settlingRss / 1024 / 1024).toFixed(1)} MB 3 s after start`);
  } finally {
    await server.stop();
    await work.remove();
  }
}

await main();
