import { createRoute, z } from "@hono/zod-openapi";
import { Id } from "../http/input";
import * as publishes from "../core/publishes";
import { errorResponses, json, jsonBody, Paging, router } from "../http/openapi";
import { AppParam } from "./services";

const GroupSnapshot = z.object({ id: z.number().int(), name: z.string(), selector: z.string(), percent: z.number().int().nullable() });
const Publish = z
  .object({
    id: z.number().int(),
    serviceId: z.number().int(),
    version: z.object({ id: z.number().int(), name: z.string() }),
    toAll: z.boolean(),
    groups: z.array(GroupSnapshot),
    rollout: z
      .object({ id: z.number().int(), percent: z.number() })
      .nullable()
      .openapi({ description: "Set when a rollout made this publish: it reaches `percent` % of the clients its groups match (0: withdrawn by a rollback)." }),
    rollback: z.boolean().openapi({ description: "An earlier publish shipped a newer version than this one." }),
    memo: z.string(),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi("Publish");
const CreatePublish = z
  .object({
    versionId: Id,
    groups: z.array(Id).max(100).optional().openapi({ description: "Group ids; none or empty = every client." }),
    memo: z.string().max(4096).optional(),
  })
  .strict();
const tags = ["publishes"];

export const publishRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/apps/{app}/publishes",
      tags,
      description: "Makes a version the target of every client, or of the given groups. Publishing an older version is a rollback. Waiting agents are answered at once.",
      request: { params: AppParam, body: jsonBody(CreatePublish) },
      responses: { 201: json(Publish, "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { deps } = c.var;
      return c.json(await publishes.publish(deps.db, deps.notifier, c.var.actor, p.biz, p.app, c.req.valid("json"), deps.clock()), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/publishes",
      tags,
      description: "Publish history, newest first: who, when, which version, to whom.",
      request: { params: AppParam, query: z.object(Paging) },
      responses: { 200: json(z.object({ items: z.array(Publish), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await publishes.listPublishes(c.var.deps.db, p.biz, p.app, c.req.valid("query")), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/publishes/current",
      tags,
      description: "The publishes still in effect: the latest to every client, and the group publishes made after it (newest first).",
      request: { params: AppParam },
      responses: { 200: json(z.object({ base: Publish.nullable(), overrides: z.array(Publish) })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await publishes.currentPublishes(c.var.deps.db, p.biz, p.app), 200);
    },
  );
