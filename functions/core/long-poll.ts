import { notePoll } from "./clients";
import { cachedAnswer, etagOf, releaseIdOfEtag, targetAnswer, type FeedAnswer } from "./feed";
import { feedCacheFor } from "./feed-cache";
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
  /** With `current`: the publish that brought it; a list older than it is read again, never answered from. */
  currentPublish?: number;
  /** Seconds to hold, 0–60. */
  wait: number;
  /** The `If-None-Match` header, used when `current` is absent. */
  ifNoneMatch?: string;
  agentVersion?: string;
  mode?: "pull" | "watch";
};

/**
 * How a long-poll ended: the client's target (a changed one), `unchanged` after the wait (304 with
 * the target's ETag), or ended early because its token was revoked, a newer poll of its uid took
 * its place, or the service was deleted (`gone`). The HTTP layers (routes/feed.ts, node/feed-long-poll.ts) turn it into the answer.
 */
export type PollOutcome = { kind: "answer"; answer: FeedAnswer } | { kind: "unchanged"; etag: string } | { kind: "revoked" } | { kind: "replaced" } | { kind: "gone" };

/**
 * How the HTTP layer tells that the client left: the request's AbortSignal (the route), or a lighter
 * one-listener form (node/feed-long-poll.ts, which holds 10,000 of them). `onAbort` returns a remover.
 */
export type ClientGone = AbortSignal | { readonly aborted: boolean; onAbort(fn: () => void): () => void };

function onGone(gone: ClientGone, fn: () => void): () => void {
  if (!(gone instanceof AbortSignal)) return gone.onAbort(fn);
  gone.addEventListener("abort", fn, { once: true });
  return () => gone.removeEventListener("abort", fn);
}

type Held = { woke: Promise<WaitOutcome>; cancel(): void };
const NOT_HELD: Held = { woke: Promise.resolve(false), cancel() {} };

/**
 * Waits for a notify of the service until the deadline or the client goes away; `cancel` drops the
 * waiter. `holder` lets a revocation of its token end the wait, and a newer poll of its uid replace
 * it. Notifiers with `hold` (in this process) take no AbortController or signal listener per poll.
 */
function holdUntil(notifier: ReleaseNotifier, serviceId: number, deadline: number, gone: ClientGone, holder: WaitHolder): Held {
  const remaining = deadline - Date.now();
  if (remaining <= 0 || gone.aborted) return NOT_HELD;
  if (notifier.hold) {
    let held!: { cancel(): void };
    let off: (() => void) | undefined;
    let settled = false;
    const woke = new Promise<WaitOutcome>((resolve) => {
      held = notifier.hold!(serviceId, remaining, holder, (outcome) => {
        settled = true;
        off?.();
        resolve(outcome);
      });
    });
    if (!settled) off = onGone(gone, () => held.cancel());
    return { woke, cancel: () => held.cancel() };
  }
  const armed = new AbortController();
  const cancel = () => armed.abort();
  const off = onGone(gone, cancel);
  const woke = notifier.wait(serviceId, remaining, armed.signal, holder).finally(off);
  return { woke, cancel };
}

/**
 * A wait that ended without a publish or its timeout; a revocation also makes this process forget
 * the token, a deletion the service.
 */
function early(outcome: WaitOutcome, deps: AppDeps, credentialId: number | null, serviceId: number): PollOutcome | undefined {
  if (outcome === "gone") {
    feedCacheFor(deps).forgetService(serviceId);
    return { kind: "gone" };
  }
  if (outcome === "revoked") {
    if (credentialId !== null) tokenCacheFor(deps).forgetCredential(credentialId);
    return { kind: "revoked" };
  }
  if (outcome === "replaced") return { kind: "replaced" };
  return undefined;
}

