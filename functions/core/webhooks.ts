import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import { groups, releases, webhookDeliveries, webhooks } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { constantTimeEqual, hmacSha256Hex, randomToken, sha256Hex } from "./crypto";
import { DomainError, invalid, notFound } from "./errors";
import type { Db } from "./ports";
import { publishRelease } from "./publishes";
import { createReleaseForService } from "./releases";
import { loadService } from "./services";

export type WebhookAction = "release" | "publish";
type WebhookRow = typeof webhooks.$inferSelect;

/** Signed deliveries older or newer than this are refused. */
export const MAX_SKEW_SECONDS = 300;

/**
 * The secret is HMAC-SHA256(server key, "<id>:<salt>"): derived again to verify a delivery, so the
 * database holds only the salt and the secret's SHA-256 (which tells a changed server key apart).
 */
export const deriveSecret = (secretKey: string, id: string, salt: string) => hmacSha256Hex(secretKey, `${id}:${salt}`);

export function webhookView(w: WebhookRow) {
  return { id: w.id, serviceId: w.serviceId, name: w.name, action: w.action, versionId: w.releaseId, groups: w.groupIds, createdBy: w.createdBy, createdAt: w.createdAt.toISOString() };
}

export type CreateWebhookInput = { name: string; action: WebhookAction; versionId?: number; groups?: number[] };

