import { index, integer, jsonb, pgEnum, pgTable, primaryKey, serial, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { sql } from "drizzle-orm";
import { bizs } from "./bizs";
import { createdAt } from "./common";
import { releases } from "./releases";
import { services } from "./services";

export const credentialKindEnum = pgEnum("credential_kind", ["admin", "agent"]);

/** Bearer tokens. Only the SHA-256 of a token is kept; the token is shown once. */
export const credentials = pgTable("credentials", {
  id: serial("id").primaryKey(),
  name: text("name").notNull(),
  kind: credentialKindEnum("kind").notNull(),
  bizId: integer("biz_id").references(() => bizs.id, { onDelete: "cascade" }),
  apps: text("apps").array().notNull().default(sql`'{}'::text[]`),
  tokenHash: text("token_hash").notNull().unique(),
  tokenPrefix: text("token_prefix").notNull(),
  createdBy: text("created_by").notNull().default(""),
  createdAt: createdAt(),
  lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }),
  revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
});

/** Console sessions: the cookie carries a random id; only its hash is stored. */
export const sessions = pgTable("sessions", {
  idHash: text("id_hash").primaryKey(),
  credentialId: integer("credential_id").notNull().references(() => credentials.id, { onDelete: "cascade" }),
  csrfToken: text("csrf_token").notNull(),
  createdAt: createdAt(),
  expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
});

export const webhookActionEnum = pgEnum("webhook_action", ["release", "publish", "rollout"]);
/** What a `rollout` webhook starts (core/rollouts.ts `RolloutSettings`). */
export type WebhookRolloutSettings = { waves: number[]; bakeSeconds: number; maxFailurePercent: number; reportTimeoutSeconds: number; autoRollback: boolean };
/** How deliveries are signed; fixed at creation (design.md "Webhook signing"). */
export const webhookFormatEnum = pgEnum("webhook_format", ["edgeconf", "github"]);

/**
 * A per-service webhook. The secret is derived from a server key and `secretSalt` (HMAC needs the
 * key itself, so it cannot be a one-way hash); the table keeps only the salt and the secret's hash.
 */
export const webhooks = pgTable("webhooks", {
  id: text("id").primaryKey(),
  bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
  serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
  name: text("name").notNull(),
  action: webhookActionEnum("action").notNull(),
  format: webhookFormatEnum("format").notNull().default("edgeconf"),
  releaseId: integer("release_id").references(() => releases.id, { onDelete: "set null" }),
  groupIds: integer("group_ids").array().notNull().default(sql`'{}'::integer[]`),
  /** Action `rollout` only: the waves and gates of the rollouts it starts. */
  rollout: jsonb("rollout").$type<WebhookRolloutSettings | null>(),
  secretSalt: text("secret_salt").notNull(),
  secretHash: text("secret_hash").notNull(),
  createdBy: text("created_by").notNull().default(""),
  createdAt: createdAt(),
});

export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: serial("id").primaryKey(),
    webhookId: text("webhook_id").notNull().references(() => webhooks.id, { onDelete: "cascade" }),
    deliveryId: text("delivery_id").notNull(),
    status: text("status").notNull(),
    message: text("message").notNull().default(""),
    releaseId: integer("release_id"),
    publishId: integer("publish_id"),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("webhook_deliveries_uq").on(t.webhookId, t.deliveryId)],
);

/**
 * Digests of the signatures already acted on, kept while the signature could still be valid
 * (edgeconf: until its timestamp leaves the 5-minute window; github: 30 days), so the same signed
 * bytes are never acted on twice whatever delivery id comes with them. Expired rows are pruned.
 */
export const webhookSignatures = pgTable(
  "webhook_signatures",
  {
    webhookId: text("webhook_id").notNull().references(() => webhooks.id, { onDelete: "cascade" }),
    digest: text("digest").notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.webhookId, t.digest] }), index("webhook_signatures_expiry_idx").on(t.webhookId, t.expiresAt)],
);

/** Every change: who (token name), what, when, before/after. */
export const auditLog = pgTable(
  "audit_log",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id"),
    actor: text("actor").notNull(),
    credentialId: integer("credential_id"),
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id").notNull().default(""),
    before: jsonb("before"),
    after: jsonb("after"),
    createdAt: createdAt(),
  },
  (t) => [index("audit_log_biz_idx").on(t.bizId, t.id)],
);
