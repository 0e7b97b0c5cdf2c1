import { createRoute, z } from "@hono/zod-openapi";
import { IdParam, intIn } from "../http/input";
import * as groups from "../core/groups";
import { BizParam, errorResponses, json, jsonBody, Paging, router, SafeName } from "../http/openapi";

const Group = z
  .object({ id: z.number().int(), bizId: z.number().int(), name: z.string(), selector: z.string(), percent: z.number().int().nullable(), memo: z.string(), createdAt: z.string() })
  .openapi("Group");
const Selector = z.string().max(4096).openapi({
  example: "env=prod,zone in (a,b)",
  description: "Label selector: k=v, k==v, k!=v, k in (a,b), k notin (a,b), k (exists), !k (absent); comma = AND; empty = every client.",
});
const Percent = intIn(0, 100).nullable().openapi({ description: "A stable share of the matching clients' uids (null = all of them)." });
const CreateGroup = z.object({ name: SafeName, selector: Selector, percent: Percent.optional(), memo: z.string().max(4096).optional() }).strict();
const GroupParams = BizParam.extend({ groupId: IdParam });
const tags = ["groups"];

export const groupRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/bizs/{biz}/groups", tags, request: { params: BizParam, body: jsonBody(CreateGroup) }, responses: { 201: json(Group, "Created"), ...errorResponses } }),
    async (c) => c.json(await groups.createGroup(c.var.deps.db, c.var.actor, c.req.valid("param").biz, c.req.valid("json"), c.var.deps.clock()), 201),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/groups",
      tags,
      request: { params: BizParam, query: z.object(Paging) },
      responses: { 200: json(z.object({ items: z.array(Group), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })), ...errorResponses },
    }),
    async (c) => c.json(await groups.listGroups(c.var.deps.db, c.req.valid("param").biz, c.req.valid("query")), 200),
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/groups/{groupId}", tags, request: { params: GroupParams }, responses: { 200: json(Group), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await groups.getGroup(c.var.deps.db, p.biz, p.groupId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/bizs/{biz}/groups/{groupId}",
      tags,
      description: "Applies to later publishes; earlier publishes keep the group as it was.",
      request: { params: GroupParams, body: jsonBody(CreateGroup.partial().strict()) },
      responses: { 200: json(Group), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await groups.updateGroup(c.var.deps.db, c.var.actor, p.biz, p.groupId, c.req.valid("json")), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/bizs/{biz}/groups/{groupId}",
      tags,
      description: "Publishes made to the group keep their snapshot of it.",
      request: { params: GroupParams },
      responses: { 200: json(z.object({ id: z.number().int() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await groups.deleteGroup(c.var.deps.db, c.var.actor, p.biz, p.groupId), 200);
    },
  );
