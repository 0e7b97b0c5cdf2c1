import type { ReleaseNotifier, WaitHolder, WaitOutcome } from "../core/ports";
import { errorFields, log } from "../core/log";

/** Revoked credentials remembered so a wait that starts just after the revocation ends at once. */
const MAX_REMEMBERED_REVOCATIONS = 10_000;

export type InProcessNotifier = ReleaseNotifier & {
  hold: NonNullable<ReleaseNotifier["hold"]>;
  waiting(serviceId?: number): number;
  /** Wakes the service's waiters of this process only. */
  wake(serviceId: number): void;
  /** Wakes every waiter of this process (each looks again at its target). */
  wakeAll(): void;
  /** Ids of the services this process holds waiters on. */
  heldServices(): number[];
  /** Ends the service's waiters of this process with "gone" (the service was deleted). */
  endService(serviceId: number): void;
  /** Ends this process's waits held with the credential ("revoked") and runs the revocation listeners. */
  revokeHere(credentialId: number): void;
  /** Runs the revocation listeners only (caches forget the credential); its waits go on. */
  forgetHere(credentialId: number): void;
  onRevoke(listener: (credentialId: number) => void): () => void;
};

type Indexes = { byService: Map<number, Set<Waiter>>; byCredential: Map<number, Set<Waiter>>; byClient: Map<string, Waiter> };

/**
 * One held wait: a class rather than closures, and one timer, so a held poll costs a few hundred
 * bytes here (issue 11: 10,000 held polls). `end` unhooks it from every index, then runs `done`.
 */
class Waiter {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;
  constructor(
    private readonly indexes: Indexes,
    readonly serviceId: number,
    readonly credentialId: number | null,
    readonly clientKey: string | undefined,
    private readonly done: (outcome: WaitOutcome) => void,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(endWaiter, timeoutMs, this, false);
  }

  end(outcome: WaitOutcome) {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const { byService, byCredential, byClient } = this.indexes;
    removeFrom(byService, this.serviceId, this);
    if (this.credentialId !== null) removeFrom(byCredential, this.credentialId, this);
    if (this.clientKey !== undefined && byClient.get(this.clientKey) === this) byClient.delete(this.clientKey);
    this.done(outcome);
  }

  cancel() {
    this.end(false);
  }
}

function endWaiter(w: Waiter, outcome: WaitOutcome) {
  w.end(outcome);
}

const ended = { cancel() {} };

/**
 * Waiters per service in this process. `notify` wakes them all; a wait cleans up after itself on
 * timeout or cancel (the client left) so nothing is left behind. Waiters are also indexed by
 * credential (a revocation ends them) and by (service, uid) (a newer wait replaces the older).
 */
export function inProcessNotifier(): InProcessNotifier {
  const indexes: Indexes = { byService: new Map(), byCredential: new Map(), byClient: new Map() };
  const { byService, byCredential, byClient } = indexes;
  const revoked = new Set<number>();
  const revokeListeners = new Set<(credentialId: number) => void>();

  const endAll = (serviceId: number, outcome: WaitOutcome) => {
    const set = byService.get(serviceId);
    if (!set) return;
    // One waiter per microtask, each after the steps the previous one's wake queued: the first woken
    // poll is answered at once rather than after 10,000 others have all taken their first step (a
    // loop would queue every wake before any answer). Still all within this turn: no I/O, timer or
    // new poll comes between (issue 11).
    const waiters = [...set];
    let i = 0;
    const next = () => {
      if (i >= waiters.length) return;
      waiters[i++].end(outcome);
      queueMicrotask(next);
    };
    next();
  };
  const wake = (serviceId: number) => endAll(serviceId, true);
  const endService = (serviceId: number) => endAll(serviceId, "gone");
  const forgetHere = (credentialId: number) => {
    for (const l of revokeListeners) {
      try {
        l(credentialId);
      } catch (err) {
        log("ERROR", "revocation listener failed", errorFields(err));
      }
    }
  };
  const revokeHere = (credentialId: number) => {
    if (revoked.size >= MAX_REMEMBERED_REVOCATIONS) revoked.delete(revoked.values().next().value!);
    revoked.add(credentialId);
    forgetHere(credentialId);
    for (const w of [...(byCredential.get(credentialId) ?? [])]) w.end("revoked");
  };
  const hold = (serviceId: number, timeoutMs: number, holder: WaitHolder | undefined, done: (outcome: WaitOutcome) => void) => {
    const credentialId = holder?.credentialId ?? null;
    if (credentialId !== null && revoked.has(credentialId)) {
      done("revoked");
      return ended;
    }
    const key = holder?.uid ? `${serviceId}\u0000${holder.uid}` : undefined;
    if (key !== undefined) byClient.get(key)?.end("replaced");
    const w = new Waiter(indexes, serviceId, credentialId, key, done, timeoutMs);
    addTo(byService, serviceId, w);
    if (credentialId !== null) addTo(byCredential, credentialId, w);
    if (key !== undefined) byClient.set(key, w);
    return w;
  };

  return {
    wake,
    wakeAll: () => [...byService.keys()].forEach(wake),
    heldServices: () => [...byService.keys()],
    endService,
    revokeHere,
    forgetHere,
    hold,
    async notify(serviceId) {
      wake(serviceId);
    },
    async removeService(serviceId) {
      endService(serviceId);
    },
    async revoke(credentialId) {
      revokeHere(credentialId);
    },
    onRevoke(listener) {
      revokeListeners.add(listener);
      return () => revokeListeners.delete(listener);
    },
    wait(serviceId, timeoutMs, signal, holder) {
      return new Promise<WaitOutcome>((resolve) => {
        if (signal?.aborted) return resolve(false);
        let settled = false;
        const onAbort = () => w.cancel();
        const w = hold(serviceId, timeoutMs, holder, (outcome) => {
          settled = true;
          signal?.removeEventListener("abort", onAbort);
          resolve(outcome);
        });
        if (!settled) signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    waiting(serviceId) {
      if (serviceId !== undefined) return byService.get(serviceId)?.size ?? 0;
      let n = 0;
      for (const s of byService.values()) n += s.size;
      return n;
    },
  };
}

function addTo<K>(index: Map<K, Set<Waiter>>, k: K, w: Waiter) {
  let set = index.get(k);
  if (!set) index.set(k, (set = new Set()));
  set.add(w);
}

function removeFrom<K>(index: Map<K, Set<Waiter>>, k: K, w: Waiter) {
  const set = index.get(k);
  if (!set) return;
  set.delete(w);
  if (set.size === 0) index.delete(k);
}
