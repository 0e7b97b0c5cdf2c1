import { afterChange } from "../core/rollouts";
import { RolloutGates } from "./rollouts";
import { createRoute, z } from "@hono/zod-openapi";
import { Id, IdParam, Paging } from "../http/input";
import * as hooks from "../core/webhooks";
import { RejectedDelivery, verifyDelivery, type VerifiedDelivery } from "../core/webhook-signing";
import { ApiError } from "../http/errors";
import { errorResponses, json, jsonBody, router, SafeName } from "../http/openapi";
import { AppParam } from "./services";

const RolloutSettings = RolloutGates.strict().openapi("WebhookRolloutSettings", { description: "As for POST .../rollouts: waves strictly increasing, ending at 100." });
const Webhook = z
  .object({
    id: z.string(),
    serviceId: z.number().int(),
    name: z.string(),
    action: z.enum(["release", "publish", "rollout"]),
    format: z.enum(["edgeconf", "github"]),
    versionId: z.number().int().nullable(),
    groups: z.array(z.number().int()),
    rollout: RolloutSettings.nullable(),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi("Webhook");
const CreateWebhook = z
  .object({
    name: SafeName,
    action: z
      .enum(["release", "publish", "rollout"])
      .openapi({ description: "release: create a version from the draft and publish it; publish: publish versionId; rollout: start a rollout (settings in `rollout`) of versionId (webhook's, else the body's), else of a new version from the draft" }),
    format: z
      .enum(["edgeconf", "github"])
      .default("edgeconf")
      .openapi({ description: "how deliveries are signed, fixed for the webhook's life: `edgeconf` (timestamp and delivery id signed) or `github` (X-Hub-Signature-256)" }),
    versionId: Id.optional(),
    groups: z.array(Id).max(100).optional().openapi({ description: "publish to these groups; all clients when absent" }),
    rollout: RolloutSettings.optional().openapi({ description: "action `rollout` only: waves and gates of the rollouts it starts" }),
  })
  .strict();
const Delivery = z.object({
  id: z.number().int(),
  deliveryId: z.string(),
  status: z.string(),
  message: z.string(),
  versionId: z.number().int().nullable(),
  publishId: z.number().int().nullable(),
  createdAt: z.string(),
});
const HookParams = AppParam.extend({ id: z.string().min(1).max(80) });
const tags = ["webhooks"];

export const webhookRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/apps/{app}/webhooks",
      tags,
      description: "Creates a webhook; `secret` is shown only in this answer.",
      request: { params: AppParam, body: jsonBody(CreateWebhook) },
      responses: { 201: json(Webhook.extend({ url: z.string(), secret: z.string() }), "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { deps } = c.var;
      const w = await hooks.createWebhook(deps.db, c.var.actor, deps.secretKey, p.biz, p.app, c.req.valid("json"), deps.clock());
      return c.json({ ...w, url: `${new URL(c.req.url).origin}/api/v1/webhooks/${w.id}` }, 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/apps/{app}/webhooks", tags, request: { params: AppParam }, responses: { 200: json(z.object({ items: z.array(Webhook) })), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await hooks.listWebhooks(c.var.deps.db, p.biz, p.app), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/bizs/{biz}/apps/{app}/webhooks/{id}", tags, request: { params: HookParams }, responses: { 200: json(z.object({ id: z.string() })), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await hooks.deleteWebhook(c.var.deps.db, c.var.actor, p.biz, p.app, p.id), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/webhooks/{id}/deliveries",
      tags,
      request: { params: HookParams, query: z.object({ limit: Paging.limit, before: IdParam.optional() }) },
      responses: { 200: json(z.object({ items: z.array(Delivery), nextBefore: z.number().int().nullable() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await hooks.listDeliveries(c.var.deps.db, p.biz, p.app, p.id, c.req.valid("query")), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/webhooks/{webhookId}",
      tags,
      description:
        "A signed delivery (no bearer token), in the webhook's one format. `edgeconf`: `X-Edgeconf-Signature: sha256=<hex HMAC-SHA256 of \"<timestamp>.<deliveryId>.<raw body>\">`, `X-Edgeconf-Timestamp` (unix seconds, within 5 minutes), `X-Edgeconf-Delivery` (letters, digits, `_-:`, at most 128). `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`, `X-GitHub-Delivery`. The same signed bytes or delivery id are acted on once (later: 200 `duplicate: true`).",
      request: { params: z.object({ webhookId: z.string().min(1).max(80) }) },
      responses: {
        200: json(
          z.object({
            deliveryId: z.string(),
            duplicate: z.boolean(),
            action: z.enum(["release", "publish", "rollout"]).optional(),
            version: z.object({ id: z.number().int(), name: z.string() }).optional(),
            publishId: z.number().int().optional(),
            rolloutId: z.number().int().optional().openapi({ description: "action `rollout`: the rollout started" }),
          }),
        ),
        ...errorResponses,
      },
    }),
    async (c) => {
      const { deps } = c.var;
      const now = deps.clock();
      const w = await hooks.findWebhook(deps.db, c.req.valid("param").webhookId);
      if (!w) throw new ApiError("not_found", "webhook not found");
      const rawBody = new Uint8Array(await c.req.arrayBuffer());
      let delivery: VerifiedDelivery;
      try {
        delivery = await verifyDelivery(w, deps.secretKey, { rawBody, headers: (n) => c.req.header(n) }, now);
      } catch (err) {
        if (err instanceof RejectedDelivery) await hooks.logRejected(deps.db, w, c.req.header("x-edgeconf-delivery") ?? c.req.header("x-github-delivery"), err.message, now);
        throw err;
      }
      const outcome = await hooks.actOnDelivery(deps.db, deps.blobs, w, delivery, rawBody, now);
      if (outcome.duplicate) return c.json(outcome, 200);
      await afterChange(deps, outcome.serviceId, { announce: true, nextCheckAt: outcome.rolloutId ? now : null });
      const { serviceId: _, ...body } = outcome;
      return c.json(body, 200);
    },
  );
