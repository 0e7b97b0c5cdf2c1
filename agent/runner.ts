/**
 * The runner orders the steps of an apply, per service (consul-template's `manager/runner.go`):
 * scripts written → pre-script → fetch and verify → journal → files applied, stale ones removed
 * → post-script (rollback on failure when asked) → state → metadata.json → event to the server.
 */
import { mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { applyFiles, listFiles, OwnerResolver, pruneEmptyDirs, stageFile, targetPath, type ApplyResult } from "./apply.js";
import { AGENT_VERSION, type AgentConfig } from "./config.js";
import type { Fetcher } from "./download.js";
import type { FeedClient, Mode } from "./feed.js";
import { mapLimit, sha256File } from "./fsutil.js";
import { hookEnv, hookFileName, runHook, scriptEnvironment, writeHooks, type HookName, type HookResult, type SpawnFn } from "./hooks.js";
import type { Logger } from "./log.js";
import { ManifestError, parseManifest, relativeTarget, releaseIdOf, type Manifest, type ManifestFile } from "./manifest.js";
import { appendMetadata, eventTime, type EventStatus } from "./metadata.js";
import type { Metrics } from "./metrics.js";
import { ServiceLock } from "./servicelock.js";
import {
  appPaths,
  clearJournal,
  hasContent,
  readJournal,
  readState,
  writeJournal,
  writeState,
  type AppliedState,
  type AppPaths,
} from "./state.js";

export type OutcomeStatus = "SUCCESS" | "FAILED" | "SKIPPED" | "NONE";

export interface Outcome {
  app: string;
  status: OutcomeStatus;
  releaseId: number | null;
  message: string;
}

export interface RunnerDeps {
  config: AgentConfig;
  feed: Pick<FeedClient, "postEvent">;
  fetcher: Fetcher;
  log: Logger;
  mode: Mode;
  metrics?: Metrics;
  spawn?: SpawnFn;
  now?: () => Date;
  /** The environment scripts inherit (minus the token); default process.env. */
  env?: NodeJS.ProcessEnv;
}

interface HookReport {
  exitCode: number;
  durationMs: number;
  outputTail: string;
}

/** Everything gathered during one apply, for metadata.json and the server's event. */
interface Attempt {
  app: string;
  manifest: Manifest;
  paths: AppPaths;
  /** This host's hold on the service while the attempt runs (records the script's process group). */
  lock?: ServiceLock;
  started: number;
  preHook: HookReport | null;
  postHook: HookReport | null;
  timings: Record<string, number>;
  bytesDownloaded: number;
}

class StepError extends Error {}

export class Runner {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly current = new Map<string, number | null>();
  private inHand = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: RunnerDeps) {}

  private get now(): () => Date {
    return this.deps.now ?? (() => new Date());
  }

  /** The release applied for `app` (as far as this process knows). */
  currentRelease(app: string): number | null {
    return this.current.get(app) ?? null;
  }

  /** Resolves once no apply is in hand (SIGTERM waits for this). */
  idle(): Promise<void> {
    if (this.inHand === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Applies are serialised per service, in this process and (through `.edgeconf/lock.json`) with
   * other agents on the host; different services run side by side. When the service cannot be
   * locked (its state folder is a symlink, say), `refused` answers instead of `work`.
   */
  private exclusive<T>(app: string, work: (lock: ServiceLock) => Promise<T>, refused: (message: string) => Promise<T>): Promise<T> {
    const previous = this.locks.get(app) ?? Promise.resolve();
    const paths = appPaths(this.deps.config.tempDir, this.deps.config.biz, app);
    const next = previous.catch(() => undefined).then(async () => {
      this.inHand++;
      let lock: ServiceLock | undefined;
      try {
        try {
          await mkdir(paths.appDir, { recursive: true });
          lock = await ServiceLock.acquire({ privateDir: paths.privateDir, log: this.deps.log.with({ app }) });
        } catch (err) {
          return await refused(`cannot lock the service: ${(err as Error).message}`);
        }
        return await work(lock);
      } finally {
        await lock?.release().catch(() => undefined);
        this.inHand--;
        if (this.inHand === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
      }
    });
    this.locks.set(app, next);
    return next;
  }

  /** Reads the saved state, and finishes an apply a crash interrupted (journal present). */
  async start(app: string): Promise<Outcome | null> {
    const paths = appPaths(this.deps.config.tempDir, this.deps.config.biz, app);
    const state = await readState(paths);
    this.current.set(app, state?.releaseId ?? null);
    const journal = await readJournal(paths);
    if (!journal) return null;
    return this.exclusive(
      app,
      async (lock) => {
        // Read again under the lock: another agent may have finished it meanwhile.
        const current = await readJournal(paths);
        if (!current) return null;
        const log = this.deps.log.with({ app });
        log.warn("found an interrupted apply, finishing it", { releaseID: current.manifest.release?.id, phase: current.phase });
        const attempt = { ...this.newAttempt(app, current.manifest, paths), lock };
        return this.run(attempt, current.previous, current.phase);
      },
      (message) => this.record(this.newAttempt(app, journal.manifest, paths), "FAILED", message),
    );
  }

  /** Checks and applies a manifest as received, unless that release is already on disk. */
  apply(app: string, raw: unknown): Promise<Outcome> {
    const refused = (message: string) => this.record(this.newAttempt(app, stubManifest(this.deps.config.biz, app, releaseIdOf(raw)), appPaths(this.deps.config.tempDir, this.deps.config.biz, app)), "FAILED", message);
    return this.exclusive(app, async (lock) => {
      const log = this.deps.log.with({ app });
      const paths = appPaths(this.deps.config.tempDir, this.deps.config.biz, app);
      let manifest: Manifest;
      try {
        manifest = parseManifest(raw);
      } catch (err) {
        if (!(err instanceof ManifestError)) throw err;
        // Refused before anything is written: recorded as a FAILED attempt of that release.
        log.error("release refused", { releaseID: releaseIdOf(raw), reason: err.message });
        return refused(err.message);
      }
      if (!manifest.release) {
        log.info("no release is published for this client");
        return { app, status: "NONE", releaseId: null, message: "no release is published for this client" };
      }
      const state = await readState(paths);
      if (state && (await this.alreadyApplied(paths, state, manifest))) {
        log.info("release already applied", { releaseID: manifest.release.id, version: manifest.release.name });
        this.current.set(app, manifest.release.id);
        return { app, status: "SKIPPED", releaseId: manifest.release.id, message: "" };
      }
      return this.run({ ...this.newAttempt(app, manifest, paths), lock }, state, "pre");
    }, refused);
  }

  private newAttempt(app: string, manifest: Manifest, paths: AppPaths): Attempt {
    return { app, manifest, paths, started: Date.now(), preHook: null, postHook: null, timings: {}, bytesDownloaded: 0 };
  }

  /** Same release, its post-script succeeded (design invariant 5), and every file on disk. */
  private async alreadyApplied(paths: AppPaths, state: AppliedState, manifest: Manifest): Promise<boolean> {
    if (state.releaseId !== manifest.release?.id || state.postFailed) return false;
    for (const file of manifest.files) {
      const rel = relativeTarget(file);
      if (!(await hasContent(targetPath(paths.filesDir, file), file.sha256, file.size, state.files[rel]))) return false;
    }
    return true;
  }

  private env(attempt: Attempt, versionName: string, releaseId: number | null): Record<string, string> {
    const { config } = this.deps;
    return hookEnv({ tempDir: config.tempDir, biz: config.biz, app: attempt.app, appDir: attempt.paths.appDir, versionName, releaseId });
  }

  /** What a script's process gets: the agent's environment without its token, plus `vars`. */
  private scriptEnv(vars: Record<string, string>): Record<string, string> {
    return scriptEnvironment(this.deps.env ?? process.env, [this.deps.config.token], vars);
  }

  private async hook(attempt: Attempt, which: HookName, manifest: Manifest, env: Record<string, string>): Promise<HookResult | null> {
    const hook = manifest.hooks[which];
    if (!hook) return null;
    const log = this.deps.log.with({ app: attempt.app });
    const { lock } = attempt;
    const timeoutMs = this.deps.config.hookTimeoutMs;
    const result = await runHook({
      content: hook.content,
      type: hook.type,
      displayPath: join(attempt.paths.hooksDir, hookFileName(which, hook.type)),
      runDir: join(attempt.paths.privateDir, "run"),
      name: `${which}_hook`,
      cwd: attempt.paths.appDir,
      env: this.scriptEnv(env),
      timeoutMs,
      spawn: this.deps.spawn,
      onSpawn: (pid) => lock?.hookStarted(which, pid, timeoutMs),
    });
    await lock?.hookEnded();
    const fields = { script: `${which}_hook`, exitCode: result.exitCode, durationMs: result.durationMs, output: result.output.trimEnd() };
    if (result.exitCode === 0) log.info("exec hook success", fields);
    else log.error(result.timedOut ? "exec hook timed out, process group killed" : "exec hook failed", fields);
    return result;
  }

  private hookFailure(which: HookName, result: HookResult): string {
    const name = which === "pre" ? "pre-script" : "post-script";
    if (result.timedOut) return `${name} timed out after ${this.deps.config.hookTimeoutMs / 1000}s and was killed`;
    const last = result.outputTail.trim().split("\n").pop() ?? "";
    return `${name} exited with code ${result.exitCode}${last ? `: ${last.slice(0, 200)}` : ""}`;
  }

  /**
   * Runs the apply from `phase`: "pre" is a fresh apply; "apply" and "post" resume a journal
   * (the pre-script already ran before the crash).
   */
  private async run(attempt: Attempt, previous: AppliedState | null, phase: "pre" | "apply" | "post"): Promise<Outcome> {
    const { manifest, paths, app } = attempt;
    const release = manifest.release!;
    const log = this.deps.log.with({ app });
    const env = this.env(attempt, release.name, release.id);
    let message = "";
    let status: "SUCCESS" | "FAILED" = "SUCCESS";
    try {
      if (manifest.configType && manifest.configType !== "file") {
        throw new StepError(`service ${app} is of type ${manifest.configType}; the agent applies file services only`);
      }
      await writeHooks(paths.appDir, manifest.hooks, env);
      if (phase === "pre") {
        const t = Date.now();
        const pre = await this.hook(attempt, "pre", manifest, env);
        attempt.timings.preHookMs = Date.now() - t;
        attempt.preHook = pre && report(pre);
        if (pre && pre.exitCode !== 0) throw new StepError(this.hookFailure("pre", pre));
      }
      if (phase !== "post") {
        await this.fetchAndApply(attempt, previous);
        await writeJournal(paths, { phase: "post", manifest, previous, startedAt: this.now().toISOString() });
      }
      const t = Date.now();
      const post = await this.hook(attempt, "post", manifest, env);
      attempt.timings.postHookMs = Date.now() - t;
      attempt.postHook = post && report(post);
      if (post && post.exitCode !== 0) {
        status = "FAILED";
        message = this.hookFailure("post", post);
        if (this.deps.config.onPostFailure === "rollback") message += await this.rollback(attempt, previous);
        else await this.markPostFailed(paths);
      }
    } catch (err) {
      status = "FAILED";
      message = (err as Error).message;
      if (!(err instanceof StepError)) log.error("apply failed", { releaseID: release.id, error: message });
    }
    await rm(paths.stagingDir, { recursive: true, force: true });
    return this.record(attempt, status, message);
  }

  private async fetchAndApply(attempt: Attempt, previous: AppliedState | null): Promise<ApplyResult> {
    const { manifest, paths } = attempt;
    const log = this.deps.log.with({ app: attempt.app });
    const records = previous?.files ?? {};
    let t = Date.now();
    const onDisk = new Set(await listFiles(paths.filesDir));
    const present = await mapLimit(manifest.files, 16, async (file) => {
      const rel = relativeTarget(file);
      return onDisk.has(rel) && (await hasContent(targetPath(paths.filesDir, file), file.sha256, file.size, records[rel]));
    });
    const needs = manifest.files.filter((_, i) => !present[i]);
    const bySha = new Map<string, ManifestFile[]>();
    for (const file of needs) bySha.set(file.sha256, [...(bySha.get(file.sha256) ?? []), file]);
    // Each verified blob is copied at once to hidden temp files beside its targets, while
    // other downloads run; the apply step is then only renames. Nothing visible changes yet.
    const staged = new Map<string, string>();
    const owners = new OwnerResolver();
    const stage = async (sha: string, source: string, data?: Buffer) => {
      for (const file of bySha.get(sha) ?? []) {
        const tmp = await stageFile(paths.filesDir, file, data ?? source, log, owners);
        if (tmp) staged.set(relativeTarget(file), tmp);
      }
    };
    let fetched;
    try {
      fetched = await this.deps.fetcher.fetchAll(needs, paths.stagingDir, stage);
    } catch (err) {
      await Promise.all([...staged.values()].map((tmp) => rm(tmp, { force: true })));
      await pruneEmptyDirs(paths.filesDir, false);
      throw new StepError(`download failed: ${(err as Error).message}`);
    }
    attempt.bytesDownloaded = fetched.bytesDownloaded;
    attempt.timings.downloadMs = Date.now() - t;
    log.info("files fetched", {
      needed: needs.length,
      fromCache: fetched.fromCache,
      downloaded: fetched.downloaded,
      bytes: fetched.bytesDownloaded,
    });
    this.deps.metrics?.inc("edgeconf_agent_downloaded_bytes_total", { app: attempt.app }, fetched.bytesDownloaded);
    t = Date.now();
    await rm(paths.previousDir, { recursive: true, force: true });
    await writeJournal(paths, { phase: "apply", manifest, previous, startedAt: this.now().toISOString() });
    const result = await applyFiles({
      filesDir: paths.filesDir,
      files: manifest.files,
      sources: fetched.sources,
      previous: records,
      // Hard links of replaced files: what a rollback restores byte for byte.
      backupDir: this.deps.config.onPostFailure === "rollback" ? paths.previousDir : undefined,
      staged,
      owners,
      log,
    });
    attempt.timings.applyMs = Date.now() - t;
    log.info("files applied", { written: result.written, unchanged: result.unchanged, removed: result.removed });
    await writeState(paths, this.stateOf(manifest, result.records));
    return result;
  }

  /** The files stay (report), but the release is not applied: the next pull or retry runs it again. */
  private async markPostFailed(paths: AppPaths): Promise<void> {
    const state = await readState(paths);
    if (state) await writeState(paths, { ...state, postFailed: true });
  }

  private stateOf(manifest: Manifest, files: AppliedState["files"]): AppliedState {
    return {
      releaseId: manifest.release?.id ?? null,
      releaseName: manifest.release?.name ?? "",
      manifest,
      files,
      appliedAt: this.now().toISOString(),
    };
  }

  /** Puts the previous release's files back byte for byte and runs its post-script again. */
  private async rollback(attempt: Attempt, previous: AppliedState | null): Promise<string> {
    const { paths } = attempt;
    const log = this.deps.log.with({ app: attempt.app });
    if (!previous?.manifest?.release) {
      log.warn("no previous release to roll back to");
      return "; no previous release to roll back to";
    }
    const prev = previous.manifest;
    log.warn("rolling back", { to: prev.release!.name, releaseID: prev.release!.id });
    try {
      const state = await readState(paths);
      const sources = new Map<string, string>();
      const needs = [];
      for (const file of prev.files) {
        const backup = join(paths.previousDir, file.sha256);
        const ok = await stat(backup).then(() => sha256File(backup).then((h) => h === file.sha256), () => false);
        if (ok) sources.set(file.sha256, backup);
        else needs.push(file);
      }
      const fetched = await this.deps.fetcher.fetchAll(needs, paths.stagingDir);
      for (const [sha, path] of fetched.sources) sources.set(sha, path);
      const result = await applyFiles({ filesDir: paths.filesDir, files: prev.files, sources, previous: state?.files ?? {}, log });
      await writeState(paths, this.stateOf(prev, result.records));
      const env = this.env(attempt, prev.release!.name, prev.release!.id);
      await writeHooks(paths.appDir, prev.hooks, env);
      const post = await this.hook(attempt, "post", prev, env);
      const tail = post && post.exitCode !== 0 ? ` (its post-script failed too: exit ${post.exitCode})` : "";
      return `; rolled back to ${prev.release!.name}${tail}`;
    } catch (err) {
      log.error("rollback failed", { error: (err as Error).message });
      return `; rollback to ${prev.release!.name} failed: ${(err as Error).message}`;
    }
  }

  /** metadata.json (both files), the journal cleared, the event sent to the server. */
  private async record(attempt: Attempt, status: "SUCCESS" | "FAILED", message: string): Promise<Outcome> {
    const { config, log: rootLog, metrics } = this.deps;
    const { app, manifest, paths } = attempt;
    const log = rootLog.with({ app });
    const releaseId = manifest.release?.id ?? null;
    const event = { releaseID: releaseId, status, message, eventTime: eventTime(this.now()) };
    await appendMetadata(config.tempDir, config.biz, app, event);
    log.info("append event metadata to metadata.json success", { event: JSON.stringify(event) });
    await clearJournal(paths);
    await rm(paths.previousDir, { recursive: true, force: true });
    const state = await readState(paths);
    this.current.set(app, state?.releaseId ?? null);
    attempt.timings.totalMs = Date.now() - attempt.started;
    metrics?.inc("edgeconf_agent_applies_total", { app, status });
    metrics?.set("edgeconf_agent_current_release", { app }, state?.releaseId ?? 0);
    metrics?.set("edgeconf_agent_last_apply_timestamp_seconds", { app, status }, Math.floor(Date.now() / 1000));
    if (status === "SUCCESS") log.info("pull files success", { releaseID: releaseId, version: manifest.release?.name });
    else log.error("pull files failed", { releaseID: releaseId, reason: message });
    await this.report(attempt, status, message);
    return { app, status, releaseId, message };
  }

  private async report(attempt: Attempt, status: EventStatus, message: string): Promise<void> {
    const { config, mode } = this.deps;
    const event = {
      uid: config.uid,
      releaseId: attempt.manifest.release?.id ?? null,
      status,
      message,
      preHook: attempt.preHook,
      postHook: attempt.postHook,
      filesCount: attempt.manifest.files.length,
      bytesDownloaded: attempt.bytesDownloaded,
      timings: attempt.timings,
      agentVersion: AGENT_VERSION,
      mode,
      labels: config.labels,
    };
    try {
      await this.deps.feed.postEvent(attempt.app, event);
    } catch (err) {
      this.deps.log.warn("report event to server failed", { app: attempt.app, error: (err as Error).message });
    }
  }
}

/** Stands for a release refused before it could be read, so the attempt is still recorded. */
function stubManifest(biz: number, app: string, id: number | null): Manifest {
  return { biz, app, configType: "file", release: id === null ? null : { id, name: "" }, files: [], hooks: { pre: null, post: null } };
}

function report(result: HookResult): HookReport {
  return { exitCode: result.exitCode, durationMs: result.durationMs, outputTail: result.outputTail };
}
