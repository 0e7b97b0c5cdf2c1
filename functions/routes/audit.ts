import { createRoute, z } from "@hono/zod-openapi";
import { IdParam } from "../http/input";
import { and, desc, eq, gte, lt, type SQL } from "drizzle-orm";
import { auditLog } from "../../db/schema/index";
import { errorResponses, json, Paging, router } from "../http/openapi";

const AuditEntry = z
  .object({
    id: z.number().int(),
    bizId: z.number().int().nullable(),
    actor: z.string(),
    action: z.string(),
    resourceType: z.string(),
    resourceId: z.string(),
    before: z.unknown(),
    after: z.unknown(),
    createdAt: z.string(),
  })
  .openapi("AuditEntry");

const Query = z.object({
  biz: IdParam.optional(),
  actor: z.string().max(128).optional(),
  action: z.string().max(128).optional(),
  resourceType: z.string().max(64).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  before: IdParam.optional().openapi({ description: "entries with id below this (paging)" }),
  limit: Paging.limit,
});

export const auditRoutes = router().openapi(
  createRoute({ method: "get", path: "/audit", tags: ["audit"], request: { query: Query }, responses: { 200: json(z.object({ items: z.array(AuditEntry) })), ...errorResponses } }),
  async (c) => {
    const q = c.req.valid("query");
    const where: SQL[] = [];
    if (q.biz !== undefined) where.push(eq(auditLog.bizId, q.biz));
    if (q.actor) where.push(eq(auditLog.actor, q.actor));
    if (q.action) where.push(eq(auditLog.action, q.action));
    if (q.resourceType) where.push(eq(auditLog.resourceType, q.resourceType));
    if (q.since) where.push(gte(auditLog.createdAt, new Date(q.since)));
    if (q.before !== undefined) where.push(lt(auditLog.id, q.before));
    const rows = await c.var.deps.db
      .select()
      .from(auditLog)
      .where(where.length ? and(...where) : undefined)
      .orderBy(desc(auditLog.id))
      .limit(q.limit);
    return c.json({ items: rows.map((r) => ({ ...r, createdAt: r.createdAt.toISOString() })) }, 200);
  },
);
