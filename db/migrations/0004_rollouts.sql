CREATE TYPE "public"."rollout_state" AS ENUM('running', 'paused', 'halted', 'rolled_back', 'aborted', 'completed');--> statement-breakpoint
ALTER TYPE "public"."webhook_action" ADD VALUE 'rollout';--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" serial PRIMARY KEY NOT NULL,
	"biz_id" integer NOT NULL,
	"service_id" integer NOT NULL,
	"release_id" integer NOT NULL,
	"publish_id" integer,
	"state" "rollout_state" DEFAULT 'running' NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"waves" jsonb NOT NULL,
	"wave" integer DEFAULT 0 NOT NULL,
	"wave_released_at" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"bake_seconds" integer NOT NULL,
	"max_failure_percent" integer NOT NULL,
	"report_timeout_seconds" integer NOT NULL,
	"auto_rollback" boolean NOT NULL,
	"memo" text DEFAULT '' NOT NULL,
	"created_by" text DEFAULT '' NOT NULL,
	"next_check_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "publishes" ADD COLUMN "rollout" jsonb;--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "rollout" jsonb;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_biz_id_bizs_id_fk" FOREIGN KEY ("biz_id") REFERENCES "public"."bizs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_publish_id_publishes_id_fk" FOREIGN KEY ("publish_id") REFERENCES "public"."publishes"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "rollouts_service_idx" ON "rollouts" USING btree ("service_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX "rollouts_one_active_uq" ON "rollouts" USING btree ("service_id") WHERE "rollouts"."state" in ('running', 'paused', 'halted');