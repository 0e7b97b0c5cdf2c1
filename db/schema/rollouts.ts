import { boolean, index, integer, jsonb, pgEnum, pgTable, serial, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { sql } from "drizzle-orm";
import { bizs } from "./bizs";
import { createdAt, updatedAt } from "./common";
import { publishes, releases } from "./releases";
import { services } from "./services";

/**
 * design.md "Rollouts". Final: completed, rolled_back, aborted. Open: running, paused, halted (a halt
 * without autoRollback waits for an operator to resume, advance or abort).
 */
export const rolloutStateEnum = pgEnum("rollout_state", ["running", "paused", "halted", "rolled_back", "aborted", "completed"]);

/**
 * A progressive publish: `publishId` is the publish row that carries the rollout (its `rollout`
 * column holds the released share, so the feed's cached publish list decides membership with no
 * extra read). `wave` is the index of the newest released wave; `waveReleasedAt[k]` when wave k went out.
 */
export const rollouts = pgTable(
  "rollouts",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    releaseId: integer("release_id").notNull().references(() => releases.id, { onDelete: "cascade" }),
    publishId: integer("publish_id").references(() => publishes.id, { onDelete: "set null" }),
    state: rolloutStateEnum("state").notNull().default("running"),
    /** Why the state is what it is (the halt's failures, who aborted), for people. */
    reason: text("reason").notNull().default(""),
    waves: jsonb("waves").$type<number[]>().notNull(),
    wave: integer("wave").notNull().default(0),
    waveReleasedAt: jsonb("wave_released_at").$type<string[]>().notNull().default([]),
    bakeSeconds: integer("bake_seconds").notNull(),
    maxFailurePercent: integer("max_failure_percent").notNull(),
    reportTimeoutSeconds: integer("report_timeout_seconds").notNull(),
    autoRollback: boolean("auto_rollback").notNull(),
    memo: text("memo").notNull().default(""),
    createdBy: text("created_by").notNull().default(""),
    /** When the evaluator should look again (bake or report deadline); null when nothing is due. */
    nextCheckAt: timestamp("next_check_at", { withTimezone: true, mode: "date" }),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index("rollouts_service_idx").on(t.serviceId, t.id),
    // One rollout in progress per service (design.md): the database refuses a second, whatever races.
    uniqueIndex("rollouts_one_active_uq").on(t.serviceId).where(sql`${t.state} in ('running', 'paused', 'halted')`),
  ],
);
