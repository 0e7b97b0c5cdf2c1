import { createRoute, z } from "@hono/zod-openapi";
import { Id } from "../http/input";
import * as hooks from "../core/hooks";
import { errorResponses, json, jsonBody, router } from "../http/openapi";
import { AppParam } from "./services";

const Binding = z.object({ scriptId: Id, versionId: Id.nullable().optional() }).strict();
const HookView = z
  .object({
    scriptId: z.number().int(),
    scriptName: z.string(),
    type: z.enum(["shell", "python"]),
    followsOnline: z.boolean(),
    version: z.object({ id: z.number().int(), name: z.string(), state: z.string() }).nullable(),
  })
  .nullable();
const Hooks = z.object({ pre: HookView, post: HookView, validate: HookView }).openapi("ServiceHooks");
const tags = ["services"];

export const hookRoutes = router()
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/apps/{app}/hooks", tags, description: "The draft's pre/post/validate scripts and the version each uses now.", request: { params: AppParam }, responses: { 200: json(Hooks), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await hooks.getHooks(c.var.deps.db, p.biz, p.app), 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/bizs/{biz}/apps/{app}/hooks",
      tags,
      description:
        "Binds the pre, post and/or validate script of a file service's draft (validate runs on the agent over the staged new version before any file is swapped; non-zero refuses the release there). `versionId` pins a version; without it the draft follows the script's online version. `null` unbinds; a kind left out keeps its binding.",
      request: { params: AppParam, body: jsonBody(z.object({ pre: Binding.nullable().optional(), post: Binding.nullable().optional(), validate: Binding.nullable().optional() }).strict()) },
      responses: { 200: json(Hooks), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await hooks.setHooks(c.var.deps.db, c.var.actor, p.biz, p.app, c.req.valid("json"), c.var.deps.clock()), 200);
    },
  );
