import { asc, eq } from "drizzle-orm";
import { bizs } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { alreadyExists, isUniqueViolation, notFound } from "./errors";
import type { Db } from "./ports";

const view = (b: typeof bizs.$inferSelect) => ({ id: b.id, name: b.name, createdAt: b.createdAt.toISOString() });

export async function createBiz(db: Db, actor: Actor, input: { id: number; name: string }) {
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx.insert(bizs).values(input).returning();
      await recordAudit(tx, actor, { bizId: row.id, action: "biz.create", resourceType: "biz", resourceId: row.id, after: view(row) });
      return view(row);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw alreadyExists("id", `biz ${input.id} or name '${input.name}' exists already`);
    throw e;
  }
}

export async function listBizs(db: Db) {
  return (await db.select().from(bizs).orderBy(asc(bizs.id))).map(view);
}

/** Throws not_found unless the biz exists. */
export async function requireBiz(db: Db, bizId: number) {
  const [row] = await db.select().from(bizs).where(eq(bizs.id, bizId)).limit(1);
  if (!row) throw notFound(`biz ${bizId}`);
  return view(row);
}
