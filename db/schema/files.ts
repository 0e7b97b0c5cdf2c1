import { bigint, integer, pgEnum, pgTable, primaryKey, serial, text, uniqueIndex } from "drizzle-orm/pg-core";
import { bizs } from "./bizs";
import { createdAt, updatedAt } from "./common";
import { services } from "./services";

export const fileTypeEnum = pgEnum("file_type", ["text", "binary"]);

/** Content-addressed blobs; the bytes live in the blob store under `{biz}/{sha256}`. */
export const blobs = pgTable(
  "blobs",
  {
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    sha256: text("sha256").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.bizId, t.sha256] })],
);

/** A config file in a service's draft. */
export const configFiles = pgTable(
  "config_files",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    path: text("path").notNull(),
    name: text("name").notNull(),
    sha256: text("sha256").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    fileType: fileTypeEnum("file_type").notNull().default("text"),
    user: text("user").notNull().default("root"),
    group: text("group").notNull().default("root"),
    privilege: text("privilege").notNull().default("644"),
    memo: text("memo").notNull().default(""),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex("config_files_service_path_name_uq").on(t.serviceId, t.path, t.name)],
);