export async function createWebhook(db: Db, actor: Actor, secretKey: string, bizId: number, app: string, input: CreateWebhookInput, now: Date) {
  const id = `wh_${randomToken(12)}`;
  const salt = randomToken(16);
  const secret = await deriveSecret(secretKey, id, salt);
  const secretHash = await sha256Hex(secret);
  return db.transaction(async (tx) => {
    const s = await loadService(tx, bizId, app);
    if (input.versionId !== undefined) {
      if (input.action !== "publish") throw invalid("versionId", "only a 'publish' webhook names a version");
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
      .values({ id, bizId, serviceId: s.id, name: input.name, action: input.action, releaseId: input.versionId ?? null, groupIds, secretSalt: salt, secretHash, createdBy: actor.name, createdAt: now })
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

export type SignedDelivery = {
  rawBody: Uint8Array;
  headers: (name: string) => string | undefined;
};

/** Thrown for deliveries that fail verification; the route answers 401 and logs them as rejected. */
export class RejectedDelivery extends DomainError {
  constructor(message: string) {
    super("unauthenticated", message);
  }
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

/**
 * Checks a delivery's signature: ours (`X-Edgeconf-Signature: sha256=hex(HMAC("<ts>.<body>"))` with
 * `X-Edgeconf-Timestamp` within 5 minutes and `X-Edgeconf-Delivery`) or GitHub's
 * (`X-Hub-Signature-256: sha256=hex(HMAC(body))` with `X-GitHub-Delivery`). Returns the delivery id.
 */
export async function verifyDelivery(w: WebhookRow, secretKey: string, d: SignedDelivery, now: Date): Promise<string> {
  const secret = await deriveSecret(secretKey, w.id, w.secretSalt);
  if (!constantTimeEqual(await sha256Hex(secret), w.secretHash)) throw new DomainError("internal", "webhook secret cannot be derived: the server key changed since it was created");
  const ours = d.headers("x-edgeconf-signature");
  const github = d.headers("x-hub-signature-256");
  let expected: string;
  let given: string;
  let deliveryId: string | undefined;
  if (ours) {
    const ts = d.headers("x-edgeconf-timestamp") ?? "";
    if (!/^\d{1,12}$/.test(ts)) throw new RejectedDelivery("X-Edgeconf-Timestamp: must be unix seconds");
    if (Math.abs(now.getTime() / 1000 - Number(ts)) > MAX_SKEW_SECONDS) throw new RejectedDelivery(`X-Edgeconf-Timestamp: more than ${MAX_SKEW_SECONDS} s from the server's clock`);
    expected = await hmacSha256Hex(secret, concat(new TextEncoder().encode(`${ts}.`), d.rawBody));
    given = ours;
    deliveryId = d.headers("x-edgeconf-delivery");
  } else if (github) {
    expected = await hmacSha256Hex(secret, d.rawBody);
    given = github;
    deliveryId = d.headers("x-github-delivery");
  } else {
    throw new RejectedDelivery("X-Edgeconf-Signature: missing signature (or X-Hub-Signature-256)");
  }
  if (!constantTimeEqual(given.trim().toLowerCase(), `sha256=${expected}`)) throw new RejectedDelivery("signature does not match the body");
  if (!deliveryId || deliveryId.length > 128 || /[\u0000-\u001f]/.test(deliveryId)) throw new RejectedDelivery("X-Edgeconf-Delivery: missing or longer than 128 characters");
  return deliveryId;
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
  | { duplicate: false; deliveryId: string; action: WebhookAction; version: { id: number; name: string }; publishId: number; serviceId: number };

/**
 * Acts on a verified delivery exactly once: the delivery row is claimed in the same transaction as
 * the version and the publish, so a replay (or a concurrent twin) finds it and does nothing. A failed
 * delivery is logged as failed and may be retried with the same id.
 */
export async function actOnDelivery(db: Db, w: WebhookRow, deliveryId: string, rawBody: Uint8Array, now: Date): Promise<DeliveryOutcome> {
  const actor: Actor = { credentialId: null, name: `webhook:${w.name}`, kind: "webhook", bizId: w.bizId, apps: [] };
  try {
    return await db.transaction(async (tx) => {
      const claimed = await tx
        .insert(webhookDeliveries)
        .values({ webhookId: w.id, deliveryId, status: "processing", createdAt: now })
        .onConflictDoUpdate({ target: [webhookDeliveries.webhookId, webhookDeliveries.deliveryId], set: { status: "processing", createdAt: now }, setWhere: sql`${webhookDeliveries.status} = 'failed'` })
        .returning({ id: webhookDeliveries.id });
      if (!claimed.length) return { duplicate: true as const, deliveryId };
      let version: { id: number; name: string };
      if (w.action === "release") {
        const r = await createReleaseForService(tx, actor, w.bizId, w.serviceId, { name: versionNameOf(rawBody, now), memo: `webhook ${w.name}, delivery ${deliveryId}` }, now);
        version = { id: r.id, name: r.name };
      } else {
        const versionId = w.releaseId ?? versionIdOf(rawBody);
        if (!versionId) throw invalid("versionId", "this publish webhook names no version: give versionId in the body");
        const [r] = await tx.select({ id: releases.id, name: releases.name }).from(releases).where(and(eq(releases.id, versionId), eq(releases.serviceId, w.serviceId)));
        if (!r) throw invalid("versionId", `version ${versionId} is not a version of this service`);
        version = r;
      }
      const p = await publishRelease(tx, actor, w.bizId, w.serviceId, { versionId: version.id, groups: w.groupIds }, now);
      await tx
        .update(webhookDeliveries)
        .set({ status: "succeeded", message: `${w.action}: version ${version.name} published`, releaseId: version.id, publishId: p.id })
        .where(eq(webhookDeliveries.id, claimed[0].id));
      return { duplicate: false as const, deliveryId, action: w.action, version, publishId: p.id, serviceId: w.serviceId };
    });
  } catch (err) {
    const message = err instanceof Error ? err.message.slice(0, 1000) : "failed";
    await db
      .insert(webhookDeliveries)
      .values({ webhookId: w.id, deliveryId, status: "failed", message, createdAt: now })
      .onConflictDoUpdate({ target: [webhookDeliveries.webhookId, webhookDeliveries.deliveryId], set: { message, createdAt: now }, setWhere: sql`${webhookDeliveries.status} = 'failed'` });
    throw err;
  }
}

/** A delivery that failed verification is logged under a fresh id, so it can never block the real one. */
export async function logRejected(db: Db, w: WebhookRow, claimedId: string | undefined, reason: string, now: Date) {
  const message = `${reason}${claimedId ? ` (claimed delivery ${claimedId.slice(0, 128)})` : ""}`;
  await db.insert(webhookDeliveries).values({ webhookId: w.id, deliveryId: `rejected:${crypto.randomUUID()}`, status: "rejected", message, createdAt: now });
}
