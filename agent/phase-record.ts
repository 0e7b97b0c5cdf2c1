/** The runner's last phase: metadata.json (both files), the journal cleared, the event to the server. */
import { nowOf, stateOf, type Attempt, type Outcome, type RunnerDeps } from "./attempt.js";
import { AGENT_VERSION } from "./config.js";
import { appendMetadata, eventTime, type EventStatus } from "./metadata.js";
import { nodeFsys } from "./fsys.js";
import { UnsafePathError } from "./safetree.js";
import { cleanUp } from "./phase-files.js";
import { keyOf } from "./integrity.js";
import { clearJournal, readState, writeState } from "./state.js";

/**
 * Records the attempt; returns the outcome and the release now on disk (from `state`).
 * An attempt whose event cannot be appended to either metadata.json (a link there, a full disk)
 * is not a success, whatever happened to the files: the outcome is FAILED (`pull` exits 1,
 * `watch` retries it) and the event sent to the server says so. When the files of the release
 * are in place, `state` is marked `unrecorded` so that the next pull or retry, finding the
 * release on disk, records its event instead of answering "already applied".
 */
export async function recordAttempt(deps: RunnerDeps, attempt: Attempt, status: "SUCCESS" | "FAILED", message: string): Promise<{ outcome: Outcome; current: number | null; currentPublish: number | null }> {
  const { config, log: rootLog, metrics } = deps;
  const { app, manifest, paths } = attempt;
  const log = rootLog.with({ app });
  const releaseId = manifest.release?.id ?? null;
  const event = { releaseID: releaseId, status, message, eventTime: eventTime(nowOf(deps)) };
  const fsys = deps.fsys ?? nodeFsys;
  let unrecorded: string | null = null;
  try {
    await appendMetadata(paths, event, fsys);
    log.info("append event metadata to metadata.json success", { event: JSON.stringify(event) });
  } catch (err) {
    unrecorded = (err as Error).message;
    // Reported to the server all the same; the journal stays so the event is not lost.
    log.error("cannot append the event to metadata.json", { event: JSON.stringify(event), error: unrecorded });
    if (!(err instanceof UnsafePathError)) attempt.keepJournal = true;
  }
  let cleared = false;
  if (!attempt.keepJournal) {
    // A journal that cannot be removed is finished again at the next start (same event again).
    await clearJournal(paths, fsys)
      .then(() => (cleared = true))
      .then(() => cleanUp(deps, paths))
      .catch((err) => log.warn("cannot clear the journal", { error: (err as Error).message }));
  }
  let unreadable = false;
  let state = await readState(paths, keyOf(deps), fsys).catch(() => ((unreadable = true), null));
  let next = state;
  if (status === "SUCCESS" && state?.releaseId === releaseId && Boolean(state?.unrecorded) !== (unrecorded !== null)) {
    next = { ...state!, unrecorded: unrecorded !== null || undefined };
  }
  // The attempt's journal is gone: the state says it is finished, so no copy of that journal is
  // ever resumed (agent/state.ts, checkFresh). Written after the removal: a crash in between
  // leaves the state unsettled (its release applied again), never a journal refused as stale.
  // Not when the state could not be read (a disk error): a state is never written over blindly.
  if (cleared && attempt.journaled && !unreadable && (next?.seq !== attempt.seq || next.closed !== true)) {
    next = { ...(next ?? stateOf(deps, attempt, { ...manifest, release: null, files: [], hooks: { pre: null, post: null, validate: null } }, {})), seq: attempt.seq, closed: true };
  }
  if (next !== state) {
    await writeState(paths, keyOf(deps), next!, fsys).then(
      () => (state = next),
      (err) => log.warn("cannot save the state", { error: (err as Error).message }),
    );
  }
  if (unrecorded !== null) {
    const note = `its event could not be recorded in metadata.json: ${unrecorded}`;
    message = status === "SUCCESS" ? `release ${manifest.release?.name || releaseId} is in place, but ${note}` : `${message}; ${note}`;
    status = "FAILED";
  }
  attempt.timings.totalMs = Date.now() - attempt.started;
  metrics?.inc("edgeconf_agent_applies_total", { app, status });
  metrics?.set("edgeconf_agent_current_release", { app }, state?.releaseId ?? 0);
  metrics?.set("edgeconf_agent_last_apply_timestamp_seconds", { app, status }, Math.floor(Date.now() / 1000));
  if (status === "SUCCESS") log.info("pull files success", { releaseID: releaseId, version: manifest.release?.name });
  else log.error("pull files failed", { releaseID: releaseId, reason: message });
  await reportEvent(deps, attempt, status, message);
  return { outcome: { app, status, releaseId, message }, current: state?.releaseId ?? null, currentPublish: state?.manifest?.release?.publishId ?? null };
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
