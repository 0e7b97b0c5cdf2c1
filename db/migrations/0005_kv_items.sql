CREATE TYPE "public"."kv_type" AS ENUM('string', 'number', 'text', 'json', 'yaml', 'xml', 'secret');--> statement-breakpoint
CREATE TABLE "kv_items" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"key" text NOT NULL,
	"type" "kv_type" NOT NULL,
	"value" text DEFAULT '' NOT NULL,
	"sealed" text,
	"memo" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "release_kvs" (
	"id" serial PRIMARY KEY NOT NULL,
	"release_id" integer NOT NULL,
	"key" text NOT NULL,
	"type" "kv_type" NOT NULL,
	"value" text DEFAULT '' NOT NULL,
	"sealed" text,
	"memo" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "kv_items" ADD CONSTRAINT "kv_items_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "kv_items" ADD CONSTRAINT "kv_items_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "release_kvs" ADD CONSTRAINT "release_kvs_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "kv_items_service_key_uq" ON "kv_items" USING btree ("service_id","key");--> statement-breakpoint
CREATE UNIQUE INDEX "release_kvs_release_key_uq" ON "release_kvs" USING btree ("release_id","key");