import { bigint, integer, jsonb, pgEnum, pgTable, primaryKey, serial, text, uniqueIndex, index } from "drizzle-orm/pg-core";
import { bizs } from "./bizs";
import { createdAt } from "./common";
import { fileTypeEnum } from "./files";
import { scriptTypeEnum, scripts, scriptVersions } from "./scripts";
import { services } from "./services";
import type { ReleaseValidation } from "./validators";

export const hookKindEnum = pgEnum("hook_kind", ["pre", "post", "validate"]);

/**
 * Draft binding of a pre/post script to a service. `scriptVersionId` null means "follow the script's
 * online version"; set, it pins that version in the draft.
 */
export const serviceHooks = pgTable(
  "service_hooks",
  {
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    kind: hookKindEnum("kind").notNull(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    scriptId: integer("script_id").notNull().references(() => scripts.id, { onDelete: "cascade" }),
    scriptVersionId: integer("script_version_id").references(() => scriptVersions.id, { onDelete: "set null" }),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.serviceId, t.kind] }), index("service_hooks_script_idx").on(t.scriptId)],
);

/** A version ("release" on the wire, as `releaseID` in metadata.json): an immutable snapshot of the draft. */
export const releases = pgTable(
  "releases",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    memo: text("memo").notNull().default(""),
    createdBy: text("created_by").notNull().default(""),
    /** The server validators the version passed at creation (null: none applied to the service then). */
    validation: jsonb("validation").$type<ReleaseValidation>(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("releases_service_name_uq").on(t.serviceId, t.name)],
);

export const releaseFiles = pgTable(
  "release_files",
  {
    id: serial("id").primaryKey(),
    releaseId: integer("release_id").notNull().references(() => releases.id, { onDelete: "cascade" }),
    path: text("path").notNull(),
    name: text("name").notNull(),
    sha256: text("sha256").notNull(),
    size: bigint("size", { mode: "number" }).notNull(),
    fileType: fileTypeEnum("file_type").notNull(),
    user: text("user").notNull(),
    group: text("group").notNull(),
    privilege: text("privilege").notNull(),
    memo: text("memo").notNull().default(""),
  },
  (t) => [index("release_files_release_idx").on(t.releaseId)],
);

/** The pinned content of each bound script's version at the moment the release was created. */
export const releaseHooks = pgTable(
  "release_hooks",
  {
    releaseId: integer("release_id").notNull().references(() => releases.id, { onDelete: "cascade" }),
    kind: hookKindEnum("kind").notNull(),
    scriptId: integer("script_id").references(() => scripts.id, { onDelete: "set null" }),
    scriptVersionId: integer("script_version_id").references(() => scriptVersions.id, { onDelete: "set null" }),
    scriptName: text("script_name").notNull(),
    versionName: text("version_name").notNull(),
    type: scriptTypeEnum("type").notNull(),
    content: text("content").notNull(),
  },
  (t) => [primaryKey({ columns: [t.releaseId, t.kind] }), index("release_hooks_script_idx").on(t.scriptId)],
);

/** A label-selector group of clients, optionally narrowed to a stable percentage of client uids. */
export const groups = pgTable(
  "groups",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    selector: text("selector").notNull().default(""),
    percent: integer("percent"),
    memo: text("memo").notNull().default(""),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex("groups_biz_name_uq").on(t.bizId, t.name)],
);

export type GroupSnapshot = { id: number; name: string; selector: string; percent: number | null };
/**
 * A publish made by a rollout reaches only the released share of its clients: `percent` of the
 * clients its groups match, by a stable hash of uid and rollout id (0: withdrawn, nobody).
 */
export type PublishRollout = { id: number; percent: number };

/** One publish: a release to all clients (`groups` empty) or to the groups as they were then. */
export const publishes = pgTable(
  "publishes",
  {
    id: serial("id").primaryKey(),
    bizId: integer("biz_id").notNull().references(() => bizs.id, { onDelete: "cascade" }),
    serviceId: integer("service_id").notNull().references(() => services.id, { onDelete: "cascade" }),
    releaseId: integer("release_id").notNull().references(() => releases.id, { onDelete: "cascade" }),
    groups: jsonb("groups").$type<GroupSnapshot[]>().notNull().default([]),
    rollout: jsonb("rollout").$type<PublishRollout | null>(),
    memo: text("memo").notNull().default(""),
    createdBy: text("created_by").notNull().default(""),
    createdAt: createdAt(),
  },
  (t) => [index("publishes_service_idx").on(t.serviceId, t.id)],
);
