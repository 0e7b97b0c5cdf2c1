/**
 * Durable Object (one per service, `idFromName(String(serviceId))`) that holds the long-polls of
 * that service's agents and answers them all when the publish path calls `/notify`.
 *
 *   GET  /wait?ms=N&since=T  held until a notify or N ms; body "notified:<t>\n<news>" | "timeout:<t>", t being
 *                            the time of the last notify. A notify at or after T (epoch ms) that came
 *                            before the wait arrived answers at once, so a publish racing the feed's
 *                            database read is not lost.
 *   POST /notify             wakes every waiter (request body: the news they get); answers {"woken": n}
 *   GET  /waiters            {"waiters": n} (tests and operators)
 *
 * A caller that goes away (agent disconnects, so the Worker's subrequest is cancelled) aborts the
 * incoming request's signal (compatibility flag `enable_request_signal`) and is dropped at once.
 */
export const MAX_WAIT_MS = 120_000;

export class ReleaseWaiters {
  private readonly waiters = new Set<(notified: boolean) => void>();
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
    if (url.pathname === "/waiters" && request.method === "GET") return Response.json({ waiters: this.waiters.size });
    if (url.pathname === "/wait" && request.method === "GET") {
      const ms = Math.max(0, Math.min(MAX_WAIT_MS, Number(url.searchParams.get("ms")) || 0));
      const since = Number(url.searchParams.get("since")) || 0;
      if (since > 0 && this.lastNotifyAt >= since) return new Response(`notified:${this.lastNotifyAt}\n${this.news}`);
      const notified = await this.hold(ms, request.signal);
      return new Response(notified ? `notified:${this.lastNotifyAt}\n${this.news}` : `timeout:${this.lastNotifyAt}`);
    }
    return Response.json({ error: { code: "not_found", message: `no route ${request.method} ${url.pathname}` } }, { status: 404 });
  }

  private hold(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      if (signal?.aborted || ms === 0) return resolve(false);
      const done = (notified: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.waiters.delete(done);
        resolve(notified);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(done);
    });
  }

  private wakeAll(): number {
    const all = [...this.waiters];
    for (const w of all) w(true);
    return all.length;
  }
}
