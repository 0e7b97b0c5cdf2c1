CREATE TYPE "public"."webhook_format" AS ENUM('edgeconf', 'github');--> statement-breakpoint
CREATE TABLE "webhook_signatures" (
	"webhook_id" text NOT NULL,
	"digest" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "webhook_signatures_webhook_id_digest_pk" PRIMARY KEY("webhook_id","digest")
);
--> statement-breakpoint
ALTER TABLE "webhooks" ADD COLUMN "format" "webhook_format" DEFAULT 'edgeconf' NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_signatures" ADD CONSTRAINT "webhook_signatures_webhook_id_webhooks_id_fk" FOREIGN KEY ("webhook_id") REFERENCES "public"."webhooks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "webhook_signatures_expiry_idx" ON "webhook_signatures" USING btree ("webhook_id","expires_at");