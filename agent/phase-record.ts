/** The runner's last phase: metadata.json (both files), the journal cleared, the event to the server. */
import { rm } from "node:fs/promises";
import { nowOf, type Attempt, type Outcome, type RunnerDeps } from "./attempt.js";
import { AGENT_VERSION } from "./config.js";
import { appendMetadata, eventTime, type EventStatus } from "./metadata.js";
import { clearJournal, readState } from "./state.js";

/** Records the attempt; returns the outcome and the release now on disk (from `state`). */
export async function recordAttempt(deps: RunnerDeps, attempt: Attempt, status: "SUCCESS" | "FAILED", message: string): Promise<{ outcome: Outcome; current: number | null }> {
  const { config, log: rootLog, metrics } = deps;
  const { app, manifest, paths } = attempt;
  const log = rootLog.with({ app });
  const releaseId = manifest.release?.id ?? null;
  const event = { releaseID: releaseId, status, message, eventTime: eventTime(nowOf(deps)) };
  await appendMetadata(config.tempDir, config.biz, app, event);
  log.info("append event metadata to metadata.json success", { event: JSON.stringify(event) });
  await clearJournal(paths);
  await rm(paths.previousDir, { recursive: true, force: true });
  const state = await readState(paths);
  attempt.timings.totalMs = Date.now() - attempt.started;
  metrics?.inc("edgeconf_agent_applies_total", { app, status });
  metrics?.set("edgeconf_agent_current_release", { app }, state?.releaseId ?? 0);
  metrics?.set("edgeconf_agent_last_apply_timestamp_seconds", { app, status }, Math.floor(Date.now() / 1000));
  if (status === "SUCCESS") log.info("pull files success", { releaseID: releaseId, version: manifest.release?.name });
  else log.error("pull files failed", { releaseID: releaseId, reason: message });
  await reportEvent(deps, attempt, status, message);
  return { outcome: { app, status, releaseId, message }, current: state?.releaseId ?? null };
}

async function reportEvent(deps: RunnerDeps, attempt: Attempt, status: EventStatus, message: string): Promise<void> {
  const { config, mode } = deps;
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
    await deps.feed.postEvent(attempt.app, event);
  } catch (err) {
    deps.log.warn("report event to server failed", { app: attempt.app, error: (err as Error).message });
  }
}
