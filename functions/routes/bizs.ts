import { createRoute, z } from "@hono/zod-openapi";
import { Id } from "../http/input";
import { createBiz, listBizs } from "../core/bizs";
import { errorResponses, json, jsonBody, router } from "../http/openapi";

const Biz = z.object({ id: z.number().int(), name: z.string(), createdAt: z.string() }).openapi("Biz");
const CreateBiz = z.object({ id: Id, name: z.string().min(1).max(128) });

export const bizRoutes = router()
  .openapi(
    createRoute({ method: "post", path: "/bizs", tags: ["bizs"], request: { body: jsonBody(CreateBiz) }, responses: { 201: json(Biz, "Created"), ...errorResponses } }),
    async (c) => c.json(await createBiz(c.var.deps.db, c.var.actor, c.req.valid("json")), 201),
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs", tags: ["bizs"], responses: { 200: json(z.object({ items: z.array(Biz) })), ...errorResponses } }),
    async (c) => c.json({ items: await listBizs(c.var.deps.db) }, 200),
  );
