/**
 * The runner orders the steps of an apply, per service (consul-template's `manager/runner.go`):
 * scripts written → pre-script → fetch and verify → journal → files applied, stale ones removed
 * → post-script (rollback on failure when asked) → state → metadata.json → event to the server.
 * The steps themselves live in the phase modules: phase-hooks, phase-files, phase-record.
 */
import { newAttempt, nowOf, StepError, type Attempt, type Outcome, type RunnerDeps } from "./attempt.js";
import { writeHooks } from "./hooks.js";
import { ManifestError, parseManifest, relativeTarget, releaseIdOf, type Manifest } from "./manifest.js";
import { checkServiceFolder, cleanUp, fetchAndApply, fsysOf } from "./phase-files.js";
import { rollback } from "./rollback.js";
import type { Fsys } from "./fsys.js";
import { UnsafePathError, type SafeTree } from "./safetree.js";
import { applyKv, kvApplied } from "./kv.js";
import { checkSharedMetadata } from "./metadata.js";
import { refuseMountPoints } from "./mounts.js";
import { keyOf, UntrustedFileError } from "./integrity.js";
import { hookReport, runScript, scriptEnv, scriptFailure } from "./phase-hooks.js";
import { recordAttempt } from "./phase-record.js";
import { ServiceLock } from "./servicelock.js";
import { appPaths, appTree, hasContent, nextSeq, readJournal, readState, settled, writeJournal, writeState, type AppliedState, type AppPaths, type Journal, type JournalPhase } from "./state.js";

export type { Outcome, OutcomeStatus, RunnerDeps } from "./attempt.js";

