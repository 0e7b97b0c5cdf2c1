import { and, desc, count, eq, inArray } from "drizzle-orm";
import { publishes, releases, rollouts, type GroupSnapshot } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { DomainError, invalid, isUniqueViolation, notFound } from "./errors";
import { announcePublish } from "./feed-cache";
import type { AppDeps, Db } from "./ports";
import { publishRelease } from "./publishes";
import { gateOf, rolloutMembers, waveProgress, type Member } from "./rollout-waves";
import { loadService, loadServiceById } from "./services";
import { sightingsFor } from "./sightings";
import { resolveTarget } from "./targeting";

type RolloutRow = typeof rollouts.$inferSelect;
export type RolloutState = RolloutRow["state"];

/** How a rollout steps and what gates each step (design.md "Rollouts"). */
export type RolloutSettings = { waves: number[]; bakeSeconds: number; maxFailurePercent: number; reportTimeoutSeconds: number; autoRollback: boolean };
export type StartRolloutInput = RolloutSettings & { versionId: number; groups?: number[]; memo?: string };

/** States a rollout can still move from; at most one per service (a partial unique index holds it). */
export const OPEN_STATES: RolloutState[] = ["running", "paused", "halted"];
const MAX_WAVES = 20;

/**
 * The rules the API's schema cannot say alone: waves strictly increasing, each in 1..100, ending at
 * 100; thresholds in range. Throws `invalid` naming the field (the webhook path has no zod in front).
 */
export function checkSettings(s: RolloutSettings): void {
  if (!Array.isArray(s.waves) || s.waves.length < 1 || s.waves.length > MAX_WAVES) throw invalid("waves", `1 to ${MAX_WAVES} percentages`);
  s.waves.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 1 || p > 100) throw invalid(`waves.${i}`, "must be a whole percentage from 1 to 100");
    if (i > 0 && p <= s.waves[i - 1]) throw invalid("waves", `must increase (wave ${i + 1}: ${p} after ${s.waves[i - 1]})`);
  });
  if (s.waves[s.waves.length - 1] !== 100) throw invalid("waves", "the last wave must be 100");
  const whole = (field: keyof RolloutSettings, v: number, max: number, min = 0) => {
    if (!Number.isInteger(v) || v < min || v > max) throw invalid(field, `must be a whole number from ${min} to ${max}`);
  };
  whole("bakeSeconds", s.bakeSeconds, 7 * 86400);
  whole("maxFailurePercent", s.maxFailurePercent, 100);
  whole("reportTimeoutSeconds", s.reportTimeoutSeconds, 7 * 86400, 1);
}

export const rolloutSystemActor = (bizId: number): Actor => ({ credentialId: null, name: "system:rollout", kind: "system", bizId, apps: [] });

export function rolloutView(r: RolloutRow, versionName: string) {
  return {
    id: r.id,
    serviceId: r.serviceId,
    version: { id: r.releaseId, name: versionName },
    publishId: r.publishId,
    state: r.state,
    reason: r.reason,
    waves: r.waves,
    currentWave: r.wave,
    bakeSeconds: r.bakeSeconds,
    maxFailurePercent: r.maxFailurePercent,
    reportTimeoutSeconds: r.reportTimeoutSeconds,
    autoRollback: r.autoRollback,
    memo: r.memo,
    createdBy: r.createdBy,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    finishedAt: r.finishedAt?.toISOString() ?? null,
    nextCheckAt: r.nextCheckAt?.toISOString() ?? null,
  };
}

const withName = (db: Db) => db.select({ r: rollouts, name: releases.name }).from(rollouts).innerJoin(releases, eq(releases.id, rollouts.releaseId));

/**
 * Starts a rollout: a publish of the version to the groups (everyone without groups) that reaches only
 * wave 1's share, in the caller's transaction when given one. 409 `conflict` while another rollout of
 * the service is open. The caller announces the publish and schedules evaluation after the commit
 * (`afterStart`).
 */
