import type { ReleaseNotifier } from "../core/ports";

/** The part of a Workers Durable Object namespace binding this adapter uses. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: never): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

/**
 * Long-poll wake-up through a Durable Object per service (functions/adapters/release-waiters-do.ts).
 * Made per request: `startedAt` is when the request began, so a publish that lands between the
 * feed's database read and the wait reaching the object still wakes it.
 */
export function durableObjectNotifier(ns: DurableObjectNamespaceLike, startedAt = Date.now()): ReleaseNotifier {
  const stub = (serviceId: number) => ns.get(ns.idFromName(String(serviceId)) as never);
  // Per service: notifies at or after this time wake a wait at once; moved past each notify seen.
  const since = new Map<number, number>();
  return {
    async notify(serviceId) {
      const res = await stub(serviceId).fetch("https://release-waiters/notify", { method: "POST" });
      await res.body?.cancel();
    },
    async wait(serviceId, timeoutMs, signal) {
      if (signal?.aborted) return false;
      const ms = Math.max(0, Math.round(timeoutMs));
      try {
        const res = await stub(serviceId).fetch(`https://release-waiters/wait?ms=${ms}&since=${since.get(serviceId) ?? startedAt}`, { signal });
        const [state, last] = (await res.text()).split(":");
        if (Number(last) > 0) since.set(serviceId, Math.max(since.get(serviceId) ?? startedAt, Number(last) + 1));
        return state === "notified";
      } catch (err) {
        if (signal?.aborted) return false;
        throw err;
      }
    },
  };
}
