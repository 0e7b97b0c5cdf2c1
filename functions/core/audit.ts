import { auditLog } from "../../db/schema/index";
import type { Db } from "./ports";

/** Who did something: a token, a webhook delivery, or the system at start-up. */
export type Actor = {
  credentialId: number | null;
  name: string;
  kind: "admin" | "agent" | "webhook" | "system";
  bizId: number | null;
  apps: string[];
};

export const systemActor: Actor = { credentialId: null, name: "system", kind: "system", bizId: null, apps: [] };

export type AuditEntry = {
  bizId?: number | null;
  action: string;
  resourceType: string;
  resourceId?: string | number;
  before?: unknown;
  after?: unknown;
};

/** Written inside the caller's transaction, so an audit row exists exactly when the change does. */
export async function recordAudit(tx: Db, actor: Actor, entry: AuditEntry): Promise<void> {
  await tx.insert(auditLog).values({
    bizId: entry.bizId ?? null,
    actor: actor.name,
    credentialId: actor.credentialId,
    action: entry.action,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId === undefined ? "" : String(entry.resourceId),
    before: entry.before ?? null,
    after: entry.after ?? null,
  });
}
