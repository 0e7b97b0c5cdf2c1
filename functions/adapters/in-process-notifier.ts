import type { ReleaseNotifier } from "../core/ports";

/**
 * Waiters per service in this process. `notify` wakes them all; `wait` cleans up after itself on
 * timeout or abort so a disconnected client leaves nothing behind.
 */
export function inProcessNotifier(): ReleaseNotifier & { waiting(serviceId?: number): number; wake(serviceId: number): void } {
  const waiters = new Map<number, Set<() => void>>();
  const wake = (serviceId: number) => {
    const set = waiters.get(serviceId);
    if (!set) return;
    waiters.delete(serviceId);
    for (const w of set) w();
  };
  return {
    wake,
    async notify(serviceId) {
      wake(serviceId);
    },
    wait(serviceId, timeoutMs, signal) {
      return new Promise<boolean>((resolve) => {
        if (signal?.aborted) return resolve(false);
        let set = waiters.get(serviceId);
        if (!set) waiters.set(serviceId, (set = new Set()));
        const done = (notified: boolean) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          const s = waiters.get(serviceId);
          s?.delete(onWake);
          if (s && s.size === 0) waiters.delete(serviceId);
          resolve(notified);
        };
        const onWake = () => done(true);
        const onAbort = () => done(false);
        const timer = setTimeout(() => done(false), timeoutMs);
        signal?.addEventListener("abort", onAbort, { once: true });
        set.add(onWake);
      });
    },
    waiting(serviceId) {
      if (serviceId !== undefined) return waiters.get(serviceId)?.size ?? 0;
      let n = 0;
      for (const s of waiters.values()) n += s.size;
      return n;
    },
  };
}
