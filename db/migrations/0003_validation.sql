CREATE TYPE "public"."validator_kind" AS ENUM('json', 'yaml', 'toml', 'xml', 'jsonschema');--> statement-breakpoint
ALTER TYPE "public"."hook_kind" ADD VALUE 'validate';--> statement-breakpoint
CREATE TABLE "validators" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"path_glob" text NOT NULL,
	"kind" "validator_kind" NOT NULL,
	"schema" jsonb,
	"memo" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "releases" ADD COLUMN "validation" jsonb;--> statement-breakpoint
ALTER TABLE "validators" ADD CONSTRAINT "validators_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "validators" ADD CONSTRAINT "validators_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "validators_service_idx" ON "validators" USING btree ("service_id");