import { and, asc, count, eq } from "drizzle-orm";
import { services } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { alreadyExists, isUniqueViolation, notFound, precondition } from "./errors";
import type { Db } from "./ports";

export type ConfigType = "file" | "kv";
export type ServiceRow = typeof services.$inferSelect;

/** Service names are path segments on the agent (`{temp_dir}/{biz}/{app}`), hence this narrow set. */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function serviceView(s: ServiceRow) {
  return {
    id: s.id,
    bizId: s.bizId,
    name: s.name,
    configType: s.configType,
    memo: s.memo,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}

/** The service `app` (its name) in the biz, or not_found. `forUpdate` serialises writers of one service. */
export async function loadService(db: Db, bizId: number, app: string, forUpdate = false): Promise<ServiceRow> {
  const q = db.select().from(services).where(and(eq(services.bizId, bizId), eq(services.name, app))).limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  if (!row) throw notFound(`service '${app}' in biz ${bizId}`);
  return row;
}

export async function loadServiceById(db: Db, bizId: number, serviceId: number, forUpdate = false): Promise<ServiceRow> {
  const q = db.select().from(services).where(and(eq(services.bizId, bizId), eq(services.id, serviceId))).limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  if (!row) throw notFound(`service ${serviceId} in biz ${bizId}`);
  return row;
}

/** Config files and scripts belong to `file` services; a `kv` service refuses them with this message. */
export function requireFileService(s: ServiceRow, what: string) {
  if (s.configType !== "file") throw precondition(`service '${s.name}' is a kv service: ${what} apply to file services only`, "app");
}

export async function createService(db: Db, actor: Actor, bizId: number, input: { name: string; configType: ConfigType; memo?: string }, now: Date) {
  try {
    return await db.transaction(async (tx) => {
      const [row] = await tx
        .insert(services)
        .values({ bizId, name: input.name, configType: input.configType, memo: input.memo ?? "", createdAt: now, updatedAt: now })
        .returning();
      await recordAudit(tx, actor, { bizId, action: "service.create", resourceType: "service", resourceId: row.id, after: serviceView(row) });
      return serviceView(row);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw alreadyExists("name", `a service named '${input.name}' exists already in biz ${bizId}`);
    throw e;
  }
}

export async function listServices(db: Db, bizId: number, q: { configType?: ConfigType; limit: number; offset: number }) {
  const where = and(eq(services.bizId, bizId), q.configType ? eq(services.configType, q.configType) : undefined);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(services).where(where).orderBy(asc(services.name)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(services).where(where),
  ]);
  return { items: rows.map(serviceView), total, limit: q.limit, offset: q.offset };
}

export async function getService(db: Db, bizId: number, app: string) {
  return serviceView(await loadService(db, bizId, app));
}

/** Only the memo changes: the name is what agents subscribe to, the type decides what the draft holds. */
export async function updateService(db: Db, actor: Actor, bizId: number, app: string, input: { memo?: string }, now: Date) {
  return db.transaction(async (tx) => {
    const before = await loadService(tx, bizId, app, true);
    const [after] = await tx
      .update(services)
      .set({ ...(input.memo !== undefined ? { memo: input.memo } : {}), updatedAt: now })
      .where(eq(services.id, before.id))
      .returning();
    await recordAudit(tx, actor, { bizId, action: "service.update", resourceType: "service", resourceId: before.id, before: { memo: before.memo }, after: { memo: after.memo } });
    return serviceView(after);
  });
}

/** Deletes the service with its draft, versions, publishes and clients; blobs stay (they are shared by hash). */
export async function deleteService(db: Db, actor: Actor, bizId: number, app: string) {
  return db.transaction(async (tx) => {
    const s = await loadService(tx, bizId, app, true);
    await tx.delete(services).where(eq(services.id, s.id));
    await recordAudit(tx, actor, { bizId, action: "service.delete", resourceType: "service", resourceId: s.id, before: serviceView(s) });
    return { id: s.id, name: s.name };
  });
}
