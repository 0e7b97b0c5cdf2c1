/**
 * What the runner's phases share: the runner's dependencies, one apply attempt in progress and
 * its outcome. Each phase (agent/phase-*.ts) is a set of functions over these.
 */
import type { AgentConfig } from "./config.js";
import type { Fetcher } from "./download.js";
import type { FeedClient, Mode } from "./feed.js";
import type { Fsys } from "./fsys.js";
import type { SpawnFn } from "./hooks.js";
import type { Logger } from "./log.js";
import type { Manifest } from "./manifest.js";
import type { Metrics } from "./metrics.js";
import type { MountTable } from "./mounts.js";
import type { ServiceLock } from "./servicelock.js";
import type { AppliedState, AppPaths } from "./state.js";
import type { SwapPlan } from "./swap.js";

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
  /** The file-system seam (agent/fsys.ts); the real one by default. */
  fsys?: Fsys;
  /** The mount table (agent/mounts.ts); /proc/self/mountinfo by default. */
  mountTable?: MountTable;
  /** The environment scripts inherit (minus the token); default process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface HookReport {
  exitCode: number;
  durationMs: number;
  outputTail: string;
}

/** Everything gathered during one apply, for metadata.json and the server's event. */
export interface Attempt {
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
  /** The swap of this attempt (its kept files serve a rollback). */
  plan?: SwapPlan;
  /** An undo failed: the journal stays, so the next start tries again. */
  keepJournal?: boolean;
  /**
   * This attempt's number and that of the state it started from (agent/state.ts, `checkFresh`),
   * carried by every journal and state it writes; set by the runner before anything is written.
   */
  seq: number;
  base: number;
  /** A journal of this attempt was written (or resumed): its end is recorded in the state. */
  journaled?: boolean;
}

/** A failure already logged by the step that raised it: the runner only records it. */
export class StepError extends Error {}

export function newAttempt(app: string, manifest: Manifest, paths: AppPaths): Attempt {
  return { app, manifest, paths, started: Date.now(), preHook: null, postHook: null, timings: {}, bytesDownloaded: 0, seq: 0, base: 0 };
}

export const nowOf = (deps: RunnerDeps): Date => (deps.now ?? (() => new Date()))();

/**
 * The state saved once `manifest`'s files are in place by `attempt`: of its number, not closed
 * (its journal may still be there) unless `closed`.
 */
export function stateOf(deps: RunnerDeps, attempt: Pick<Attempt, "seq">, manifest: Manifest, files: AppliedState["files"], closed = false): AppliedState {
  return {
    releaseId: manifest.release?.id ?? null,
    releaseName: manifest.release?.name ?? "",
    manifest,
    files,
    appliedAt: nowOf(deps).toISOString(),
    seq: attempt.seq,
    closed,
  };
}
