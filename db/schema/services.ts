import { integer, pgEnum, pgTable, serial, text, uniqueIndex } from "drizzle-orm/pg-core";
import { bizs } from "./bizs";
import { createdAt, updatedAt } from "./common";

export const configTypeEnum = pgEnum("config_type", ["file", "kv"]);

/** A service ("app" in the seed's words): what an agent subscribes to. */
export const services = pgTable(
  "services",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    configType: configTypeEnum("config_type").notNull(),
    memo: text("memo").notNull().default(""),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("services_biz_name_uq").on(t.bizId, t.name)],
);
