/**
 * Durable Object (one per service, `idFromName(String(serviceId))`) that holds the long-polls of
 * that service's agents and answers them all when the publish path calls `/notify`.
 *
 *   GET  /wait?ms=N&since=T[&cred=C][&uid=U]
 *                            held until a notify or N ms; body "notified:<t>\n<news>" | "timeout:<t>", t being
 *                            the time of the last notify. A notify at or after T (epoch ms) that came
 *                            before the wait arrived answers at once, so a publish racing the feed's
 *                            database read is not lost. "revoked:<t>" when credential C is revoked
 *                            (before or during the wait); "replaced:<t>" when a newer wait with the
 *                            same uid U arrives (one held poll per client and service).
 *   POST /notify             wakes every waiter (request body: the news they get); answers {"woken": n}
 *   POST /gone               the service was deleted: ends every waiter with "gone:<t>", and every
 *                            later wait at once (until the object is evicted); answers {"ended": n}
 *   POST /revoke?cred=C      ends the waits held with credential C; answers {"ended": n}
 *   GET  /waiters            {"waiters": n} (tests and operators)
 *   POST /schedule?service=S&at=T
 *                            arms the object's alarm for T (epoch ms) unless it is armed earlier; when it
 *                            fires, `onAlarm(S)` runs (the Worker entry's subclass judges S's rollouts)
 *
 * A caller that goes away (agent disconnects, so the Worker's subrequest is cancelled) aborts the
 * incoming request's signal (compatibility flag `enable_request_signal`) and is dropped at once.
 */
export const MAX_WAIT_MS = 120_000;
/** Revoked credentials remembered, so a wait that arrives just after the revocation ends at once. */
const MAX_REVOKED = 10_000;

type Outcome = "notified" | "timeout" | "revoked" | "replaced" | "gone";
/** The part of `DurableObjectState` used here (alarms and a key for the service id). */
type StateLike = { storage: { getAlarm(): Promise<number | null>; setAlarm(at: number): Promise<void>; get<T>(key: string): Promise<T | undefined>; put(key: string, value: unknown): Promise<void> } };
type Waiter = { cred: number; uid: string; end(outcome: Outcome): void };

export class ReleaseWaiters {
  private readonly waiters = new Set<Waiter>();
  private readonly byUid = new Map<string, Waiter>();
  private readonly revoked = new Set<number>();
  private lastNotifyAt = 0;
  /** Set by `/gone`: the service no longer exists, so no wait is held here again. */
  private deleted = false;
  private news = "";
  private newsVersion = 0;

  private readonly state?: StateLike;

  constructor(state?: unknown, _env?: unknown) {
    this.state = state as StateLike | undefined;
  }

  /** Rollout evaluation for the service when the alarm fires; the Worker entry's subclass fills it in. */
  protected async onAlarm(_serviceId: number): Promise<void> {}

  async alarm(): Promise<void> {
    const serviceId = await this.state?.storage.get<number>("serviceId");
    if (serviceId) await this.onAlarm(serviceId);
  }

  /** Arms the alarm for `at` (epoch ms) unless an earlier one is set (requests coalesce). */
  protected async arm(serviceId: number, at: number): Promise<void> {
    if (!this.state) throw new Error("this Durable Object has no storage: alarms unavailable");
    await this.state.storage.put("serviceId", serviceId);
    const current = await this.state.storage.getAlarm();
    if (current === null || at < current) await this.state.storage.setAlarm(at);
  }

  /**
   * Wakes every waiter. `body`, when given, is the service's publish list as of this publish: handed
   * to every poll this notify wakes, so they need no database read.
   */
  protected wake(body: string, version: number): number {
    if (!body) this.news = ""; // a notify without news: waiters read the database
    else if (version >= this.newsVersion) [this.news, this.newsVersion] = [body, version];
    this.lastNotifyAt = Math.max(Date.now(), this.lastNotifyAt + 1);
    return this.wakeAll();
  }

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/notify" && request.method === "POST") {
      const woken = this.wake(await request.text(), Number(request.headers.get("x-news-version")) || 0);
      return Response.json({ woken });
    }
    if (url.pathname === "/gone" && request.method === "POST") {
      this.deleted = true;
      const all = [...this.waiters];
      for (const w of all) w.end("gone");
      return Response.json({ ended: all.length });
    }
    if (url.pathname === "/schedule" && request.method === "POST") {
      const serviceId = Number(url.searchParams.get("service"));
      const at = Number(url.searchParams.get("at"));
      if (!Number.isInteger(serviceId) || serviceId <= 0 || !Number.isFinite(at)) return Response.json({ error: { code: "invalid_argument", message: "service and at required" } }, { status: 400 });
      await this.arm(serviceId, at);
      return Response.json({ at });
    }
    if (url.pathname === "/revoke" && request.method === "POST") {
      const cred = Number(url.searchParams.get("cred")) || 0;
      if (this.revoked.size >= MAX_REVOKED) this.revoked.delete(this.revoked.values().next().value!);
      this.revoked.add(cred);
      const ended = [...this.waiters].filter((w) => w.cred === cred);
      for (const w of ended) w.end("revoked");
      return Response.json({ ended: ended.length });
    }
    if (url.pathname === "/waiters" && request.method === "GET") return Response.json({ waiters: this.waiters.size });
    if (url.pathname === "/wait" && request.method === "GET") {
      const ms = Math.max(0, Math.min(MAX_WAIT_MS, Number(url.searchParams.get("ms")) || 0));
      const since = Number(url.searchParams.get("since")) || 0;
      const cred = Number(url.searchParams.get("cred")) || 0;
      if (cred && this.revoked.has(cred)) return new Response(`revoked:${this.lastNotifyAt}`);
      if (this.deleted) return new Response(`gone:${this.lastNotifyAt}`);
      if (since > 0 && this.lastNotifyAt >= since) return new Response(`notified:${this.lastNotifyAt}\n${this.news}`);
      const outcome = await this.hold(ms, request.signal, cred, url.searchParams.get("uid") ?? "");
      return new Response(outcome === "notified" ? `notified:${this.lastNotifyAt}\n${this.news}` : `${outcome}:${this.lastNotifyAt}`);
    }
    return Response.json({ error: { code: "not_found", message: `no route ${request.method} ${url.pathname}` } }, { status: 404 });
  }

  private hold(ms: number, signal: AbortSignal | undefined, cred: number, uid: string): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      if (signal?.aborted || ms === 0) return resolve("timeout");
      if (uid) this.byUid.get(uid)?.end("replaced");
      let ended = false;
      const w: Waiter = {
        cred,
        uid,
        end: (outcome) => {
          if (ended) return;
          ended = true;
          clearTimeout(timer);
          // The abort listener stays: it is a no-op once ended and goes with the request, and
          // removing it is a native call per waiter on the wake of the whole fleet.
          this.waiters.delete(w);
          if (uid && this.byUid.get(uid) === w) this.byUid.delete(uid);
          resolve(outcome);
        },
      };
      const onAbort = () => w.end("timeout");
      const timer = setTimeout(() => w.end("timeout"), ms);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(w);
      if (uid) this.byUid.set(uid, w);
    });
  }

  private wakeAll(): number {
    const all = [...this.waiters];
    for (const w of all) w.end("notified");
    return all.length;
  }
}
