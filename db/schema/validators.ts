import { index, integer, jsonb, pgEnum, pgTable, serial, text } from "drizzle-orm/pg-core";
import { bizs } from "./bizs";
import { createdAt, updatedAt } from "./common";
import { services } from "./services";

export const validatorKindEnum = pgEnum("validator_kind", ["json", "yaml", "toml", "xml", "jsonschema"]);

/**
 * A check that every version of the service must pass before it is created: the draft files whose
 * full path matches `pathGlob` must parse as `kind` (and, for `jsonschema`, match `schema`).
 */
export const validators = pgTable(
  "validators",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    pathGlob: text("path_glob").notNull(),
    kind: validatorKindEnum("kind").notNull(),
    schema: jsonb("schema"),
    memo: text("memo").notNull().default(""),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index("validators_service_idx").on(t.serviceId)],
);

/** What a version passed when it was created: each validator that ran and how many files it checked. */
export type ReleaseValidation = { validators: { id: number; pathGlob: string; kind: string; files: number }[] };
