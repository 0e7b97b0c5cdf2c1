import { createRoute, z } from "@hono/zod-openapi";
import { IdParam } from "../http/input";
import { listClientEvents, listClients } from "../core/clients";
import { parseLabels } from "../core/feed";
import { loadService } from "../core/services";
import { errorResponses, json, Paging, router } from "../http/openapi";
import { AppParam } from "./services";

const Ref = z.object({ id: z.number().int(), name: z.string().nullable() }).nullable();
const HookRun = z.object({ exitCode: z.number().int().nullable(), durationMs: z.number(), outputTail: z.string() }).nullable();
const ClientEvent = z
  .object({
    id: z.number().int(),
    uid: z.string(),
    release: Ref,
    status: z.string(),
    message: z.string(),
    preHook: HookRun,
    postHook: HookRun,
    filesCount: z.number().int(),
    bytesDownloaded: z.number().int(),
    timings: z.record(z.string(), z.number()),
    createdAt: z.string(),
  })
  .openapi("ClientEvent");
const Client = z
  .object({
    uid: z.string(),
    labels: z.record(z.string(), z.string()),
    agentVersion: z.string(),
    mode: z.string(),
    ip: z.string(),
    currentRelease: Ref,
    targetRelease: Ref,
    upToDate: z.boolean(),
    lastHeartbeatAt: z.string().nullable(),
    online: z.boolean(),
    lastStatus: z.string().nullable(),
    lastEvent: ClientEvent.nullable(),
    firstSeenAt: z.string(),
  })
  .openapi("Client");

const ListQuery = z.object({
  status: z.enum(["SUCCESS", "FAILED", "PROCESSING"]).optional(),
  label: z.string().max(2048).optional().openapi({ description: "`k=v` (comma-separated for several); all must match", example: "env=prod" }),
  online: z.enum(["true", "false"]).optional(),
  ...Paging,
});
const tags = ["clients"];

export const clientRoutes = router()
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/clients",
      tags,
      description: "Agents of a service: current and target version, last heartbeat, online (seen within 150 s), last event.",
      request: { params: AppParam, query: ListQuery },
      responses: { 200: json(z.object({ items: z.array(Client), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const q = c.req.valid("query");
      const deps = c.var.deps;
      const service = await loadService(deps.db, p.biz, p.app);
      const filter = { status: q.status, labels: parseLabels(q.label, "label"), online: q.online === undefined ? undefined : q.online === "true", limit: q.limit, offset: q.offset };
      return c.json(await listClients(deps, service, filter, deps.clock()), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/clients/{uid}/events",
      tags,
      description: "One client's apply attempts, newest first; page with `before=<nextBefore>`.",
      request: {
        params: AppParam.extend({ uid: z.string().min(1).max(256) }),
        query: z.object({ limit: Paging.limit, before: IdParam.optional() }),
      },
      responses: { 200: json(z.object({ items: z.array(ClientEvent), nextBefore: z.number().int().nullable() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const service = await loadService(c.var.deps.db, p.biz, p.app);
      return c.json(await listClientEvents(c.var.deps.db, service, p.uid, c.req.valid("query")), 200);
    },
  );
