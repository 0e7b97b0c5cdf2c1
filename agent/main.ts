/**
 * edgeconf-agent: `pull` (init container) and `watch` (sidecar). Exit codes: `EXIT` in cli.ts
 * (0 ok, 1 apply failed, 2 usage, 3 feed, 4 no release, 5 local error).
 */
import { realpathSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import { BlobCache, ensurePrivateDir } from "./cache.js";
import { EXIT, helpText, parseCommandLine, usageError } from "./cli.js";
import { ConfigError, banner, loadConfig, AGENT_VERSION, type AgentConfig } from "./config.js";
import { Fetcher } from "./download.js";
import { makeDirs } from "./fsys.js";
import { Backoff, FeedClient, abortableSleep, watchService, type Mode } from "./feed.js";
import { closeIdleSockets } from "./http.js";
import { createLogger, parseLevel, type Logger } from "./log.js";
import { kvHttpHandler, runGet } from "./kv-cli.js";
import { Metrics } from "./metrics.js";
import { Runner, type Outcome } from "./runner.js";

export { EXIT } from "./cli.js";

const PULL_ATTEMPTS = 3;

interface Agent {
  config: AgentConfig;
  log: Logger;
  feed: FeedClient;
  cache: BlobCache;
  runner: Runner;
  metrics: Metrics;
}

function build(config: AgentConfig, mode: Mode, log: Logger): Agent {
  const feed = new FeedClient({ addrs: config.feedAddrs, token: config.token, biz: config.biz, uid: config.uid, labels: config.labels, mode, log });
  const cache = new BlobCache(config.cacheDir, config.cacheThresholdBytes, config.cacheEnabled, log);
  const fetcher = new Fetcher({ feed, cache, concurrency: config.downloadConcurrency, log });
  const metrics = new Metrics();
  const runner = new Runner({ config, feed, fetcher, log, mode, metrics });
  return { config, log, feed, cache, runner, metrics };
}

/** A local failure (disk, permissions) with the exit code 5, never retried as a feed error. */
class LocalError extends Error {}

/**
 * Checks before any request that the agent can write where it must (temp_dir, the cache folder):
 * a local problem is one clear line and exit 5, not three "feed request failed" retries.
 */
async function checkLocal(config: AgentConfig, typed: Map<string, string>): Promise<void> {
  const name = (setting: string) => typed.get(setting) ?? setting;
  const folders = [{ path: config.tempDir, setting: "temp_dir" }];
  if (config.cacheEnabled) folders.push({ path: config.cacheDir, setting: "file_cache_dir" });
  for (const { path, setting } of folders) {
    const probe = join(path, `.edgeconf-probe-${process.pid}`);
    try {
      // The cache is the agent's own: never a link to somewhere else (made and kept 0700).
      if (setting === "file_cache_dir") await ensurePrivateDir(path);
      else await makeDirs(path);
      await writeFile(probe, "");
      await rm(probe, { force: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new LocalError(`cannot write ${name(setting)} ${path}: ${e.code ?? ""} ${e.message.replace(/^\w+: /, "")}`.replace(/\s+/g, " "));
    }
  }
}

/** One pass for one service: finish an interrupted apply, ask for the target, apply it. */
async function pullService(agent: Agent, app: string): Promise<number> {
  const { runner, feed, log } = agent;
  const local = (err: unknown) => {
    log.error("pull failed: local error", { app, error: (err as Error).message });
    return EXIT.LOCAL;
  };
  try {
    await runner.start(app);
  } catch (err) {
    return local(err);
  }
  const backoff = new Backoff();
  let answer;
  for (let attempt = 1; ; attempt++) {
    try {
      // The whole manifest at once (`full`), while reporting the release recorded in state:
      // the server never shows this host as having none in between.
      answer = await feed.release(app, { current: runner.currentRelease(app), currentPublish: runner.currentPublish(app), full: true, wait: 0 });
      break;
    } catch (err) {
      const message = (err as Error).message;
      const status = (err as { status?: number }).status;
      if ((status !== undefined && status < 500) || attempt >= PULL_ATTEMPTS) {
        log.error("pull failed: cannot get the release from the feed", { app, error: message });
        return EXIT.FEED;
      }
      const delay = backoff.next();
      log.warn("feed request failed, retrying", { app, attempt, error: message, retryInMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  let outcome: Outcome;
  try {
    // Asked with `full`, "not modified" means: no release targets this client.
    outcome = answer.changed
      ? await runner.apply(app, answer.manifest)
      : { app, status: "NONE", releaseId: null, message: "no release is published for this client" };
  } catch (err) {
    return local(err);
  }
  await feed.heartbeat(app, runner.currentRelease(app)).catch(() => undefined);
  if (outcome.status === "NONE") {
    log.error("pull failed: no release is published for this client", { app });
    return EXIT.NO_RELEASE;
  }
  return outcome.status === "FAILED" ? EXIT.APPLY_FAILED : EXIT.OK;
}

async function pull(agent: Agent): Promise<number> {
  await agent.cache.cleanup().catch((err) => agent.log.warn("cache cleanup failed", { error: (err as Error).message }));
  const codes = await Promise.all(agent.config.apps.map((app) => pullService(agent, app)));
  const failed = codes.find((code) => code !== EXIT.OK);
  if (failed === undefined) agent.log.info("pull finished", { apps: agent.config.apps.join(",") });
  else agent.log.error("pull finished with failures", { apps: agent.config.apps.join(","), exitCode: failed });
  return failed ?? EXIT.OK;
}

/**
 * A sidecar idles most of its life and its hot paths (hashing, streams, JSON) are native: the
 * optimising compilers would cost ~5 MB of resident memory for no gain.
 */
function trimCompilers(): void {
  v8.setFlagsFromString("--no-opt");
  v8.setFlagsFromString("--no-maglev");
}

async function watch(agent: Agent): Promise<number> {
  trimCompilers();
  const { config, log, runner, feed, metrics } = agent;
  const controller = new AbortController();
  const stopCleanup = await agent.cache.startAutoCleanup();
  let server: { port: number; close: () => Promise<void> } | null = null;
  if (config.port > 0) {
    const kv = kvHttpHandler({ tempDir: config.tempDir, biz: config.biz, apps: config.apps, from: config.kvHttp, secrets: config.kvHttpSecrets });
    server = await metrics.serve(config.port, "0.0.0.0", kv);
    log.info("serving /healthz and /metrics", { port: server.port, kv: config.kvHttp });
  }
  metrics.describe("edgeconf_agent_polls_total", "counter", "Feed long-poll answers");
  metrics.describe("edgeconf_agent_feed_errors_total", "counter", "Failed feed requests");
  metrics.describe("edgeconf_agent_applies_total", "counter", "Apply attempts by status");
  metrics.describe("edgeconf_agent_current_release", "gauge", "Release id applied");
  metrics.describe("edgeconf_agent_downloaded_bytes_total", "counter", "Blob bytes downloaded");
  metrics.describe("edgeconf_agent_last_apply_timestamp_seconds", "gauge", "Time of the last apply attempt");
  const onSignal = (signal: string) => {
    if (controller.signal.aborted) return;
    log.info(`received ${signal}, finishing the apply in hand`);
    controller.abort();
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
  const heartbeat = setInterval(() => {
    for (const app of config.apps) {
      feed.heartbeat(app, runner.currentRelease(app)).catch((err) => log.debug("heartbeat failed", { app, error: (err as Error).message }));
    }
  }, 60_000);
  heartbeat.unref();
  await Promise.all(
    config.apps.map(async (app) => {
      await runner.start(app);
      await watchService({
        app,
        feed,
        log,
        signal: controller.signal,
        waitSeconds: config.waitSeconds,
        recheckMs: config.recheckMs,
        retryBackoff: new Backoff(config.retryMs, Math.max(300_000, config.retryMs)),
        current: () => runner.currentRelease(app),
        currentPublish: () => runner.currentPublish(app),
        onPoll: () => {
          metrics.inc("edgeconf_agent_polls_total", { app });
          metrics.setHealth(true);
        },
        onError: (err) => {
          metrics.inc("edgeconf_agent_feed_errors_total", { app });
          metrics.setHealth(true, err.message);
        },
        onManifest: async (manifest, recheck) => {
          const outcome = await runner.apply(app, manifest);
          if (!recheck || outcome.status !== "SKIPPED") {
            feed.heartbeat(app, runner.currentRelease(app)).catch(() => undefined);
          }
          return outcome.status !== "FAILED";
        },
        sleep: abortableSleep,
      });
    }),
  );
  await runner.idle();
  clearInterval(heartbeat);
  stopCleanup();
  await server?.close();
  log.info("watch stopped");
  return EXIT.OK;
}

/** Runs the command line `argv` (without node and script); resolves with the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  // `get kv` reads the disk only: none of the feed's settings apply to it.
  if (argv[0] === "get") return runGet(argv.slice(1), env);
  let config: AgentConfig;
  let command: "pull" | "watch";
  let typed: Map<string, string>;
  try {
    const line = parseCommandLine(argv);
    if (line.kind === "version") {
      process.stdout.write(`edgeconf-agent v${AGENT_VERSION}\n`);
      return EXIT.OK;
    }
    if (line.kind === "help") {
      process.stdout.write(helpText(line.topic) + "\n");
      return EXIT.OK;
    }
    command = line.command;
    typed = line.typed;
    config = loadConfig(line.flags, env, command, typed);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const first = argv.find((a) => !a.startsWith("-"));
    process.stderr.write(usageError(err.message, first) + "\n");
    return EXIT.USAGE;
  }
  const log = createLogger({ level: parseLevel(config.logLevel) });
  process.stderr.write(banner(config, command) + "\n");
  try {
    await checkLocal(config, typed);
  } catch (err) {
    if (!(err instanceof LocalError)) throw err;
    log.error(err.message);
    return EXIT.LOCAL;
  }
  log.info("instance fingerprint", { fingerprint: config.uid });
  const agent = build(config, command, log);
  try {
    return command === "pull" ? await pull(agent) : await watch(agent);
  } finally {
    closeIdleSockets();
  }
}

/** True when this module is the program (`node agent.mjs`, any file name or symlink; `tsx agent/main.ts`), not an import. */
function isEntry(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`edgeconf-agent: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
