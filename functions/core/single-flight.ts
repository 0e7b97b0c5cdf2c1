/**
 * Single flight (after Go's golang.org/x/sync/singleflight) for runtimes where one request must not
 * await a promise that another request's I/O settles: on Workers such a promise never settles if the
 * request that made it ends first, and the waiter hangs. So followers never share the leader's
 * promise: the first caller of a key reads; a caller that arrives while that read is under way polls
 * `peek` on its own timers (2 ms, doubling to 50 ms) and takes the value once the leader has stored
 * it. When the read it waited on ended without a value for it (not found, an error, or a read that
 * started too early for it: see `peek`), a follower waits for a read another follower has started
 * since, else reads itself; so a burst of callers makes a few reads, not one each. Nobody waits
 * more than `maxWaitMs` for one read (a leader whose request was cancelled never reports back).
 *
 * Used by the per-isolate caches (core/feed.ts, core/token-cache.ts) so that a fleet reconnecting
 * at once makes one read of its token, service, publish list and manifest per isolate instead of
 * one per agent (issue 11: 1,000 agents opened 1,000 database connections, 20 at a time).
 */
export class SingleFlight {
  private flights = new Map<string, { id: number; startedAt: number }>();
  private nextId = 0;

  constructor(private readonly maxWaitMs = 2_000) {}

  /**
   * `peek`: the value if it is stored (by an earlier `read` of this key), else undefined.
   * `read`: reads and stores it; its result is returned to this caller only. Throws what `read` throws.
   */
  async run<T>(key: string, peek: () => T | undefined, read: () => Promise<T>): Promise<T> {
    // Wait while a read of the key is under way; when it ends without a value for us (or another
    // follower started a newer read meanwhile), look again before reading ourselves.
    for (let delay = 2; ; delay = Math.min(50, delay * 2)) {
      const flight = this.flights.get(key);
      if (!flight || Date.now() - flight.startedAt >= this.maxWaitMs) break;
      await new Promise((resolve) => setTimeout(resolve, delay));
      const value = peek();
      if (value !== undefined) return value;
    }
    const mine = { id: ++this.nextId, startedAt: Date.now() };
    // Leaders whose requests were cancelled leave their entry behind: bound the map.
    if (this.flights.size >= MAX_FLIGHTS) this.flights.clear();
    this.flights.set(key, mine);
    try {
      return await read();
    } finally {
      if (this.flights.get(key) === mine) this.flights.delete(key);
    }
  }
}

const MAX_FLIGHTS = 10_000;
