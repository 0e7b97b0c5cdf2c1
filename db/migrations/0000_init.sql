CREATE TYPE "public"."config_type" AS ENUM('file', 'kv');--> statement-breakpoint
CREATE TYPE "public"."file_type" AS ENUM('text', 'binary');--> statement-breakpoint
CREATE TYPE "public"."script_type" AS ENUM('shell', 'python');--> statement-breakpoint
CREATE TYPE "public"."script_version_state" AS ENUM('not_deployed', 'deployed', 'shutdown');--> statement-breakpoint
CREATE TYPE "public"."hook_kind" AS ENUM('pre', 'post');--> statement-breakpoint
CREATE TYPE "public"."credential_kind" AS ENUM('admin', 'agent');--> statement-breakpoint
CREATE TYPE "public"."webhook_action" AS ENUM('release', 'publish');--> statement-breakpoint
CREATE TABLE "bizs" (
	"id" integer PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "bizs_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "services" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"name" text NOT NULL,
	"config_type" "config_type" NOT NULL,
	"memo" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "blobs" (
	"biz_id" integer NOT NULL,
	"sha256" text NOT NULL,
	"size" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "blobs_biz_id_sha256_pk" PRIMARY KEY("biz_id","sha256")
);
--> statement-breakpoint
CREATE TABLE "config_files" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"path" text NOT NULL,
	"name" text NOT NULL,
	"sha256" text NOT NULL,
	"size" bigint NOT NULL,
	"file_type" "file_type" DEFAULT 'text' NOT NULL,
	"user" text DEFAULT 'root' NOT NULL,
	"group" text DEFAULT 'root' NOT NULL,
	"privilege" text DEFAULT '644' NOT NULL,
	"memo" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "script_versions" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"script_id" integer NOT NULL,
	"name" text NOT NULL,
	"content" text NOT NULL,
	"memo" text DEFAULT '' NOT NULL,
	"state" "script_version_state" DEFAULT 'not_deployed' NOT NULL,
	"created_by" text DEFAULT '' NOT NULL,
	"published_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "scripts" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"name" text NOT NULL,
	"type" "script_type" NOT NULL,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"memo" text DEFAULT '' NOT NULL,
	"created_by" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "groups" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"name" text NOT NULL,
	"selector" text DEFAULT '' NOT NULL,
	"percent" integer,
	"memo" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "publishes" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"release_id" integer NOT NULL,
	"groups" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"memo" text DEFAULT '' NOT NULL,
	"created_by" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "release_files" (
	"id" serial PRIMARY KEY NOT NULL,
	"release_id" integer NOT NULL,
	"path" text NOT NULL,
	"name" text NOT NULL,
	"sha256" text NOT NULL,
	"size" bigint NOT NULL,
	"file_type" "file_type" NOT NULL,
	"user" text NOT NULL,
	"group" text NOT NULL,
	"privilege" text NOT NULL,
	"memo" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "release_hooks" (
	"release_id" integer NOT NULL,
	"kind" "hook_kind" NOT NULL,
	"script_id" integer,
	"script_version_id" integer,
	"script_name" text NOT NULL,
	"version_name" text NOT NULL,
	"type" "script_type" NOT NULL,
	"content" text NOT NULL,
	CONSTRAINT "release_hooks_release_id_kind_pk" PRIMARY KEY("release_id","kind")
);
--> statement-breakpoint
CREATE TABLE "releases" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"name" text NOT NULL,
	"memo" text DEFAULT '' NOT NULL,
	"created_by" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "service_hooks" (
	"service_id" integer NOT NULL,
	"kind" "hook_kind" NOT NULL,
	"biz_id" integer NOT NULL,
	"script_id" integer NOT NULL,
	"script_version_id" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "service_hooks_service_id_kind_pk" PRIMARY KEY("service_id","kind")
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer,
	"actor" text NOT NULL,
	"credential_id" integer,
	"action" text NOT NULL,
	"resource_type" text NOT NULL,
	"resource_id" text DEFAULT '' NOT NULL,
	"before" jsonb,
	"after" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "credentials" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"kind" "credential_kind" NOT NULL,
	"biz_id" integer,
	"apps" text[] DEFAULT '{}'::text[] NOT NULL,
	"token_hash" text NOT NULL,
	"token_prefix" text NOT NULL,
	"created_by" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "credentials_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "sessions" (
	"id_hash" text PRIMARY KEY NOT NULL,
	"credential_id" integer NOT NULL,
	"csrf_token" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" serial PRIMARY KEY NOT NULL,
	"webhook_id" text NOT NULL,
	"delivery_id" text NOT NULL,
	"status" text NOT NULL,
	"message" text DEFAULT '' NOT NULL,
	"release_id" integer,
	"publish_id" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhooks" (
	"id" text PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"name" text NOT NULL,
	"action" "webhook_action" NOT NULL,
	"release_id" integer,
	"group_ids" integer[] DEFAULT '{}'::integer[] NOT NULL,
	"secret_salt" text NOT NULL,
	"secret_hash" text NOT NULL,
	"created_by" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "client_events" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"client_uid" text NOT NULL,
	"release_id" integer,
	"status" text NOT NULL,
	"message" text DEFAULT '' NOT NULL,
	"pre_hook" jsonb,
	"post_hook" jsonb,
	"files_count" integer DEFAULT 0 NOT NULL,
	"bytes_downloaded" bigint DEFAULT 0 NOT NULL,
	"timings" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "clients" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"uid" text NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"agent_version" text DEFAULT '' NOT NULL,
	"mode" text DEFAULT 'pull' NOT NULL,
	"ip" text DEFAULT '' NOT NULL,
	"current_release_id" integer,
	"target_release_id" integer,
	"last_status" text,
	"last_event_id" integer,
	"last_heartbeat_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "services" ADD CONSTRAINT "services_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "blobs" ADD CONSTRAINT "blobs_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "config_files" ADD CONSTRAINT "config_files_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "config_files" ADD CONSTRAINT "config_files_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "script_versions" ADD CONSTRAINT "script_versions_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "script_versions" ADD CONSTRAINT "script_versions_script_id_scripts_id_fk" FOREIGN KEY ("script_id") REFERENCES "public"."scripts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "scripts" ADD CONSTRAINT "scripts_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "groups" ADD CONSTRAINT "groups_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "publishes" ADD CONSTRAINT "publishes_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "publishes" ADD CONSTRAINT "publishes_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "publishes" ADD CONSTRAINT "publishes_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_files" ADD CONSTRAINT "release_files_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_hooks" ADD CONSTRAINT "release_hooks_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_hooks" ADD CONSTRAINT "release_hooks_script_id_scripts_id_fk" FOREIGN KEY ("script_id") REFERENCES "public"."scripts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_hooks" ADD CONSTRAINT "release_hooks_script_version_id_script_versions_id_fk" FOREIGN KEY ("script_version_id") REFERENCES "public"."script_versions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "releases" ADD CONSTRAINT "releases_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "releases" ADD CONSTRAINT "releases_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_hooks" ADD CONSTRAINT "service_hooks_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_hooks" ADD CONSTRAINT "service_hooks_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_hooks" ADD CONSTRAINT "service_hooks_script_id_scripts_id_fk" FOREIGN KEY ("script_id") REFERENCES "public"."scripts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_hooks" ADD CONSTRAINT "service_hooks_script_version_id_script_versions_id_fk" FOREIGN KEY ("script_version_id") REFERENCES "public"."script_versions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credentials" ADD CONSTRAINT "credentials_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_credential_id_credentials_id_fk" FOREIGN KEY ("credential_id") REFERENCES "public"."credentials"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_webhook_id_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhooks" ADD CONSTRAINT "webhooks_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "client_events" ADD CONSTRAINT "client_events_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "client_events" ADD CONSTRAINT "client_events_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "clients" ADD CONSTRAINT "clients_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "clients" ADD CONSTRAINT "clients_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "services_biz_name_uq" ON "services" USING btree ("biz_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "config_files_service_path_name_uq" ON "config_files" USING btree ("service_id","path","name");--> statement-breakpoint
CREATE UNIQUE INDEX "script_versions_script_name_uq" ON "script_versions" USING btree ("script_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "script_versions_one_online_uq" ON "script_versions" USING btree ("script_id") WHERE "script_versions"."state" = 'deployed';--> statement-breakpoint
CREATE UNIQUE INDEX "script_versions_one_draft_uq" ON "script_versions" USING btree ("script_id") WHERE "script_versions"."state" = 'not_deployed';--> statement-breakpoint
CREATE INDEX "script_versions_script_idx" ON "script_versions" USING btree ("script_id");--> statement-breakpoint
CREATE UNIQUE INDEX "scripts_biz_name_uq" ON "scripts" USING btree ("biz_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "groups_biz_name_uq" ON "groups" USING btree ("biz_id","name");--> statement-breakpoint
CREATE INDEX "publishes_service_idx" ON "publishes" USING btree ("service_id","id");--> statement-breakpoint
CREATE INDEX "release_files_release_idx" ON "release_files" USING btree ("release_id");--> statement-breakpoint
CREATE INDEX "release_hooks_script_idx" ON "release_hooks" USING btree ("script_id");--> statement-breakpoint
CREATE UNIQUE INDEX "releases_service_name_uq" ON "releases" USING btree ("service_id","name");--> statement-breakpoint
CREATE INDEX "service_hooks_script_idx" ON "service_hooks" USING btree ("script_id");--> statement-breakpoint
CREATE INDEX "audit_log_biz_idx" ON "audit_log" USING btree ("biz_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_uq" ON "webhook_deliveries" USING btree ("webhook_id","delivery_id");--> statement-breakpoint
CREATE INDEX "client_events_service_idx" ON "client_events" USING btree ("service_id","client_uid","id");--> statement-breakpoint
CREATE UNIQUE INDEX "clients_service_uid_uq" ON "clients" USING btree ("service_id","uid");