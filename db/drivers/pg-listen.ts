/**
 * The Postgres LISTEN connection of one server process (node-postgres): one client, outside the
 * pool, LISTENing on every channel asked for. It is kept alive against both ways of losing it:
 * - the server ends it (restart, failover, an idle-connection killer, `pg_terminate_backend`): the
 *   client's `end` event;
 * - it dies silently (a NAT or firewall dropping an idle flow, a partition): nothing arrives, ever.
 *   TCP keepalive is on, and every `checkSeconds` (`EDGECONF_LISTEN_CHECK_SECONDS`, default 30) a
 *   `select 1` must come back within as long, else the socket is destroyed.
 * Either way it is opened again (0.1 s, doubling up to 5 s between tries) and the gap handlers run
 * with the time it was last known to be alive: notifications sent since were not received (a missed
 * revocation would leave a revoked token working on this instance).
 */
import type pg from "pg";

export type ListenConnection = {
  /** LISTEN on `channel` (once; later calls only add the handler). */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** Runs `fn(lostAt)` each time the connection is open again after a loss. */
  onGap(fn: (lostAt: Date) => void): () => void;
  close(): Promise<void>;
};

const quoted = (channel: string) => `"${channel.replace(/"/g, "")}"`;

export function pgListenConnection(
  Client: typeof pg.Client,
  url: string,
  opts: { checkSeconds: number; logError(err: Error): void; logLine(level: "INFO" | "WARN", msg: string, fields: Record<string, string | number>): void },
): ListenConnection {
  const handlers = new Map<string, Set<(p: string) => void>>();
  const gapHandlers = new Set<(lostAt: Date) => void>();
  let closed = false;
  let current: Promise<pg.Client> | undefined;
  // Queries on the client go one at a time (node-postgres deprecates queuing on a busy client).
  let queue: Promise<unknown> = Promise.resolve();
  const run = (client: pg.Client, text: string) => {
    const next = queue.then(() => client.query(text));
    queue = next.catch(() => {});
    return next;
  };

  const open = async (): Promise<pg.Client> => {
    const client = new Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
    client.on("error", (err) => opts.logError(err));
    client.on("notification", (n) => handlers.get(n.channel)?.forEach((h) => h(n.payload ?? "")));
    await client.connect();
    queue = Promise.resolve();
    try {
      for (const channel of handlers.keys()) await run(client, `LISTEN ${quoted(channel)}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    let aliveAt = new Date();
    let lost = false;
    const onLost = (lostAt: Date) => {
      if (lost) return;
      lost = true;
      clearInterval(check);
      if (!closed) void reopen(lostAt);
    };
    const check = setInterval(() => {
      const asked = new Date();
      let answered = false;
      const late = setTimeout(() => {
        if (answered || lost) return;
        opts.logLine("WARN", "postgres LISTEN connection did not answer: opening another", { seconds: opts.checkSeconds });
        onLost(aliveAt);
        // Ends the socket without waiting for the server (which may never answer): 'end' follows.
        (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      }, opts.checkSeconds * 1000);
      late.unref();
      run(client, "select 1").then(
        () => {
          answered = true;
          clearTimeout(late);
          aliveAt = asked;
        },
        () => {}, // 'end' or 'error' tells
      );
    }, opts.checkSeconds * 1000);
    check.unref();
    client.once("end", () => onLost(aliveAt));
    return client;
  };

  const reopen = async (lostAt: Date) => {
    for (let delay = 100; !closed; delay = Math.min(delay * 2, 5000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (closed) return;
      const attempt = open();
      current = attempt;
      try {
        await attempt;
      } catch (err) {
        opts.logError(err as Error);
        continue;
      }
      opts.logLine("INFO", "postgres LISTEN connection open again; notifications since it was lost are assumed missed", { lost_at: lostAt.toISOString() });
      for (const g of gapHandlers) g(lostAt);
      return;
    }
  };

  return {
    async listen(channel, onPayload) {
      let set = handlers.get(channel);
      const first = !set;
      if (!set) handlers.set(channel, (set = new Set()));
      set.add(onPayload);
      if (!current) current = open();
      else if (first) await run(await current, `LISTEN ${quoted(channel)}`);
      await current;
      return async () => {
        set!.delete(onPayload);
      };
    },
    onGap(fn) {
      gapHandlers.add(fn);
      return () => gapHandlers.delete(fn);
    },
    async close() {
      closed = true;
      await (await current?.catch(() => undefined))?.end().catch(() => {});
    },
  };
}
