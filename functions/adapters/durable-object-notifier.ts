import type { ReleaseNotifier, RolloutScheduler } from "../core/ports";

/** The part of a Workers Durable Object namespace binding this adapter uses. */
export interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: never): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

/** A wait counts notifies from this long before its data was read: an early wake costs one re-read, a missed one a whole wait. */
const CLOCK_MARGIN_MS = 1_000;

/**
 * Long-poll wake-up through a Durable Object per service (functions/adapters/release-waiters-do.ts).
 * Made per request: `startedAt` is when the request began, so a publish that lands between the
 * feed's database read and the wait reaching the object still wakes it.
 */
export function durableObjectNotifier(ns: DurableObjectNamespaceLike, startedAt = Date.now()): ReleaseNotifier {
  const stub = (serviceId: number) => ns.get(ns.idFromName(String(serviceId)) as never);
  // Per service: notifies at or after this time wake a wait at once; moved past each notify seen.
  const since = new Map<number, number>();
  // What the last wake brought per service: its publish list (this notifier lives for one request).
  const news = new Map<number, string>();
  return {
    wantsNews: true,
    wakesSince: true,
    newsFor: (serviceId) => news.get(serviceId),
    async notify(serviceId, body) {
      // The newest publish id orders news from concurrent publishes: the object keeps the newest.
      const version = body ? String((JSON.parse(body) as { publishes: { id: number }[] }).publishes[0]?.id ?? 0) : "0";
      const res = await stub(serviceId).fetch("https://release-waiters/notify", { method: "POST", body: body ?? "", headers: { "x-news-version": version } });
      await res.body?.cancel();
    },
    async removeService(serviceId) {
      const res = await stub(serviceId).fetch("https://release-waiters/gone", { method: "POST" });
      await res.body?.cancel();
    },
    async revoke(credentialId, serviceIds) {
      await Promise.all(
        serviceIds.map(async (id) => {
          const res = await stub(id).fetch(`https://release-waiters/revoke?cred=${credentialId}`, { method: "POST" });
          await res.body?.cancel();
        }),
      );
    },
    async wait(serviceId, timeoutMs, signal, holder) {
      if (signal?.aborted) return false;
      const ms = Math.max(0, Math.round(timeoutMs));
      const who = `${holder?.credentialId ? `&cred=${holder.credentialId}` : ""}${holder?.uid ? `&uid=${encodeURIComponent(holder.uid)}` : ""}`;
      try {
        // The data the waiter holds on is as of `holder.since` (less a margin for the clocks of the
        // isolate and the object), or of the last notify this request saw, whichever is newer.
        const from = Math.max(since.get(serviceId) ?? 0, holder?.since !== undefined ? holder.since - CLOCK_MARGIN_MS : startedAt);
        const res = await stub(serviceId).fetch(`https://release-waiters/wait?ms=${ms}&since=${from}${who}`, { signal });
        const text = await res.text();
        const nl = text.indexOf("\n");
        const [state, last] = (nl < 0 ? text : text.slice(0, nl)).split(":");
        if (Number(last) > 0) since.set(serviceId, Math.max(since.get(serviceId) ?? startedAt, Number(last) + 1));
        const brought = nl < 0 ? "" : text.slice(nl + 1);
        if (state === "notified" && brought) news.set(serviceId, brought);
        if (state === "revoked" || state === "replaced" || state === "gone") return state;
        return state === "notified";
      } catch (err) {
        if (signal?.aborted) return false;
        throw err;
      }
    },
  };
}

/** Rollout deadlines as the alarm of the service's Durable Object (`POST /schedule`); requests coalesce there. */
export function durableObjectScheduler(ns: DurableObjectNamespaceLike): RolloutScheduler {
  return {
    async schedule(serviceId, at) {
      const res = await ns.get(ns.idFromName(String(serviceId)) as never).fetch(`https://release-waiters/schedule?service=${serviceId}&at=${at.getTime()}`, { method: "POST" });
      await res.body?.cancel();
    },
  };
}
