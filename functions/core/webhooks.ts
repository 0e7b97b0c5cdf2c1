import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { groups, releases, webhookDeliveries, webhookSignatures, webhooks } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { randomToken, sha256Hex } from "./crypto";
import { invalid, notFound } from "./errors";
import type { BlobStore, Db } from "./ports";
import { publishRelease } from "./publishes";
import { checkSettings, startRollout, type RolloutSettings } from "./rollouts";
import { createReleaseForService } from "./releases";
import { loadService } from "./services";
import { deriveSecret, type VerifiedDelivery, type WebhookFormat } from "./webhook-signing";

/** release: a version from the draft, published; publish: a named version published; rollout: a rollout of a named version, else of a new one from the draft. */
export type WebhookAction = "release" | "publish" | "rollout";
type WebhookRow = typeof webhooks.$inferSelect;

export function webhookView(w: WebhookRow) {
  return { id: w.id, serviceId: w.serviceId, name: w.name, action: w.action, format: w.format, versionId: w.releaseId, groups: w.groupIds, rollout: w.rollout ?? null, createdBy: w.createdBy, createdAt: w.createdAt.toISOString() };
}

/** `format` (default `edgeconf`) is fixed for the webhook's life: its secret is derived for that format only. */
export type CreateWebhookInput = { name: string; action: WebhookAction; format?: WebhookFormat; versionId?: number; groups?: number[]; rollout?: RolloutSettings };

export async function createWebhook(db: Db, actor: Actor, secretKey: string, bizId: number, app: string, input: CreateWebhookInput, now: Date) {
  const id = `wh_${randomToken(12)}`;
  const salt = randomToken(16);
  const format = input.format ?? "edgeconf";
  const secret = await deriveSecret(secretKey, format, id, salt);
  const secretHash = await sha256Hex(secret);
  if (input.action === "rollout" && !input.rollout) throw invalid("rollout", "a 'rollout' webhook needs its waves and gates ({waves, bakeSeconds, maxFailurePercent, reportTimeoutSeconds, autoRollback})");
  if (input.action !== "rollout" && input.rollout) throw invalid("rollout", "only a 'rollout' webhook has rollout settings");
  if (input.rollout) checkSettings(input.rollout);
  return db.transaction(async (tx) => {
    const s = await loadService(tx, bizId, app);
    if (input.versionId !== undefined) {
      if (input.action === "release") throw invalid("versionId", "a 'release' webhook makes its version from the draft; name one only for 'publish' or 'rollout'");
      const [r] = await tx.select({ id: releases.id }).from(releases).where(and(eq(releases.id, input.versionId), eq(releases.serviceId, s.id)));
      if (!r) throw invalid("versionId", `version ${input.versionId} is not a version of service '${app}'`);
    }
    const groupIds = [...new Set(input.groups ?? [])];
    if (groupIds.length) {
      const found = await tx.select({ id: groups.id }).from(groups).where(and(eq(groups.bizId, bizId), inArray(groups.id, groupIds)));
      const missing = groupIds.filter((g) => !found.some((f) => f.id === g));
      if (missing.length) throw invalid("groups", `unknown group ${missing.join(", ")} in biz ${bizId}`);
    }
    const [w] = await tx
      .insert(webhooks)
      .values({ id, bizId, serviceId: s.id, name: input.name, action: input.action, format, releaseId: input.versionId ?? null, groupIds, rollout: input.rollout ?? null, secretSalt: salt, secretHash, createdBy: actor.name, createdAt: now })
      .returning();
    await recordAudit(tx, actor, { bizId, action: "webhook.create", resourceType: "webhook", resourceId: id, after: webhookView(w) });
    return { ...webhookView(w), secret };
  });
}

export async function listWebhooks(db: Db, bizId: number, app: string) {
  const s = await loadService(db, bizId, app);
  const rows = await db.select().from(webhooks).where(eq(webhooks.serviceId, s.id)).orderBy(webhooks.createdAt);
  return { items: rows.map(webhookView) };
}

