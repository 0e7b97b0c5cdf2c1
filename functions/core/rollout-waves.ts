import { and, desc, eq, gte, inArray } from "drizzle-orm";
import { clientEvents, clients, rollouts, type GroupSnapshot, type HookRun } from "../../db/schema/index";
import { ONLINE_WINDOW_MS } from "./clients";
import type { Db } from "./ports";
import { groupMatches, inRolloutShare } from "./targeting";

type RolloutRow = typeof rollouts.$inferSelect;

/** Where one targeted client stands in a rollout. `failed` includes online clients silent past the report timeout. */
export type MemberOutcome = "succeeded" | "failed" | "pending" | "offline";

export type Member = {
  uid: string;
  labels: Record<string, string>;
  /** First wave (index) whose share holds the client; it stays in every later one. */
  wave: number;
  online: boolean;
  outcome: MemberOutcome;
  /** The agent's message, or "no report within N s" for a timeout. */
  reason: string;
  preHook: HookRun | null;
  postHook: HookRun | null;
  /** When it reported (or timed out); null while pending or offline. */
  reportedAt: Date | null;
  /** When its report is due: its wave's release + reportTimeoutSeconds (null before its wave goes out). */
  deadline: Date | null;
};

/** At most this many failing clients are listed per wave (the counts stay exact). */
export const FAILING_LISTED = 50;

export type WaveProgress = {
  index: number;
  percent: number;
  released: boolean;
  releasedAt: string | null;
  /** Clients inside this wave's share (earlier waves' clients included: they stay in every later wave). */
  targeted: number;
  succeeded: number;
  failed: number;
  pending: number;
  /** Not seen within the online window and no report: not waited for. */
  offline: number;
  failing: { uid: string; labels: Record<string, string>; wave: number; reason: string; preHook: HookRun | null; postHook: HookRun | null; reportedAt: string | null }[];
};

/**
 * The gate of the newest released wave (design.md "Rollouts"): `tooManyFailures` when failures pass
 * maxFailurePercent of the clients it waits for; `reported` when none is pending; `bakedAt` = last
 * report (or timeout, or the wave's release when nobody reported) + bakeSeconds; `nextDeadline` the
 * earliest pending client's report deadline.
 */
export type Gate = { counted: number; failed: number; tooManyFailures: boolean; reported: boolean; bakedAt: Date; nextDeadline: Date | null };

/** Whether a client is a member of the rollout's audience (its publish's groups; everyone without groups). */
export const inAudience = (groups: GroupSnapshot[], c: { uid: string; labels: Record<string, string> }) => groups.length === 0 || groups.some((g) => groupMatches(g, c));

/** The first wave index whose share holds the uid, or -1 (never: the last wave is 100 %). */
export function joinWave(uid: string, rolloutId: number, waves: number[]): number {
  return waves.findIndex((p) => inRolloutShare(uid, rolloutId, p));
}

/**
 * Reads the service's known clients and their latest SUCCESS/FAILED report for the rollout's version
 * (since it started), and classifies every client of the audience. Clients the server has never seen
 * are not counted: a rollout gates on what agents report.
 */
export async function rolloutMembers(db: Db, r: RolloutRow, groups: GroupSnapshot[], now: Date): Promise<Member[]> {
  const [rows, reports] = await Promise.all([
    db.select({ uid: clients.uid, labels: clients.labels, lastSeen: clients.lastHeartbeatAt }).from(clients).where(eq(clients.serviceId, r.serviceId)),
    db
      .selectDistinctOn([clientEvents.clientUid], { uid: clientEvents.clientUid, status: clientEvents.status, message: clientEvents.message, preHook: clientEvents.preHook, postHook: clientEvents.postHook, at: clientEvents.createdAt })
      .from(clientEvents)
      .where(and(eq(clientEvents.serviceId, r.serviceId), eq(clientEvents.releaseId, r.releaseId), gte(clientEvents.createdAt, r.createdAt), inArray(clientEvents.status, ["SUCCESS", "FAILED"])))
      .orderBy(clientEvents.clientUid, desc(clientEvents.id)),
  ]);
  const byUid = new Map(reports.map((e) => [e.uid, e]));
  const onlineSince = now.getTime() - ONLINE_WINDOW_MS;
  const members: Member[] = [];
  for (const c of rows) {
    if (!inAudience(groups, c)) continue;
    const wave = joinWave(c.uid, r.id, r.waves);
    if (wave < 0) continue;
    const online = c.lastSeen !== null && c.lastSeen.getTime() >= onlineSince;
    const releasedAt = r.waveReleasedAt[wave];
    const deadline = releasedAt ? new Date(new Date(releasedAt).getTime() + r.reportTimeoutSeconds * 1000) : null;
    const ev = byUid.get(c.uid);
    const base = { uid: c.uid, labels: c.labels, wave, online, deadline, preHook: ev?.preHook ?? null, postHook: ev?.postHook ?? null };
    if (ev) members.push({ ...base, outcome: ev.status === "SUCCESS" ? "succeeded" : "failed", reason: ev.message, reportedAt: ev.at });
    else if (!online) members.push({ ...base, outcome: "offline", reason: "", reportedAt: null });
    else if (deadline && now >= deadline) members.push({ ...base, outcome: "failed", reason: `no report within ${r.reportTimeoutSeconds} s`, reportedAt: deadline });
    else members.push({ ...base, outcome: "pending", reason: "", reportedAt: null });
  }
  return members;
}

/** Per wave: targeted, succeeded, failed, pending, offline and the failing clients (first FAILING_LISTED). */
export function waveProgress(r: RolloutRow, members: Member[]): WaveProgress[] {
  return r.waves.map((percent, index) => {
    const inWave = members.filter((m) => m.wave <= index);
    const count = (o: MemberOutcome) => inWave.filter((m) => m.outcome === o).length;
    const releasedAt = r.waveReleasedAt[index] ?? null;
    return {
      index,
      percent,
      released: releasedAt !== null,
      releasedAt,
      targeted: inWave.length,
      succeeded: count("succeeded"),
      failed: count("failed"),
      pending: count("pending"),
      offline: count("offline"),
      failing: inWave
        .filter((m) => m.outcome === "failed")
        .slice(0, FAILING_LISTED)
        .map((m) => ({ uid: m.uid, labels: m.labels, wave: m.wave, reason: m.reason, preHook: m.preHook, postHook: m.postHook, reportedAt: m.reportedAt?.toISOString() ?? null })),
    };
  });
}

/** The gate of wave `r.wave` (see `Gate`). Pure. */
export function gateOf(r: RolloutRow, members: Member[]): Gate {
  const inWave = members.filter((m) => m.wave <= r.wave && m.outcome !== "offline");
  const failed = inWave.filter((m) => m.outcome === "failed").length;
  const pending = inWave.filter((m) => m.outcome === "pending");
  const releasedAt = new Date(r.waveReleasedAt[r.wave] ?? r.createdAt);
  const last = Math.max(releasedAt.getTime(), ...inWave.map((m) => m.reportedAt?.getTime() ?? 0));
  const deadlines = pending.map((m) => m.deadline?.getTime() ?? Infinity).filter(Number.isFinite);
  return {
    counted: inWave.length,
    failed,
    // Integer arithmetic: 1 failure of 3 at 33 % is above the threshold (33.3 > 33).
    tooManyFailures: failed * 100 > r.maxFailurePercent * inWave.length,
    reported: pending.length === 0,
    bakedAt: new Date(last + r.bakeSeconds * 1000),
    nextDeadline: deadlines.length ? new Date(Math.min(...deadlines)) : null,
  };
}