export async function startRollout(db: Db, actor: Actor, bizId: number, serviceId: number, input: StartRolloutInput, now: Date) {
  checkSettings(input);
  try {
    return await db.transaction(async (tx) => {
      const s = await loadServiceById(tx, bizId, serviceId, true);
      const [rel] = await tx.select({ id: releases.id, name: releases.name }).from(releases).where(and(eq(releases.id, input.versionId), eq(releases.serviceId, s.id)));
      if (!rel) throw invalid("versionId", `version ${input.versionId} is not a version of service '${s.name}'`);
      const [open] = await tx.select({ id: rollouts.id, state: rollouts.state }).from(rollouts).where(and(eq(rollouts.serviceId, s.id), inArray(rollouts.state, OPEN_STATES)));
      if (open) throw new DomainError("conflict", `service '${s.name}' has rollout ${open.id} ${open.state}: pause is not enough, abort it or let it finish first`);
      const [row] = await tx
        .insert(rollouts)
        .values({
          bizId,
          serviceId: s.id,
          releaseId: rel.id,
          waves: input.waves,
          waveReleasedAt: [now.toISOString()],
          bakeSeconds: input.bakeSeconds,
          maxFailurePercent: input.maxFailurePercent,
          reportTimeoutSeconds: input.reportTimeoutSeconds,
          autoRollback: input.autoRollback,
          memo: input.memo ?? "",
          createdBy: actor.name,
          createdAt: now,
          updatedAt: now,
          nextCheckAt: now,
        })
        .returning();
      const p = await publishRelease(tx, actor, bizId, s.id, { versionId: rel.id, groups: input.groups, memo: input.memo ?? `rollout ${row.id}`, rollout: { id: row.id, percent: input.waves[0] } }, now);
      const [r] = await tx.update(rollouts).set({ publishId: p.id }).where(eq(rollouts.id, row.id)).returning();
      const view = rolloutView(r, rel.name);
      await recordAudit(tx, actor, { bizId, action: "rollout.start", resourceType: "rollout", resourceId: r.id, after: view });
      return view;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new DomainError("conflict", "another rollout of this service is open: abort it or let it finish first");
    throw err;
  }
}

/** After a start or transition commits: wake the service's long-polls and arm the next evaluation. */
export async function afterChange(deps: Pick<AppDeps, "db" | "notifier" | "scheduler">, serviceId: number, opts: { announce: boolean; nextCheckAt: Date | null }) {
  if (opts.announce) await announcePublish(deps, serviceId);
  if (opts.nextCheckAt && deps.scheduler) await deps.scheduler.schedule(serviceId, opts.nextCheckAt);
}

export async function createRollout(deps: AppDeps, actor: Actor, bizId: number, app: string, input: StartRolloutInput) {
  const s = await loadService(deps.db, bizId, app);
  const view = await startRollout(deps.db, actor, bizId, s.id, input, deps.clock());
  await afterChange(deps, s.id, { announce: true, nextCheckAt: view.nextCheckAt ? new Date(view.nextCheckAt) : null });
  return view;
}

export async function listRollouts(db: Db, bizId: number, app: string, q: { limit: number; offset: number; state?: RolloutState }) {
  const s = await loadService(db, bizId, app);
  const where = q.state ? and(eq(rollouts.serviceId, s.id), eq(rollouts.state, q.state)) : eq(rollouts.serviceId, s.id);
  const [rows, [{ total }]] = await Promise.all([withName(db).where(where).orderBy(desc(rollouts.id)).limit(q.limit).offset(q.offset), db.select({ total: count() }).from(rollouts).where(where)]);
  return { items: rows.map((x) => rolloutView(x.r, x.name)), total, limit: q.limit, offset: q.offset };
}

async function loadRollout(db: Db, serviceId: number, id: number, forUpdate = false) {
  const q = withName(db).where(and(eq(rollouts.id, id), eq(rollouts.serviceId, serviceId)));
  const [row] = forUpdate ? await q.for("update", { of: rollouts }) : await q;
  if (!row) throw notFound(`rollout ${id}`);
  return row;
}

async function groupsOf(db: Db, r: RolloutRow): Promise<GroupSnapshot[]> {
  if (r.publishId === null) return [];
  const [p] = await db.select({ groups: publishes.groups }).from(publishes).where(eq(publishes.id, r.publishId));
  return p?.groups ?? [];
}

/** One rollout with per-wave progress: targeted, succeeded, failed, pending, offline, failing clients. */
export async function getRollout(deps: Pick<AppDeps, "db" | "clock" | "cacheScope" | "defer">, bizId: number, app: string, id: number) {
  const s = await loadService(deps.db, bizId, app);
  await sightingsFor(deps).flush(deps.db);
  const { r, name } = await loadRollout(deps.db, s.id, id);
  const members = await rolloutMembers(deps.db, r, await groupsOf(deps.db, r), deps.clock());
  return { ...rolloutView(r, name), progress: waveProgress(r, members) };
}

export type Control = "pause" | "resume" | "abort" | "advance";
/** From which states each control applies (anything else: 422 failed_precondition). */
const CONTROL_FROM: Record<Control, RolloutState[]> = { pause: ["running"], resume: ["paused", "halted"], abort: OPEN_STATES, advance: OPEN_STATES };

/**
 * pause: stop stepping (released waves stay); resume: running again (a halted rollout is re-judged:
 * it halts again unless the failures were fixed); abort: stop for good, clients keep what they
 * have (`rollback: true` also gives the released waves back what they had before); advance: release
 * the next wave now whatever the gate says (the last wave: completed). Audited.
 */
export async function controlRollout(deps: AppDeps, actor: Actor, bizId: number, app: string, id: number, control: Control, opts: { rollback?: boolean } = {}) {
  const s = await loadService(deps.db, bizId, app);
  const now = deps.clock();
  const out = await deps.db.transaction(async (tx) => {
    const { r, name } = await loadRollout(tx, s.id, id, true);
    if (!CONTROL_FROM[control].includes(r.state)) throw new DomainError("failed_precondition", `rollout ${id} is ${r.state}: ${control} applies only when ${CONTROL_FROM[control].join(" or ")}`);
    let t: Transition;
    if (control === "pause") t = await transition(tx, actor, r, { state: "paused", reason: `paused by ${actor.name}` }, now);
    else if (control === "resume") t = await transition(tx, actor, r, { state: "running", reason: `resumed by ${actor.name}` }, now, { nextCheckAt: now });
    else if (control === "advance") t = await advanceWave(tx, actor, r, now, `advanced by ${actor.name}`);
    else if (opts.rollback) t = await rollBack(tx, actor, r, now, `aborted with rollback by ${actor.name}`);
    else t = await transition(tx, actor, r, { state: "aborted", reason: `aborted by ${actor.name}`, finishedAt: now }, now);
    return { ...t, view: rolloutView(t.row, name) };
  });
  await afterChange(deps, s.id, { announce: out.announce, nextCheckAt: out.row.nextCheckAt });
  return out.view;
}

type Transition = { row: RolloutRow; announce: boolean };

/** Updates the rollout and audits the change (`rollout.<state>` or `rollout.wave`). */
async function transition(tx: Db, actor: Actor, r: RolloutRow, patch: Partial<typeof rollouts.$inferInsert>, now: Date, opts: { nextCheckAt?: Date | null; action?: string; announce?: boolean } = {}): Promise<Transition> {
  const [row] = await tx
    .update(rollouts)
    .set({ ...patch, updatedAt: now, nextCheckAt: opts.nextCheckAt ?? null })
    .where(eq(rollouts.id, r.id))
    .returning();
  const pick = (x: RolloutRow) => ({ state: x.state, wave: x.wave, percent: x.waves[x.wave], reason: x.reason });
  await recordAudit(tx, actor, { bizId: r.bizId, action: opts.action ?? `rollout.${row.state}`, resourceType: "rollout", resourceId: r.id, before: pick(r), after: pick(row) });
  return { row, announce: opts.announce ?? false };
}

async function setShare(tx: Db, r: RolloutRow, percent: number) {
  if (r.publishId !== null) await tx.update(publishes).set({ rollout: { id: r.id, percent } }).where(eq(publishes.id, r.publishId));
}

/** Releases the next wave (the publish's share grows), or completes the rollout after the last. */
async function advanceWave(tx: Db, actor: Actor, r: RolloutRow, now: Date, reason: string): Promise<Transition> {
  if (r.wave + 1 >= r.waves.length) return transition(tx, actor, r, { state: "completed", reason, finishedAt: now }, now);
  const wave = r.wave + 1;
  await setShare(tx, r, r.waves[wave]);
  return transition(tx, actor, r, { state: "running", wave, reason, waveReleasedAt: [...r.waveReleasedAt, now.toISOString()] }, now, {
    action: "rollout.wave",
    announce: true,
    // Judged at once: a wave nobody online is in passes after its bake; the rest wait for reports.
    nextCheckAt: now,
  });
}

/**
 * Gives the released waves back what they had before: the rollout's publish is withdrawn (share 0),
 * so each client resolves again to the publish it had before, whatever that was. The history gets a
 * publish of each version the rollout's clients fall back to (reaching nobody itself: it records the
 * rollback; `rollback: true` in the history).
 */
async function rollBack(tx: Db, actor: Actor, r: RolloutRow, now: Date, reason: string, members?: Member[]): Promise<Transition> {
  await setShare(tx, r, 0);
  const all = await tx.select({ id: publishes.id, releaseId: publishes.releaseId, groups: publishes.groups, rollout: publishes.rollout }).from(publishes).where(eq(publishes.serviceId, r.serviceId)).orderBy(desc(publishes.id));
  const list = all.filter((p) => p.id !== r.publishId);
  const before = new Set<number>();
  for (const m of members ?? (await rolloutMembers(tx, r, await groupsOf(tx, r), now))) {
    if (m.wave > r.wave) continue;
    const prev = resolveTarget(list, m);
    if (prev && prev.releaseId !== r.releaseId) before.add(prev.releaseId);
  }
  for (const releaseId of before) {
    await tx.insert(publishes).values({ bizId: r.bizId, serviceId: r.serviceId, releaseId, groups: [], rollout: { id: r.id, percent: 0 }, memo: `rollback of rollout ${r.id}`, createdBy: actor.name, createdAt: now });
  }
  return transition(tx, actor, r, { state: "rolled_back", reason, finishedAt: now }, now, { announce: true });
}

/**
 * Judges a running rollout now (design.md "Rollouts"), under a row lock so two instances never act
 * twice: halts (and with autoRollback rolls back) when the newest wave's failures pass the
 * threshold; releases the next wave (or completes) when every online client of it reported and
 * bakeSeconds passed since the last report; else notes when to look again. Idempotent.
 */
export async function evaluateRollout(deps: AppDeps, rolloutId: number): Promise<RolloutState | null> {
  const now = deps.clock();
  await sightingsFor(deps).flush(deps.db);
  const out = await deps.db.transaction(async (tx) => {
    const [r] = await tx.select().from(rollouts).where(eq(rollouts.id, rolloutId)).for("update");
    if (!r || r.state !== "running") return null;
    const actor = rolloutSystemActor(r.bizId);
    const members = await rolloutMembers(tx, r, await groupsOf(tx, r), now);
    const gate = gateOf(r, members);
    if (gate.tooManyFailures) {
      const reason = `wave ${r.wave + 1} (${r.waves[r.wave]} %): ${gate.failed} of ${gate.counted} clients failed, more than ${r.maxFailurePercent} %`;
      const halted = await transition(tx, actor, r, { state: "halted", reason }, now);
      return r.autoRollback ? rollBack(tx, actor, halted.row, now, `${reason}; rolled back`, members) : halted;
    }
    if (gate.reported && now >= gate.bakedAt) return advanceWave(tx, actor, r, now, `wave ${r.wave + 1} passed: ${gate.counted - gate.failed} of ${gate.counted} succeeded`);
    const next = gate.reported ? gate.bakedAt : gate.nextDeadline;
    if ((next?.getTime() ?? null) !== (r.nextCheckAt?.getTime() ?? null)) await tx.update(rollouts).set({ nextCheckAt: next }).where(eq(rollouts.id, r.id));
    return { row: { ...r, nextCheckAt: next }, announce: false };
  });
  if (!out) return null;
  await afterChange(deps, out.row.serviceId, { announce: out.announce, nextCheckAt: out.row.nextCheckAt });
  return out.row.state;
}

/** Evaluates the service's running rollouts (a timer or alarm fired, or an agent reported). */
export async function evaluateServiceRollouts(deps: AppDeps, serviceId: number): Promise<void> {
  const running = await deps.db.select({ id: rollouts.id }).from(rollouts).where(and(eq(rollouts.serviceId, serviceId), eq(rollouts.state, "running")));
  for (const r of running) await evaluateRollout(deps, r.id);
}

/** After a restart: every running rollout is looked at once (which re-arms its timer). */
export async function resumeRunningRollouts(deps: AppDeps): Promise<number> {
  const running = await deps.db.selectDistinct({ serviceId: rollouts.serviceId }).from(rollouts).where(eq(rollouts.state, "running"));
  const now = deps.clock();
  for (const r of running) await deps.scheduler?.schedule(r.serviceId, now);
  return running.length;
}