async function loadWebhook(db: Db, bizId: number, app: string, id: string) {
  const s = await loadService(db, bizId, app);
  const [w] = await db.select().from(webhooks).where(and(eq(webhooks.id, id), eq(webhooks.serviceId, s.id)));
  if (!w) throw notFound(`webhook ${id} of service '${app}'`);
  return w;
}

export async function deleteWebhook(db: Db, actor: Actor, bizId: number, app: string, id: string) {
  return db.transaction(async (tx) => {
    const w = await loadWebhook(tx, bizId, app, id);
    await tx.delete(webhooks).where(eq(webhooks.id, id));
    await recordAudit(tx, actor, { bizId, action: "webhook.delete", resourceType: "webhook", resourceId: id, before: webhookView(w) });
    return { id };
  });
}

export async function listDeliveries(db: Db, bizId: number, app: string, id: string, page: { limit: number; before?: number }) {
  await loadWebhook(db, bizId, app, id);
  const conds = [eq(webhookDeliveries.webhookId, id)];
  if (page.before) conds.push(lt(webhookDeliveries.id, page.before));
  const rows = await db.select().from(webhookDeliveries).where(and(...conds)).orderBy(desc(webhookDeliveries.id)).limit(page.limit);
  return {
    items: rows.map((d) => ({ id: d.id, deliveryId: d.deliveryId, status: d.status, message: d.message, versionId: d.releaseId, publishId: d.publishId, createdAt: d.createdAt.toISOString() })),
    nextBefore: rows.length === page.limit ? rows[rows.length - 1].id : null,
  };
}

