import { sql } from "drizzle-orm";
import { index, integer, pgEnum, pgTable, serial, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { bizs } from "./bizs";
import { createdAt, updatedAt } from "./common";

export const scriptTypeEnum = pgEnum("script_type", ["shell", "python"]);
export const scriptVersionStateEnum = pgEnum("script_version_state", ["not_deployed", "deployed", "shutdown"]);

/** A pre/post script. Name and type are fixed once created. */
export const scripts = pgTable(
  "scripts",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    type: scriptTypeEnum("type").notNull(),
    tags: text("tags").array().notNull().default(sql`'{}'::text[]`),
    memo: text("memo").notNull().default(""),
    createdBy: text("created_by").notNull().default(""),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("scripts_biz_name_uq").on(t.bizId, t.name)],
);

/**
 * A version of a script. The partial unique indexes are the rule "at most one online and at most one
 * not_deployed version per script", held by the database so concurrent publishes cannot break it.
 */
export const scriptVersions = pgTable(
  "script_versions",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    scriptId: integer("script_id").notNull().references(() => scripts.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    content: text("content").notNull(),
    memo: text("memo").notNull().default(""),
    state: scriptVersionStateEnum("state").notNull().default("not_deployed"),
    createdBy: text("created_by").notNull().default(""),
    publishedAt: timestamp("published_at", { withTimezone: true, mode: "date" }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex("script_versions_script_name_uq").on(t.scriptId, t.name),
    uniqueIndex("script_versions_one_online_uq").on(t.scriptId).where(sql`${t.state} = 'deployed'`),
    uniqueIndex("script_versions_one_draft_uq").on(t.scriptId).where(sql`${t.state} = 'not_deployed'`),
    index("script_versions_script_idx").on(t.scriptId),
  ],
);
