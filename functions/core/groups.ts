import { and, asc, count, eq, inArray } from "drizzle-orm";
import { groups, type GroupSnapshot } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { alreadyExists, invalid, isUniqueViolation, notFound } from "./errors";
import type { Db } from "./ports";
import { formatSelector, parseSelector } from "./selector";

type GroupRow = typeof groups.$inferSelect;
export type GroupInput = { name: string; selector: string; percent?: number | null; memo?: string };

export function groupView(g: GroupRow) {
  return { id: g.id, bizId: g.bizId, name: g.name, selector: g.selector, percent: g.percent, memo: g.memo, createdAt: g.createdAt.toISOString() };
}

export const snapshotOf = (g: GroupRow): GroupSnapshot => ({ id: g.id, name: g.name, selector: g.selector, percent: g.percent });

/** Stores the selector in canonical form (`env=prod,zone in (a,b)`), so equal selectors read the same. */
function canonicalSelector(text: string) {
  return formatSelector(parseSelector(text));
}

function checkPercent(p: number | null | undefined) {
  if (p === null || p === undefined) return;
  if (!Number.isInteger(p) || p < 0 || p > 100) throw invalid("percent", "must be an integer from 0 to 100");
}

async function loadGroup(db: Db, bizId: number, groupId: number, forUpdate = false) {
  const q = db.select().from(groups).where(and(eq(groups.id, groupId), eq(groups.bizId, bizId))).limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  if (!row) throw notFound(`group ${groupId} in biz ${bizId}`);
  return row;
}

/** The groups of a publish, in the order given, or not_found naming the first missing id. */
export async function loadGroups(db: Db, bizId: number, ids: number[]): Promise<GroupRow[]> {
  if (!ids.length) return [];
  const rows = await db.select().from(groups).where(and(eq(groups.bizId, bizId), inArray(groups.id, ids)));
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => {
    const g = byId.get(id);
    if (!g) throw notFound(`group ${id} in biz ${bizId}`);
    return g;
  });
}

const dupName = (name: string, bizId: number) => alreadyExists("name", `a group named '${name}' exists already in biz ${bizId}`);

export async function createGroup(db: Db, actor: Actor, bizId: number, input: GroupInput, now: Date) {
  const selector = canonicalSelector(input.selector);
  checkPercent(input.percent);
  try {
    return await db.transaction(async (tx) => {
      const [g] = await tx.insert(groups).values({ bizId, name: input.name, selector, percent: input.percent ?? null, memo: input.memo ?? "", createdAt: now }).returning();
      await recordAudit(tx, actor, { bizId, action: "group.create", resourceType: "group", resourceId: g.id, after: groupView(g) });
      return groupView(g);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw dupName(input.name, bizId);
    throw e;
  }
}

export async function listGroups(db: Db, bizId: number, q: { limit: number; offset: number }) {
  const where = eq(groups.bizId, bizId);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(groups).where(where).orderBy(asc(groups.name)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(groups).where(where),
  ]);
  return { items: rows.map(groupView), total, limit: q.limit, offset: q.offset };
}

export async function getGroup(db: Db, bizId: number, groupId: number) {
  return groupView(await loadGroup(db, bizId, groupId));
}

/** Changes apply to later publishes only: each publish keeps the groups as they were when it was made. */
export async function updateGroup(db: Db, actor: Actor, bizId: number, groupId: number, input: Partial<GroupInput>) {
  const set = {
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.selector !== undefined ? { selector: canonicalSelector(input.selector) } : {}),
    ...(input.percent !== undefined ? { percent: input.percent } : {}),
    ...(input.memo !== undefined ? { memo: input.memo } : {}),
  };
  checkPercent(input.percent);
  try {
    return await db.transaction(async (tx) => {
      const before = await loadGroup(tx, bizId, groupId, true);
      const [after] = Object.keys(set).length ? await tx.update(groups).set(set).where(eq(groups.id, groupId)).returning() : [before];
      await recordAudit(tx, actor, { bizId, action: "group.update", resourceType: "group", resourceId: groupId, before: groupView(before), after: groupView(after) });
      return groupView(after);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw dupName(input.name ?? "", bizId);
    throw e;
  }
}

export async function deleteGroup(db: Db, actor: Actor, bizId: number, groupId: number) {
  return db.transaction(async (tx) => {
    const g = await loadGroup(tx, bizId, groupId, true);
    await tx.delete(groups).where(eq(groups.id, groupId));
    await recordAudit(tx, actor, { bizId, action: "group.delete", resourceType: "group", resourceId: groupId, before: groupView(g) });
    return { id: groupId };
  });
}