/** Whether `a` is news to a client holding on `known`; publishing the failed release again is a retry: it answers like a new release. */
function changed(a: FeedAnswer, known: number | null | undefined, q: PollRequest): boolean {
  return a.releaseId !== known || (q.seen !== undefined && q.seenPublish !== undefined && a.publishId !== null && a.publishId !== q.seenPublish);
}

/**
 * The release long-poll: notes the client (batched, core/sightings.ts), answers at once when its
 * target differs from the release it holds on, else holds until a publish changes the target, the
 * wait ends, or the client leaves (`gone`). `credentialId`: the token's, so a revocation ends
 * the hold. Throws only what reading the target throws (database errors).
 */
export async function longPoll(deps: AppDeps, service: ServiceRow, q: PollRequest, credentialId: number | null, gone: ClientGone): Promise<PollOutcome> {
  const cache = feedCacheFor(deps);
  const client = { uid: q.uid ?? "", labels: q.labels };
  const applied = q.current !== undefined ? q.current || null : q.ifNoneMatch ? releaseIdOfEtag(q.ifNoneMatch) : null;
  // The release to hold on: the one applied, or one the agent already has and failed to apply.
  const known = q.seen !== undefined ? q.seen || null : applied;
  if (q.uid) notePoll(deps, service, { ...client, agentVersion: q.agentVersion, mode: q.mode, currentReleaseId: applied ?? null }, deps.clock());
  const deadline = Date.now() + q.wait * 1000;
  const holder: WaitHolder = { credentialId, uid: q.uid || undefined };
  // The newest publish the client has seen: a list older than it is behind.
  const claimed = Math.max(q.currentPublish ?? 0, q.seenPublish ?? 0);
  for (let round = 0; ; round++) {
    // Deleted after this poll resolved it (or while it was held): never answered from its releases.
    if (cache.isGone(service.id)) return { kind: "gone" };
    const seen = cache.notifyCount(service.id);
    // Without a notify count or a wait that honours `since`, arm the wait before reading so a
    // publish in between is not missed.
    const armed = seen === undefined && !deps.notifier.wakesSince ? holdUntil(deps.notifier, service.id, deadline, gone, holder) : undefined;
    // wait=0 answers from what it reads: never from a copy (no wait would catch a publish it missed).
    // From memory where it is all there (Node, most polls): no promise per poll of a herd or a wake.
    let answer = cachedAnswer(deps, service, client, q.wait) ?? (await targetAnswer(deps, service, client, q.wait, { fresh: round > 0 || q.wait === 0 }));
    // A per-isolate copy of the publish list is good for holding on, never for answering; nor is a
    // list older than a publish the client has seen (another instance's, its notify still on the way).
    if (changed(answer, known, q) && (answer.cached || claimed > answer.listHead)) answer = await targetAnswer(deps, service, client, q.wait, { fresh: true, atLeast: claimed });
    // A read made after the client asked is authoritative (a claim still ahead of it is one the
    // database does not hold: a restored backup, a forged query); a copy is not: hold, and the notify
    // on its way wakes us, rather than send the host back to a release it has moved past.
    if (changed(answer, known, q) && !answer.cached) {
      armed?.cancel();
      return (armed && early(await armed.woke, deps, credentialId, service.id)) || { kind: "answer", answer };
    }
    // A notify while reading: read again. Else the check and the wait are in one tick: nothing slips between.
    if (seen !== undefined && cache.notifyCount(service.id) !== seen) continue;
    // Nothing touches the database while the poll is held: give its connections back (Workers).
    deps.idle?.();
    const woke = await (armed ?? holdUntil(deps.notifier, service.id, deadline, gone, answer.asOf === undefined ? holder : { ...holder, since: answer.asOf })).woke;
    const ended = early(woke, deps, credentialId, service.id);
    if (ended) return ended;
    // Held on a copy that differs from the client: the 304 names what the client holds, not the copy's target.
    if (!woke) return { kind: "unchanged", etag: changed(answer, known, q) ? etagOf(known) : answer.etag };
  }
}
