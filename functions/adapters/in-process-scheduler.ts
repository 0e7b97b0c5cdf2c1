import type { RolloutScheduler } from "../core/ports";
import { causeFields, log } from "../core/log";

/** Node's setTimeout holds at most 2^31-1 ms; a later deadline is re-armed when this fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export type InProcessScheduler = RolloutScheduler & {
  /** What a due service runs (core/rollouts.ts `evaluateServiceRollouts` bound to the deps). */
  attach(run: (serviceId: number) => Promise<void>): void;
  /** Clears the timers and waits for runs in hand (before the database closes). */
  close(): Promise<void>;
};

/**
 * Rollout timers in this process: one timer per service at the earliest time asked for; a run never
 * overlaps another of the same service (a request during a run runs again after it). Timers are
 * unref'd, so they never keep a process alive. Several Node instances may each fire: evaluation
 * takes a row lock and is idempotent.
 */
export function inProcessScheduler(clock: () => Date): InProcessScheduler {
  let run: ((serviceId: number) => Promise<void>) | null = null;
  let closed = false;
  const timers = new Map<number, { at: number; timer: ReturnType<typeof setTimeout> }>();
  const running = new Map<number, Promise<void>>();
  const again = new Set<number>();

  const fire = (serviceId: number) => {
    timers.delete(serviceId);
    if (closed || !run) return;
    if (running.has(serviceId)) return void again.add(serviceId);
    const p = run(serviceId)
      .catch((err: unknown) => log("WARN", "rollout evaluation failed", { serviceId, ...causeFields(err) }))
      .finally(() => {
        running.delete(serviceId);
        if (again.delete(serviceId)) fire(serviceId);
      });
    running.set(serviceId, p);
  };

  return {
    async schedule(serviceId, at) {
      if (closed) return;
      const due = at.getTime();
      const current = timers.get(serviceId);
      if (current && current.at <= due) return;
      if (current) clearTimeout(current.timer);
      const timer = setTimeout(() => fire(serviceId), Math.min(MAX_DELAY_MS, Math.max(0, due - clock().getTime())));
      timer.unref?.();
      timers.set(serviceId, { at: due, timer });
    },
    attach(fn) {
      run = fn;
    },
    async close() {
      closed = true;
      for (const t of timers.values()) clearTimeout(t.timer);
      timers.clear();
      await Promise.allSettled([...running.values()]);
    },
  };
}