/** The version name a `release` delivery asks for: body `version` or `name`, else `webhook-<unix ms>`. */
function versionNameOf(rawBody: Uint8Array, now: Date): string {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(rawBody));
  } catch {
    body = null;
  }
  const b = body && typeof body === "object" ? (body as Record<string, unknown>) : {};
  const name = typeof b.version === "string" ? b.version : typeof b.name === "string" ? b.name : undefined;
  if (name === undefined) return `webhook-${now.getTime()}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$/.test(name) || name.includes("..")) throw invalid("version", "letters, digits, '_', '-', '.'; at most 128");
  return name;
}

function versionIdOf(rawBody: Uint8Array): number | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(rawBody))?.versionId;
    return Number.isInteger(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

export async function findWebhook(db: Db, id: string): Promise<WebhookRow | null> {
  if (!/^wh_[A-Za-z0-9_-]{1,64}$/.test(id)) return null;
  const [w] = await db.select().from(webhooks).where(eq(webhooks.id, id));
  return w ?? null;
}

export type DeliveryOutcome =
  | { duplicate: true; deliveryId: string }
  | { duplicate: false; deliveryId: string; action: WebhookAction; version: { id: number; name: string }; publishId: number; rolloutId?: number; serviceId: number };

/**
 * Acts on a verified delivery at most once. In the transaction that creates the version and the
 * publish, two claims are made: the signature's digest (kept until `validUntil`, so the same signed
 * bytes are refused whatever delivery id comes with them) and the delivery id. Either one taken
 * already answers `duplicate` and acts on nothing. A failed delivery rolls both back: it is logged
 * as failed and may be retried.
 */
export async function actOnDelivery(db: Db, store: BlobStore, w: WebhookRow, delivery: VerifiedDelivery, rawBody: Uint8Array, now: Date): Promise<DeliveryOutcome> {
  const { deliveryId } = delivery;
  const actor: Actor = { credentialId: null, name: `webhook:${w.name}`, kind: "webhook", bizId: w.bizId, apps: [] };
  let replayedBytes = false;
  try {
    const outcome = await db.transaction(async (tx) => {
      await tx.delete(webhookSignatures).where(and(eq(webhookSignatures.webhookId, w.id), lt(webhookSignatures.expiresAt, now)));
      const fresh = await tx
        .insert(webhookSignatures)
        .values({ webhookId: w.id, digest: delivery.digest, expiresAt: delivery.validUntil })
        .onConflictDoNothing()
        .returning({ digest: webhookSignatures.digest });
      if (!fresh.length) {
        replayedBytes = true;
        return { duplicate: true as const, deliveryId };
      }
      const claimed = await tx
        .insert(webhookDeliveries)
        .values({ webhookId: w.id, deliveryId, status: "processing", createdAt: now })
        .onConflictDoUpdate({ target: [webhookDeliveries.webhookId, webhookDeliveries.deliveryId], set: { status: "processing", createdAt: now }, setWhere: sql`${webhookDeliveries.status} = 'failed'` })
        .returning({ id: webhookDeliveries.id });
      if (!claimed.length) return { duplicate: true as const, deliveryId };
      let version: { id: number; name: string };
      const named = w.releaseId ?? versionIdOf(rawBody);
      if (w.action === "release" || (w.action === "rollout" && !named)) {
        const r = await createReleaseForService(tx, store, actor, w.bizId, w.serviceId, { name: versionNameOf(rawBody, now), memo: `webhook ${w.name}, delivery ${deliveryId}` }, now);
        version = { id: r.id, name: r.name };
      } else {
        const versionId = named;
        if (!versionId) throw invalid("versionId", "this publish webhook names no version: give versionId in the body");
        const [r] = await tx.select({ id: releases.id, name: releases.name }).from(releases).where(and(eq(releases.id, versionId), eq(releases.serviceId, w.serviceId)));
        if (!r) throw invalid("versionId", `version ${versionId} is not a version of this service`);
        version = r;
      }
      let publishId: number;
      let rolloutId: number | undefined;
      if (w.action === "rollout") {
        if (!w.rollout) throw invalid("rollout", "this webhook has no rollout settings");
        const r = await startRollout(tx, actor, w.bizId, w.serviceId, { ...w.rollout, versionId: version.id, groups: w.groupIds, memo: `webhook ${w.name}, delivery ${deliveryId}` }, now);
        [publishId, rolloutId] = [r.publishId!, r.id];
      } else publishId = (await publishRelease(tx, actor, w.bizId, w.serviceId, { versionId: version.id, groups: w.groupIds }, now)).id;
      await tx
        .update(webhookDeliveries)
        .set({ status: "succeeded", message: `${w.action}: version ${version.name} ${rolloutId ? `rolling out (rollout ${rolloutId})` : "published"}`, releaseId: version.id, publishId })
        .where(eq(webhookDeliveries.id, claimed[0].id));
      return { duplicate: false as const, deliveryId, action: w.action, version, publishId, rolloutId, serviceId: w.serviceId };
    });
    // Bytes seen before under another id: logged under a fresh id (as a rejected one), so a replay cannot take a genuine id.
    if (replayedBytes) await logUnder(db, w, "duplicate", `same signed bytes as an earlier delivery; not acted on (claimed delivery ${deliveryId})`, now);
    return outcome;
  } catch (err) {
    const message = err instanceof Error ? err.message.slice(0, 1000) : "failed";
    await db
      .insert(webhookDeliveries)
      .values({ webhookId: w.id, deliveryId, status: "failed", message, createdAt: now })
      .onConflictDoUpdate({ target: [webhookDeliveries.webhookId, webhookDeliveries.deliveryId], set: { message, createdAt: now }, setWhere: sql`${webhookDeliveries.status} = 'failed'` });
    throw err;
  }
}

const logUnder = (db: Db, w: WebhookRow, status: "rejected" | "duplicate", message: string, now: Date) =>
  db.insert(webhookDeliveries).values({ webhookId: w.id, deliveryId: `${status}:${crypto.randomUUID()}`, status, message, createdAt: now });

/** A delivery that failed verification is logged under a fresh id, so it can never block the real one. */
export async function logRejected(db: Db, w: WebhookRow, claimedId: string | undefined, reason: string, now: Date) {
  await logUnder(db, w, "rejected", `${reason}${claimedId ? ` (claimed delivery ${claimedId.slice(0, 128)})` : ""}`, now);
}
