import { announcePublish, reachesEveryone } from "./feed-cache";
import { and, count, desc, eq, gte, sql } from "drizzle-orm";
import { publishes, releases, type PublishRollout } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { invalid } from "./errors";
import { loadGroups, snapshotOf } from "./groups";
import type { Db, ReleaseNotifier } from "./ports";
import { loadRelease } from "./releases";
import { loadService, loadServiceById } from "./services";

/** `rollout`: only for core/rollouts.ts, the publish that carries a rollout's released share. */
export type PublishInput = { versionId: number; groups?: number[]; memo?: string; rollout?: PublishRollout };

const p2 = sql.raw("p2");
/** A rollback: an earlier publish of this service shipped a newer version than this one. */
const isRollback = sql<boolean>`exists (select 1 from ${publishes} ${p2} where ${p2}.service_id = ${publishes.serviceId} and ${p2}.id < ${publishes.id} and ${p2}.release_id > ${publishes.releaseId})`;

const columns = {
  id: publishes.id,
  serviceId: publishes.serviceId,
  releaseId: publishes.releaseId,
  releaseName: releases.name,
  groups: publishes.groups,
  rollout: publishes.rollout,
  memo: publishes.memo,
  createdBy: publishes.createdBy,
  createdAt: publishes.createdAt,
  rollback: isRollback,
};
type PublishRow = { [K in keyof typeof columns]: K extends "rollback" ? boolean : K extends "releaseName" ? string : (typeof publishes.$inferSelect)[K extends keyof typeof publishes.$inferSelect ? K : never] };

export function publishView(p: PublishRow) {
  return {
    id: p.id,
    serviceId: p.serviceId,
    version: { id: p.releaseId, name: p.releaseName },
    toAll: p.groups.length === 0 && (p.rollout === null || p.rollout.percent >= 100),
    groups: p.groups,
    rollout: p.rollout,
    rollback: Boolean(p.rollback),
    memo: p.memo,
    createdBy: p.createdBy,
    createdAt: p.createdAt.toISOString(),
  };
}

export const selectPublishes = (db: Db) => db.select(columns).from(publishes).innerJoin(releases, eq(releases.id, publishes.releaseId));

/**
 * Publishes a version of the service to every client (no groups) or to the groups as they are now
 * (their snapshot is kept). A client gets the version of the most recent publish that matches it,
 * so publishing an older version is the rollback. Runs in the caller's transaction when given one
 * (webhooks claim the delivery in the same transaction); the caller wakes long-polls after commit.
 */
export async function publishRelease(db: Db, actor: Actor, bizId: number, serviceId: number, input: PublishInput, now: Date) {
  const ids = input.groups ?? [];
  if (new Set(ids).size !== ids.length) throw invalid("groups", "a group is listed twice");
  return db.transaction(async (tx) => {
    const s = await loadServiceById(tx, bizId, serviceId, true);
    const release = await loadRelease(tx, s, input.versionId);
    const groupRows = await loadGroups(tx, bizId, ids);
    const [row] = await tx
      .insert(publishes)
      .values({ bizId, serviceId: s.id, releaseId: release.id, groups: groupRows.map(snapshotOf), rollout: input.rollout ?? null, memo: input.memo ?? "", createdBy: actor.name, createdAt: now })
      .returning({ id: publishes.id });
    const [p] = await selectPublishes(tx).where(eq(publishes.id, row.id));
    const v = publishView(p);
    await recordAudit(tx, actor, { bizId, action: v.rollback ? "publish.rollback" : "publish.create", resourceType: "publish", resourceId: v.id, after: v });
    return v;
  });
}

/** Publishes, then wakes the service's waiting long-polls (after the commit, so they read the new target). */
export async function publishForService(db: Db, notifier: ReleaseNotifier, actor: Actor, bizId: number, serviceId: number, input: PublishInput, now: Date) {
  const view = await publishRelease(db, actor, bizId, serviceId, input, now);
  await announcePublish({ db, notifier }, serviceId);
  return view;
}

export async function publish(db: Db, notifier: ReleaseNotifier, actor: Actor, bizId: number, app: string, input: PublishInput, now: Date) {
  const s = await loadService(db, bizId, app);
  return publishForService(db, notifier, actor, bizId, s.id, input, now);
}

/** Publish history, newest first: who, when, which version, to whom. */
export async function listPublishes(db: Db, bizId: number, app: string, q: { limit: number; offset: number }) {
  const s = await loadService(db, bizId, app);
  const where = eq(publishes.serviceId, s.id);
  const [rows, [{ total }]] = await Promise.all([
    selectPublishes(db).where(where).orderBy(desc(publishes.id)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(publishes).where(where),
  ]);
  return { items: rows.map(publishView), total, limit: q.limit, offset: q.offset };
}

/**
 * The publishes still in effect: the latest one to every client (`base`), and the group publishes
 * made after it (`overrides`, newest first). Anything older can no longer be any client's target.
 */
export async function currentPublishes(db: Db, bizId: number, app: string) {
  const s = await loadService(db, bizId, app);
  const lastToAll = sql`coalesce((select max(${publishes.id}) from ${publishes} where ${publishes.serviceId} = ${s.id} and ${reachesEveryone()}), 0)`;
  const rows = (await selectPublishes(db).where(and(eq(publishes.serviceId, s.id), gte(publishes.id, lastToAll))).orderBy(desc(publishes.id))).map(publishView);
  const base = rows.find((p) => p.toAll) ?? null;
  return { base, overrides: rows.filter((p) => !p.toAll) };
}