export class Runner {
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Per service: the release applied now and the publish that brought it (null when unknown). */
  private readonly current = new Map<string, { releaseId: number | null; publishId: number | null }>();
  private inHand = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly deps: RunnerDeps) {}

  /** The release applied for `app` (as far as this process knows). */
  currentRelease(app: string): number | null {
    return this.current.get(app)?.releaseId ?? null;
  }

  /** The publish id that brought the applied release (sent as `currentPublish`), null when unknown. */
  currentPublish(app: string): number | null {
    return this.current.get(app)?.publishId ?? null;
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
      let tree: SafeTree | undefined;
      try {
        try {
          // Every folder from temp_dir down is checked (no symlink followed) and held open.
          tree = await appTree(paths, fsysOf(this.deps));
          const privateDir = await tree.dir(".edgeconf", true);
          if (privateDir === null) throw new UnsafePathError(paths.privateDir, "a file where a folder must be");
          lock = await ServiceLock.acquire({ privateDir, log: this.deps.log.with({ app }) });
        } catch (err) {
          return await refused(`cannot lock the service: ${(err as Error).message}`);
        }
        return await work(lock);
      } finally {
        await lock?.release().catch(() => undefined);
        await tree?.close().catch(() => undefined);
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
    const fsys = fsysOf(this.deps);
    const state = await readState(paths, keyOf(this.deps), fsys).catch(() => null);
    this.current.set(app, { releaseId: state?.releaseId ?? null, publishId: state?.manifest?.release?.publishId ?? null });
    const journal = await this.journal(paths);
    // Under the lock: another agent on the host may be applying this service right now.
    return this.exclusive(
      app,
      async (lock) => {
        // Read again under the lock: another agent may have finished it meanwhile.
        const current = await this.journal(paths);
        if (current instanceof UntrustedFileError) {
          // Never acted on, and nothing cleaned: the next apply records it FAILED, naming it.
          this.deps.log.error("journal refused", { app, error: current.message });
          return null;
        }
        if (!current) {
          // Temp files and kept copies of an attempt killed before its journal: the agent's own.
          await cleanUp(this.deps, paths).catch((err) => this.deps.log.warn("cannot clean the service folder", { app, error: (err as Error).message }));
          return null;
        }
        const log = this.deps.log.with({ app });
        log.warn("found an interrupted apply, finishing it", { releaseID: current.manifest.release?.id, phase: current.phase });
        return this.run(resumed(app, current, paths, lock), current.previous, current.phase);
      },
      async (message) => {
        // Nothing done: the journal stays for the next start.
        if (journal && !(journal instanceof UntrustedFileError)) return this.record({ ...newAttempt(app, journal.manifest, paths), keepJournal: true }, "FAILED", message);
        this.deps.log.warn("cannot check the service folder", { app, error: message });
        return null;
      },
    );
  }

  /** Checks and applies a manifest as received, unless that release is already on disk. */
  apply(app: string, raw: unknown): Promise<Outcome> {
    const paths = appPaths(this.deps.config.tempDir, this.deps.config.biz, app);
    const refused = (message: string) => this.record(newAttempt(app, stubManifest(this.deps.config.biz, app, releaseIdOf(raw)), paths), "FAILED", message);
    return this.exclusive(app, async (lock) => {
      const log = this.deps.log.with({ app });
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
      // A plan an earlier attempt left (its undo failed, or its folder was refused at a restart)
      // is finished or undone first: a new plan over a half-switched folder would keep the mix.
      const pending = await this.journal(paths);
      if (pending instanceof UntrustedFileError) {
        log.error("journal refused", { error: pending.message });
        return this.record({ ...newAttempt(app, manifest, paths), lock, keepJournal: true }, "FAILED", pending.message);
      }
      if (pending) {
        log.warn("an earlier apply is unfinished, finishing it first", { releaseID: pending.manifest.release?.id, phase: pending.phase });
        const earlier = await this.run(resumed(app, pending, paths, lock), pending.previous, pending.phase);
        if (await this.journal(paths)) return earlier;
      }
      let state: AppliedState | null;
      try {
        state = await readState(paths, keyOf(this.deps), fsysOf(this.deps), log);
      } catch (err) {
        // A link where state.json is, or the disk refusing a read: FAILED, nothing touched.
        log.error("cannot read the service's state", { error: (err as Error).message });
        return refused(`cannot read the service's state: ${(err as Error).message}`);
      }
      // A state whose attempt never closed (no journal is left) is not trusted as applied: it is
      // a copy made while that attempt ran, put back, or a crash right after its journal went.
      if (state && !settled(state)) log.warn("the state's apply did not finish; the release is applied again", { releaseID: state.releaseId });
      else if (state && (await this.alreadyApplied(paths, state, manifest))) {
        if (state.unrecorded) {
          // On disk, but not a success until its event is in metadata.json (phase-record.ts).
          log.warn("release already applied but its event was not recorded; recording it now", { releaseID: manifest.release.id });
          return this.record({ ...newAttempt(app, manifest, paths), lock }, "SUCCESS", "");
        }
        log.info("release already applied", { releaseID: manifest.release.id, version: manifest.release.name });
        this.current.set(app, { releaseId: manifest.release.id, publishId: manifest.release.publishId ?? null });
        return { app, status: "SKIPPED", releaseId: manifest.release.id, message: "" };
      }
      return this.run({ ...newAttempt(app, manifest, paths), lock, seq: nextSeq(state, nowOf(this.deps)), base: state?.seq ?? 0 }, state, "pre");
    }, refused);
  }

  /** Same release, its post-script succeeded (design invariant 5), and every file on disk. */
  private async alreadyApplied(paths: AppPaths, state: AppliedState, manifest: Manifest): Promise<boolean> {
    if (state.releaseId !== manifest.release?.id || state.postFailed) return false;
    if (manifest.configType === "kv") return kvApplied(paths, this.deps.fsys, state.kv);
    const tree = await appTree(paths, fsysOf(this.deps));
    try {
      for (const file of manifest.files) {
        const rel = relativeTarget(file);
        const path = await tree.path(`files/${rel}`);
        if (!path || !(await hasContent(tree.fsys, path, file.sha256, file.size, state.files[rel]))) return false;
      }
      return true;
    } catch {
      return false; // a link or special file in the way: the apply names it
    } finally {
      await tree.close();
    }
  }

  /**
   * Runs the apply from `phase`: "pre" is a fresh apply; "apply", "switch" and "post" resume a
   * journal (the pre-script already ran before the crash; "switch" resumes its swap plan).
   */
  private async run(attempt: Attempt, previous: AppliedState | null, phase: "pre" | JournalPhase): Promise<Outcome> {
    const { manifest, paths, app } = attempt;
    const release = manifest.release!;
    const log = this.deps.log.with({ app });
    const env = scriptEnv(this.deps, attempt, release.name, release.id);
    let message = "";
    let status: "SUCCESS" | "FAILED" = "SUCCESS";
    const unsafe = (err: unknown) => Promise.reject(err instanceof UnsafePathError ? new StepError(err.message) : err);
    // A resumed plan may have switched part of the files, or its post-script not have run: until
    // it is finished or undone, its journal stays (a check that refuses the folder now must not
    // leave a mix with no plan, nor a release in place whose post-script never ran).
    if (phase !== "pre") attempt.keepJournal = true;
    try {
      // A fresh attempt only: a resumed journal must get to its own undo, never stop before it.
      if (phase === "pre") {
        await checkSharedMetadata(paths, fsysOf(this.deps)).catch(unsafe);
        await refuseMountPoints(paths.appDir, this.deps).catch(unsafe);
      }
      if (manifest.configType === "kv") {
        await applyKv(this.deps, attempt);
        return this.record(attempt, "SUCCESS", "");
      }
      if (manifest.configType && manifest.configType !== "file") {
        throw new StepError(`service ${app} is of type ${manifest.configType}; the agent applies file and kv services only`);
      }
      // Nothing is touched when a link or special file stands anywhere in the service folder.
      await checkServiceFolder(this.deps, paths).catch(unsafe);
      await writeHooks(paths.appDir, manifest.hooks, env);
      if (phase === "pre") {
        const t = Date.now();
        const pre = await runScript(this.deps, attempt, "pre", manifest, env);
        attempt.timings.preHookMs = Date.now() - t;
        attempt.preHook = pre && hookReport(pre);
        if (pre && pre.exitCode !== 0) throw new StepError(scriptFailure(this.deps, "pre", pre));
        // A pre-script running as root can mount: looked for again (links are, in fetchAndApply).
        await refuseMountPoints(paths.appDir, this.deps).catch(unsafe);
      }
      if (phase !== "post") {
        const resume = phase === "switch" ? attempt.plan : undefined;
        const validateHook = manifest.hooks.validate;
        // The staged whole version is checked before any file is swapped; a refusal swaps nothing.
        const validate = validateHook
          ? async (stagedDir: string) => {
              const t = Date.now();
              const result = await runScript(this.deps, attempt, "validate", manifest, { ...env, bk_bscp_staged_dir: stagedDir, edgeconf_staged_dir: stagedDir });
              attempt.timings.validateHookMs = Date.now() - t;
              if (result && result.exitCode !== 0) throw new StepError(scriptFailure(this.deps, "validate", result, validateHook));
            }
          : undefined;
        await fetchAndApply(this.deps, attempt, previous, manifest, { resume, validate });
        // Bookkeeping only: if it cannot be saved, the "switch" journal stays, and resuming it
        // after a crash finds every file switched and goes on to the post-script just the same.
        const journal = { phase: "post" as const, manifest, previous, startedAt: nowOf(this.deps).toISOString(), plan: attempt.plan, seq: attempt.seq, base: attempt.base };
        await writeJournal(paths, keyOf(this.deps), journal, fsysOf(this.deps)).catch((err) => log.warn("cannot save the journal's post phase", { error: (err as Error).message }));
      }
      const t = Date.now();
      const post = await runScript(this.deps, attempt, "post", manifest, env);
      attempt.keepJournal = false; // the post-script ran: what is left is its outcome
      attempt.timings.postHookMs = Date.now() - t;
      attempt.postHook = post && hookReport(post);
      if (post && post.exitCode !== 0) {
        status = "FAILED";
        message = scriptFailure(this.deps, "post", post);
        if (this.deps.config.onPostFailure === "rollback") message += await rollback(this.deps, attempt, previous, await readState(paths, keyOf(this.deps), fsysOf(this.deps)));
        else await markPostFailed(paths, this.deps);
      }
    } catch (err) {
      status = "FAILED";
      message = (err as Error).message;
      if (!(err instanceof StepError)) log.error("apply failed", { releaseID: release.id, error: message });
      if (phase !== "pre" && attempt.keepJournal && !message.includes(paths.journalPath)) {
        message += `; the interrupted apply is not finished: its journal ${paths.journalPath} is kept, and finished at a later start once this is fixed`;
      }
    }
    return this.record(attempt, status, message);
  }

  /**
   * The journal of an interrupted apply: null when there is none (or it cannot be read), the
   * refusal when it is not the agent's or its plan breaks the rules (never acted on).
   */
  private journal(paths: AppPaths): Promise<Journal | UntrustedFileError | null> {
    return readJournal(paths, keyOf(this.deps), fsysOf(this.deps)).catch((err) => (err instanceof UntrustedFileError ? err : null));
  }

  private async record(attempt: Attempt, status: "SUCCESS" | "FAILED", message: string): Promise<Outcome> {
    const { outcome, current, currentPublish } = await recordAttempt(this.deps, attempt, status, message);
    this.current.set(attempt.app, { releaseId: current, publishId: currentPublish });
    return outcome;
  }
}

/** The attempt that finishes (or undoes) `journal`: its number, its plan, its journal kept until then. */
function resumed(app: string, journal: Journal, paths: AppPaths, lock: ServiceLock): Attempt {
  // A journal of an agent that predates numbers (checkFresh let it through: the state has none either).
  const seq = journal.seq ?? 1;
  return { ...newAttempt(app, journal.manifest, paths), lock, plan: journal.plan, seq, base: journal.seq === undefined ? 0 : (journal.base ?? 0), journaled: true };
}

/** Stands for a release refused before it could be read, so the attempt is still recorded. */
function stubManifest(biz: number, app: string, id: number | null): Manifest {
  return { biz, app, configType: "file", release: id === null ? null : { id, name: "" }, files: [], hooks: { pre: null, post: null, validate: null } };
}

/** The files stay (report), but the release is not applied: the next pull or retry runs it again. */
async function markPostFailed(paths: AppPaths, deps: RunnerDeps): Promise<void> {
  const state = await readState(paths, keyOf(deps), fsysOf(deps));
  if (state) await writeState(paths, keyOf(deps), { ...state, postFailed: true }, fsysOf(deps));
}
