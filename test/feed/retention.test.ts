/**
 * Retention of what agents report: a client keeps its newest N events; events past the retention
 * time and clients not seen for their retention time go. The prune on writes is what Workers
 * have (no timer), so this file runs on every runtime.
 */
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowsOf } from "../../db/types";
import { createTestApi, type TestApi } from "../helpers/app";
import { agentToken, seedService } from "../helpers/seed";

let api: TestApi;
let agent: string;
let serviceId: number;
const BIZ = 10;
const feed = `/feed/v1/bizs/${BIZ}/apps/svc`;

beforeAll(async () => {
  api = await createTestApi({ limits: { eventsPerClient: 3, eventRetentionDays: 7, clientRetentionDays: 14 } });
  expect((await api.call("POST", "/api/v1/bizs", { id: BIZ, name: "ten" })).status).toBe(201);
  serviceId = (await seedService(api, BIZ, "svc")).id;
  agent = (await agentToken(api, BIZ, ["svc"])).token;
});
afterAll(() => api?.close());

const event = (uid: string, n: number) => api.call("POST", `${feed}/events`, { uid, releaseId: null, status: "FAILED", message: `attempt ${n}` }, { token: agent });
const eventsOf = async (uid: string) => (await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients/${uid}/events?limit=500`)).body.items.map((e: any) => e.message);
const clientUids = async () => (await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients?limit=500`)).body.items.map((c: any) => c.uid).sort();

/** Rows as an agent would have left them `days` ago (written to the database directly: the API only writes "now"). */
async function seedOld(uid: string, days: number, events: number) {
  const at = new Date(Date.now() - days * 24 * 3600 * 1000).toISOString();
  await api.deps.db.execute(sql`insert into clients (biz_id, service_id, uid, last_heartbeat_at, created_at) values (${BIZ}, ${serviceId}, ${uid}, ${at}::timestamptz, ${at}::timestamptz)`);
  for (let i = 0; i < events; i++) {
    await api.deps.db.execute(sql`insert into client_events (biz_id, service_id, client_uid, status, message, created_at) values (${BIZ}, ${serviceId}, ${uid}, 'FAILED', ${`old ${i}`}, ${at}::timestamptz)`);
  }
}

describe("retention of clients and events", () => {
  // First in the file: the first write in a process (isolate on Workers) runs the time-based prune.
  it("happy: a write prunes events past their retention and clients unseen past theirs, keeping the rest", async () => {
    await seedOld("gone-host", 20, 2); // unseen 20 days > 14: the client and its events go
    await seedOld("quiet-host", 10, 2); // unseen 10 days < 14: stays, but its 10-day-old events (> 7) go
    expect(await clientUids()).toEqual(["gone-host", "quiet-host"]);
    expect((await event("live-host", 1)).status).toBe(202);
    expect(await clientUids()).toEqual(["live-host", "quiet-host"]);
    expect(await eventsOf("quiet-host")).toEqual([]);
    expect(await eventsOf("live-host")).toEqual(["attempt 1"]);
    const orphans = rowsOf<{ n: number }>(await api.deps.db.execute(sql`select count(*)::int as n from client_events where client_uid = 'gone-host'`));
    expect(Number(orphans[0].n)).toBe(0);
  });

  it("happy: a client keeps only its newest events; its last event stays its last", async () => {
    for (let n = 1; n <= 6; n++) expect((await event("busy-host", n)).status).toBe(202);
    expect(await eventsOf("busy-host")).toEqual(["attempt 6", "attempt 5", "attempt 4"]);
    const client = (await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/clients?limit=500`)).body.items.find((c: any) => c.uid === "busy-host");
    expect(client.lastEvent.message).toBe("attempt 6");
    // Other clients' events are untouched by one client's cap.
    expect(await eventsOf("live-host")).toEqual(["attempt 1"]);
  });
});
