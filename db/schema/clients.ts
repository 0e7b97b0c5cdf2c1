import { sql } from "drizzle-orm";
import { bigint, index, integer, jsonb, pgTable, serial, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { bizs } from "./bizs";
import { createdAt } from "./common";
import { services } from "./services";

export type HookRun = { exitCode: number | null; durationMs: number; outputTail: string };

/** An agent instance as last seen by the feed. */
export const clients = pgTable(
  "clients",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    uid: text("uid").notNull(),
    labels: jsonb("labels").$type<Record<string, string>>().notNull().default({}),
    agentVersion: text("agent_version").notNull().default(""),
    mode: text("mode").notNull().default("pull"),
    ip: text("ip").notNull().default(""),
    currentReleaseId: integer("current_release_id"),
    targetReleaseId: integer("target_release_id"),
    lastStatus: text("last_status"),
    lastEventId: integer("last_event_id"),
    lastHeartbeatAt: timestamp("last_heartbeat_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
  },
  // last_seen: retention finds clients not seen for N days without reading the whole table.
  (t) => [uniqueIndex("clients_service_uid_uq").on(t.serviceId, t.uid), index("clients_last_seen_idx").on(sql`coalesce(${t.lastHeartbeatAt}, ${t.createdAt})`)],
);

/** One apply attempt reported by an agent. */
export const clientEvents = pgTable(
  "client_events",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    clientUid: text("client_uid").notNull(),
    releaseId: integer("release_id"),
    status: text("status").notNull(),
    message: text("message").notNull().default(""),
    preHook: jsonb("pre_hook").$type<HookRun | null>(),
    postHook: jsonb("post_hook").$type<HookRun | null>(),
    filesCount: integer("files_count").notNull().default(0),
    bytesDownloaded: bigint("bytes_downloaded", { mode: "number" }).notNull().default(0),
    timings: jsonb("timings").$type<Record<string, number>>().notNull().default({}),
    createdAt: createdAt(),
  },
  (t) => [index("client_events_service_idx").on(t.serviceId, t.clientUid, t.id), index("client_events_created_idx").on(t.createdAt)],
);
