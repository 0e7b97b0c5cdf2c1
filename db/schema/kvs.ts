import { integer, pgEnum, pgTable, serial, text, uniqueIndex } from "drizzle-orm/pg-core";
import { bizs } from "./bizs";
import { createdAt, updatedAt } from "./common";
import { releases } from "./releases";
import { services } from "./services";

/** The types of a key-value item (design.md "Key-value services"). */
export const kvTypeEnum = pgEnum("kv_type", ["string", "number", "text", "json", "yaml", "xml", "secret"]);

/**
 * An item in a kv service's draft. `value` holds the text of every type but `secret`, whose value
 * is only in `sealed` (AES-256-GCM envelope, functions/core/secrets.ts; `value` is then "").
 */
export const kvItems = pgTable(
  "kv_items",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    type: kvTypeEnum("type").notNull(),
    value: text("value").notNull().default(""),
    sealed: text("sealed"),
    memo: text("memo").notNull().default(""),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("kv_items_service_key_uq").on(t.serviceId, t.key)],
);

/** The items of a version, copied from the draft (secrets stay sealed: the envelope is copied as is). */
export const releaseKvs = pgTable(
  "release_kvs",
  {
    id: serial("id").primaryKey(),
    releaseId: integer("release_id").notNull().references(() => releases.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    type: kvTypeEnum("type").notNull(),
    value: text("value").notNull().default(""),
    sealed: text("sealed"),
    memo: text("memo").notNull().default(""),
  },
  (t) => [uniqueIndex("release_kvs_release_key_uq").on(t.releaseId, t.key)],
);
