import { notePoll } from "./clients";
import { feedCacheFor, releaseIdOfEtag, targetAnswer, type FeedAnswer } from "./feed";
import type { AppDeps, ReleaseNotifier, WaitHolder, WaitOutcome } from "./ports";
import type { ServiceRow } from "./services";
import { tokenCacheFor } from "./token-cache";

/** A release long-poll as the agent sent it, validated (see docs/feed-protocol.md). */
export type PollRequest = {
  uid?: string;
  labels: Record<string, string>;
  current?: number;
  seen?: number;
  seenPublish?: number;
  /** Seconds to hold, 0–60. */
  wait: number;
  /** The `If-None-Match` header, used when `current` is absent. */
  ifNoneMatch?: string;
  agentVersion?: string;
  mode?: "pull" | "watch";
};

/**
 * How a long-poll ended: the client's target (a changed one), `unchanged` after the wait (304 with
 * the target's ETag), or ended early because its token was revoked or a newer poll of its uid took
 * its place. The HTTP layers (routes/feed.ts, node/feed-long-poll.ts) turn it into the answer.
 */
export type PollOutcome = { kind: "answer"; answer: FeedAnswer } | { kind: "unchanged"; etag: string } | { kind: "revoked" } | { kind: "replaced" };

/**
 * Waits for a notify of the service until the deadline or `signal` aborts (the client went away);
 * `cancel` drops the waiter. `holder` lets a revocation of its token end the wait, and a newer poll
 * of its uid replace it.
 */
function holdUntil(notifier: ReleaseNotifier, serviceId: number, deadline: number, signal: AbortSignal, holder: WaitHolder) {
  const remaining = deadline - Date.now();
  if (remaining <= 0 || signal.aborted) return { woke: Promise.resolve<WaitOutcome>(false), cancel: () => {} };
  const armed = new AbortController();
  const cancel = () => armed.abort();
  signal.addEventListener("abort", cancel, { once: true });
  const woke = notifier.wait(serviceId, remaining, armed.signal, holder).finally(() => signal.removeEventListener("abort", cancel));
  return { woke, cancel };
}

/** A wait that ended without a publish or its timeout; a revocation also makes this process forget the token. */
function early(outcome: WaitOutcome, deps: AppDeps, credentialId: number | null): PollOutcome | undefined {
  if (outcome === "revoked") {
    if (credentialId !== null) tokenCacheFor(deps).forgetCredential(credentialId);
    return { kind: "revoked" };
  }
  if (outcome === "replaced") return { kind: "replaced" };
  return undefined;
}

/**
 * The release long-poll: notes the client (batched, core/sightings.ts), answers at once when its
 * target differs from the release it holds on, else holds until a publish changes the target, the
 * wait ends, or `signal` aborts (the client left). `credentialId`: the token's, so a revocation ends
 * the hold. Throws only what reading the target throws (database errors).
 */
export async function longPoll(deps: AppDeps, service: ServiceRow, q: PollRequest, credentialId: number | null, signal: AbortSignal): Promise<PollOutcome> {
  const cache = feedCacheFor(deps);
  const client = { uid: q.uid ?? "", labels: q.labels };
  const applied = q.current !== undefined ? q.current || null : q.ifNoneMatch ? releaseIdOfEtag(q.ifNoneMatch) : null;
  // The release to hold on: the one applied, or one the agent already has and failed to apply.
  const known = q.seen !== undefined ? q.seen || null : applied;
  if (q.uid) notePoll(deps, service, { ...client, agentVersion: q.agentVersion, mode: q.mode, currentReleaseId: applied ?? null }, deps.clock());
  const deadline = Date.now() + q.wait * 1000;
  const holder: WaitHolder = { credentialId, uid: q.uid || undefined };
  // Publishing the failed release again is a retry: it answers like a new release.
  const changed = (a: FeedAnswer) => a.releaseId !== known || (q.seen !== undefined && q.seenPublish !== undefined && a.publishId !== null && a.publishId !== q.seenPublish);
  for (let round = 0; ; round++) {
    const seen = cache.notifyCount(service.id);
    // Without a notify count or a wait that honours `since`, arm the wait before reading so a
    // publish in between is not missed.
    const armed = seen === undefined && !deps.notifier.wakesSince ? holdUntil(deps.notifier, service.id, deadline, signal, holder) : undefined;
    // wait=0 answers from what it reads: never from a copy (no wait would catch a publish it missed).
    let answer = await targetAnswer(deps, service, client, q.wait, { fresh: round > 0 || q.wait === 0 });
    // A per-isolate copy of the publish list is good for holding on, never for answering.
    if (changed(answer) && answer.cached) answer = await targetAnswer(deps, service, client, q.wait, { fresh: true });
    if (changed(answer)) {
      armed?.cancel();
      return (armed && early(await armed.woke, deps, credentialId)) || { kind: "answer", answer };
    }
    // A notify while reading: read again. Else the check and the wait are in one tick: nothing slips between.
    if (seen !== undefined && cache.notifyCount(service.id) !== seen) continue;
    // Nothing touches the database while the poll is held: give its connections back (Workers).
    deps.idle?.();
    const woke = await (armed ?? holdUntil(deps.notifier, service.id, deadline, signal, { ...holder, since: answer.asOf })).woke;
    const ended = early(woke, deps, credentialId);
    if (ended) return ended;
    if (!woke) return { kind: "unchanged", etag: answer.etag };
  }
}
