/**
 * A publish by another instance that lands while this process is between reading the publish list
 * for its own publish's wake and sending that wake: the list it read misses the other publish, so it
 * must be dropped, not installed (feed-cache.ts: installed only when no other notify of the service
 * came since the read began). Installed, it would answer every poll from a list without the newest
 * publish for up to 60 s, sending hosts that already applied the newest release back to an older one.
 *
 * Made deterministic with a second connection to the same database: it holds `release_files` locked,
 * so this process stops after its list read, while reading the manifest of the version it publishes;
 * meanwhile "another instance" (plain SQL: a publish row and the NOTIFY every instance sends) publishes
 * a newer version. Needs Postgres (PGlite has one connection: the lock would block the test itself)
 * and the Node process (it watches the process's held polls to know the NOTIFY arrived).
 */
import pg from "pg";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsOf } from "../../db/types";
import { createTestApi, nodeOnly, testRuntime, type CallResult, type TestApi } from "../helpers/app";
import { agentToken, seedPublish, seedRelease, seedService } from "../helpers/seed";

const noPostgres = !process.env.DATABASE_URL;
if (noPostgres && testRuntime === "node") console.log("skipped: holding a table lock beside the server needs Postgres (set DATABASE_URL); PGlite has one connection");
const skip = noPostgres || nodeOnly("stops the Node process between its publish-list read and its notify");

const biz = 10;
const app = "service_race";
let api: TestApi;

beforeAll(async () => {
  if (skip) return;
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: biz, name: "demo" })).status).toBe(201);
});
afterAll(() => api?.close());

/** Polls `done` until it holds (10 ms apart); never a timing assertion, only a bound on a hang. */
async function until(what: string, done: () => Promise<boolean>) {
  for (let i = 0; i < 6000; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`still waiting for ${what}`);
}

/** A connection of its own to the database the test app runs on, as another instance would have. */
async function connect(): Promise<pg.Client> {
  const [{ name }] = rowsOf<{ name: string }>(await api.deps.db.execute(sql`select current_database() as name`));
  const url = new URL(process.env.DATABASE_URL!);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  return client;
}

describe.skipIf(skip)("feed: a publish by another instance during this process's publish", () => {
  it("drops the list read before another instance's notify: the newest publish is served, a host on it is held", async () => {
    const svc = await seedService(api, biz, app, [{ path: "/etc/race.conf", content: "" }]);
    const releases = [];
    for (let i = 0; i < 3; i++) {
      expect((await api.call("PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?path=%2Fetc%2Frace.conf`, `v=${i}\n`)).status).toBeLessThan(300);
      releases.push(await seedRelease(api, biz, app, `R${i}`));
    }
    const [r0, r1, r2] = releases;
    await seedPublish(api, biz, app, r0.id);
    const token = (await agentToken(api, biz, [app], "race")).token;
    const poll = (uid: string, query: string) => api.call("GET", `/feed/v1/bizs/${biz}/apps/${app}/release?uid=${uid}&${query}`, undefined, { token });

    // The process has the list and R0's manifest; R1's it has never read.
    expect((await poll("first", "wait=0")).body.release.id).toBe(r0.id);
    // A host on R0, held: its wake shows when the process has heard a notify of the service.
    const held = poll("held", `current=${r0.id}&wait=60`);
    await until("the poll to be held", async () => (await api.waiting(svc.id)) === 1);

    const locker = await connect();
    const other = await connect();
    let publishing: Promise<CallResult> | undefined;
    try {
      await locker.query("begin");
      await locker.query("lock table release_files in access exclusive mode");
      publishing = api.call("POST", `/api/v1/bizs/${biz}/apps/${app}/publishes`, { versionId: r1.id });
      // The publish commits (its transaction reads no release_files), then the process reads the
      // list [R1, R0] and stops reading R1's manifest: a lock request on release_files waits.
      await until("the process to wait for release_files", async () => {
        const { rows } = await other.query(
          "select count(*)::int as n from pg_locks where locktype = 'relation' and relation = 'release_files'::regclass and database = (select oid from pg_database where datname = current_database()) and not granted",
        );
        return rows[0].n > 0;
      });
      const { rows: mine } = await other.query("select id from publishes where service_id = $1 and release_id = $2", [svc.id, r1.id]);
      expect(mine, "R1's publish committed before the process waits").toHaveLength(1);

      // Another instance publishes R2 to everyone (committed at once), then tells every instance.
      const { rows: theirs } = await other.query(
        "insert into publishes (biz_id, service_id, release_id, groups, rollout, memo, created_by) select biz_id, service_id, $1, groups, rollout, memo, 'another-instance' from publishes where id = $2 returning id",
        [r2.id, mine[0].id],
      );
      expect(theirs[0].id).toBeGreaterThan(mine[0].id);
      await other.query("select pg_notify('edgeconf_release', $1)", [`${svc.id}:another-instance`]);
      // The process heard it: the held host woke (its answer waits for the lock, like the publish).
      await until("the other instance's notify to arrive", async () => (await api.waiting(svc.id)) === 0);
    } finally {
      await locker.query("rollback").catch(() => {});
      await locker.end();
      await other.end();
    }

    const published = (await publishing)!;
    expect(published.status).toBe(201);
    expect(published.body.version.id).toBe(r1.id);
    const woken = await held;
    expect(woken.status).toBe(200);
    expect(woken.body.release.id).toBe(r2.id);

    // The list read for R1's publish missed R2: dropped, not installed. A client with nothing gets
    // R2, and a host that applied R2 is held (304), never sent back to R1.
    const fresh = await poll("fresh", "wait=0");
    expect(fresh.body.release?.id, JSON.stringify(fresh.body)).toBe(r2.id);
    const onNewest = await poll("on-newest", `current=${r2.id}&wait=1`);
    expect(onNewest.status, JSON.stringify(onNewest.body)).toBe(304);
    expect(onNewest.headers.get("etag")).toBe(`"r${r2.id}"`);
  });
});
