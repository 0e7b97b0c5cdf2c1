import type { ReleaseNotifier, WaitHolder, WaitOutcome } from "../core/ports";

type Waiter = { serviceId: number; credentialId?: number | null; uid?: string; end(outcome: WaitOutcome): void };

/** Revoked credentials remembered so a wait that starts just after the revocation ends at once. */
const MAX_REMEMBERED_REVOCATIONS = 10_000;

export type InProcessNotifier = ReleaseNotifier & {
  waiting(serviceId?: number): number;
  /** Wakes the service's waiters of this process only. */
  wake(serviceId: number): void;
  /** Ends this process's waits held with the credential ("revoked") and runs the revocation listeners. */
  revokeHere(credentialId: number): void;
  onRevoke(listener: (credentialId: number) => void): () => void;
};

/**
 * Waiters per service in this process. `notify` wakes them all; `wait` cleans up after itself on
 * timeout or abort so a disconnected client leaves nothing behind. Waiters are also indexed by
 * credential (a revocation ends them) and by (service, uid) (a newer wait replaces the older).
 */
export function inProcessNotifier(): InProcessNotifier {
  const byService = new Map<number, Set<Waiter>>();
  const byCredential = new Map<number, Set<Waiter>>();
  const byClient = new Map<string, Waiter>();
  const revoked = new Set<number>();
  const revokeListeners = new Set<(credentialId: number) => void>();
  const clientKey = (serviceId: number, uid: string) => `${serviceId}\u0000${uid}`;

  const wake = (serviceId: number) => {
    const set = byService.get(serviceId);
    if (!set) return;
    for (const w of [...set]) w.end(true);
  };
  const revokeHere = (credentialId: number) => {
    if (revoked.size >= MAX_REMEMBERED_REVOCATIONS) revoked.delete(revoked.values().next().value!);
    revoked.add(credentialId);
    for (const l of revokeListeners) {
      try {
        l(credentialId);
      } catch (err) {
        console.error(`time=${new Date().toISOString()} level=ERROR msg="revocation listener failed"`, err);
      }
    }
    for (const w of [...(byCredential.get(credentialId) ?? [])]) w.end("revoked");
  };

  return {
    wake,
    revokeHere,
    async notify(serviceId) {
      wake(serviceId);
    },
    async revoke(credentialId) {
      revokeHere(credentialId);
    },
    onRevoke(listener) {
      revokeListeners.add(listener);
      return () => revokeListeners.delete(listener);
    },
    wait(serviceId, timeoutMs, signal, holder?: WaitHolder) {
      return new Promise<WaitOutcome>((resolve) => {
        if (signal?.aborted) return resolve(false);
        if (holder?.credentialId != null && revoked.has(holder.credentialId)) return resolve("revoked");
        const key = holder?.uid ? clientKey(serviceId, holder.uid) : undefined;
        if (key) byClient.get(key)?.end("replaced");
        let ended = false;
        const w: Waiter = {
          serviceId,
          credentialId: holder?.credentialId,
          uid: holder?.uid,
          end(outcome) {
            if (ended) return;
            ended = true;
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
            removeFrom(byService, serviceId, w);
            if (w.credentialId != null) removeFrom(byCredential, w.credentialId, w);
            if (key && byClient.get(key) === w) byClient.delete(key);
            resolve(outcome);
          },
        };
        const onAbort = () => w.end(false);
        const timer = setTimeout(() => w.end(false), timeoutMs);
        signal?.addEventListener("abort", onAbort, { once: true });
        addTo(byService, serviceId, w);
        if (w.credentialId != null) addTo(byCredential, w.credentialId, w);
        if (key) byClient.set(key, w);
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
