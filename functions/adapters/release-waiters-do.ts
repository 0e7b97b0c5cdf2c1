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
 *   POST /revoke?cred=C      ends the waits held with credential C; answers {"ended": n}
 *   GET  /waiters            {"waiters": n} (tests and operators)
 *
 * A caller that goes away (agent disconnects, so the Worker's subrequest is cancelled) aborts the
 * incoming request's signal (compatibility flag `enable_request_signal`) and is dropped at once.
 */
export const MAX_WAIT_MS = 120_000;
/** Revoked credentials remembered, so a wait that arrives just after the revocation ends at once. */
const MAX_REVOKED = 10_000;

type Outcome = "notified" | "timeout" | "revoked" | "replaced";
type Waiter = { cred: number; uid: string; end(outcome: Outcome): void };

export class ReleaseWaiters {
  private readonly waiters = new Set<Waiter>();
  private readonly byUid = new Map<string, Waiter>();
  private readonly revoked = new Set<number>();
  private lastNotifyAt = 0;
  private news = "";
  private newsVersion = 0;

  constructor(_state?: unknown, _env?: unknown) {}

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/notify" && request.method === "POST") {
      // The body, when there is one, is the service's publish list as of this publish: handed to
      // every poll this notify wakes, so they need no database read.
      const body = await request.text();
      const version = Number(request.headers.get("x-news-version")) || 0;
      if (!body) this.news = ""; // a notify without news: waiters read the database
      else if (version >= this.newsVersion) [this.news, this.newsVersion] = [body, version];
      this.lastNotifyAt = Math.max(Date.now(), this.lastNotifyAt + 1);
      const woken = this.wakeAll();
      return Response.json({ woken });
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
          signal?.removeEventListener("abort", onAbort);
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
