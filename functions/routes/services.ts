import { createRoute, z } from "@hono/zod-openapi";
import { announceServiceDeleted } from "../core/feed-cache";
import * as services from "../core/services";
import { ApiError } from "../http/errors";
import { BizParam, errorResponses, json, jsonBody, Paging, router } from "../http/openapi";

export const ServiceName = z.string().regex(services.SERVICE_NAME, "letters, digits, '_', '.', '-'; starts with a letter or digit; at most 128");
/** `{app}` is the service name, as in the seed's manifests. */
export const AppParam = BizParam.extend({ app: ServiceName.openapi({ param: { name: "app", in: "path" }, example: "service_demo" }) });
export const ConfigType = z.enum(["file", "kv"]);
const Memo = z.string().max(4096);

const Service = z
  .object({ id: z.number().int(), bizId: z.number().int(), name: z.string(), configType: ConfigType, memo: z.string(), createdAt: z.string(), updatedAt: z.string() })
  .openapi("Service");
const CreateService = z.object({ name: ServiceName, configType: ConfigType, memo: Memo.optional() }).strict();
const UpdateService = z.object({ memo: Memo.optional(), name: z.unknown().optional(), configType: z.unknown().optional() }).strict();
const tags = ["services"];

export const serviceRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/bizs/{biz}/apps", tags, request: { params: BizParam, body: jsonBody(CreateService) }, responses: { 201: json(Service, "Created"), ...errorResponses } }),
    async (c) => c.json(await services.createService(c.var.deps.db, c.var.actor, c.req.valid("param").biz, c.req.valid("json"), c.var.deps.clock()), 201),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps",
      tags,
      request: { params: BizParam, query: z.object({ configType: ConfigType.optional(), ...Paging }) },
      responses: { 200: json(z.object({ items: z.array(Service), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })), ...errorResponses },
    }),
    async (c) => c.json(await services.listServices(c.var.deps.db, c.req.valid("param").biz, c.req.valid("query")), 200),
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/apps/{app}", tags, request: { params: AppParam }, responses: { 200: json(Service), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await services.getService(c.var.deps.db, p.biz, p.app), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/bizs/{biz}/apps/{app}",
      tags,
      description: "Updates the memo. Name and configType are fixed once created.",
      request: { params: AppParam, body: jsonBody(UpdateService) },
      responses: { 200: json(Service), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const body = c.req.valid("json");
      if (body.name !== undefined) throw new ApiError("invalid_argument", "name: a service's name is fixed once created (agents subscribe by name)");
      if (body.configType !== undefined) throw new ApiError("invalid_argument", "configType: a service's type is fixed once created");
      return c.json(await services.updateService(c.var.deps.db, c.var.actor, p.biz, p.app, { memo: body.memo }, c.var.deps.clock()), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/bizs/{biz}/apps/{app}",
      tags,
      description: "Deletes the service with its draft, versions, publishes and clients. Polls held on it end with 404 at once.",
      request: { params: AppParam },
      responses: { 200: json(z.object({ id: z.number().int(), name: z.string() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const deleted = await services.deleteService(c.var.deps.db, c.var.actor, p.biz, p.app);
      // After the commit: held polls of it end with 404 and no instance answers from its releases.
      await announceServiceDeleted(c.var.deps, deleted.id);
      return c.json(deleted, 200);
    },
  );
