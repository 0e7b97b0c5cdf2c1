import { createRoute, z } from "@hono/zod-openapi";
import * as kvs from "../core/kvs";
import { KV_KEY, KV_KEY_RULE, KV_TYPES, MASK } from "../core/kv-values";
import { intParamOr } from "../http/input";
import { errorResponses, json, jsonBody, Paging, router } from "../http/openapi";
import { AppParam } from "./services";

const KvType = z.enum(KV_TYPES);
const Key = z.string().regex(KV_KEY, KV_KEY_RULE);
const Memo = z.string().max(4096);
const Value = z.union([z.string(), z.number()]).openapi({ description: "Text of the value; a `number` item also takes a JSON number. Checked against the type (json parses, yaml parses, xml is well-formed, number is finite)." });
const KvItem = z
  .object({
    id: z.number().int(),
    serviceId: z.number().int(),
    key: z.string(),
    type: KvType,
    value: z.string().openapi({ description: `A secret's value reads "${MASK}" unless revealed.` }),
    masked: z.boolean(),
    memo: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("KvItem");
const CreateKv = z.object({ key: Key, type: KvType, value: Value, memo: Memo.optional() }).strict();
const PutKv = z.object({ type: KvType.optional(), value: Value, memo: Memo.optional() }).strict();
const KvParams = AppParam.extend({ key: Key.openapi({ param: { name: "key", in: "path" }, example: "db.port" }) });
const Exported = z.record(z.string(), z.object({ type: KvType, value: z.string() })).openapi("KvItems");
const Import = z
  .object({
    items: z.record(z.string(), z.object({ type: KvType, value: Value, memo: Memo.optional() }).strict()),
    prune: z.boolean().optional(),
  })
  .strict();
const tags = ["kv"];

export const kvRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/apps/{app}/kvs",
      tags,
      description: "Adds a key-value item to the draft of a kv service (409 when the key exists; 422 on a file service). A `secret` is stored encrypted and shown masked.",
      request: { params: AppParam, body: jsonBody(CreateKv) },
      responses: { 201: json(KvItem, "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await kvs.createKv(c.var.deps, c.var.actor, p.biz, p.app, c.req.valid("json")), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/kvs",
      tags,
      description:
        "The draft's items, sorted by key; secrets masked. `format=map` answers `{key: {type, value}}` instead (every item, the shape of the agent's kv.json, for export); with `reveal=true` its secrets are shown and the reveal is audited (kv.reveal).",
      request: {
        params: AppParam,
        query: z.object({
          search: z.string().max(128).optional(),
          limit: intParamOr(1, 5000, 500),
          offset: Paging.offset,
          format: z.enum(["list", "map"]).default("list"),
          reveal: z.enum(["true", "false"]).optional(),
        }),
      },
      responses: { 200: json(z.union([z.object({ items: z.array(KvItem), total: z.number().int(), limit: z.number().int(), offset: z.number().int() }), Exported])), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const q = c.req.valid("query");
      if (q.format === "map") return c.json(await kvs.exportKvs(c.var.deps, c.var.actor, p.biz, p.app, q.reveal === "true"), 200);
      return c.json(await kvs.listKvs(c.var.deps.db, p.biz, p.app, q), 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/bizs/{biz}/apps/{app}/kvs",
      tags,
      description: `Import: sets many items at once, all or none (\`prune\`: also delete the keys not given). A secret given as "${MASK}" keeps its stored value, so a masked export imports back unchanged.`,
      request: { params: AppParam, body: jsonBody(Import) },
      responses: { 200: json(z.object({ added: z.array(z.string()), changed: z.array(z.string()), removed: z.array(z.string()), unchanged: z.array(z.string()) })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const body = c.req.valid("json");
      return c.json(await kvs.importKvs(c.var.deps, c.var.actor, p.biz, p.app, body.items, { prune: body.prune }), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/kvs/{key}",
      tags,
      description: "One item. `reveal=true` shows a secret's value, and the reveal is audited (kv.reveal).",
      request: { params: KvParams, query: z.object({ reveal: z.enum(["true", "false"]).optional() }) },
      responses: { 200: json(KvItem), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await kvs.getKv(c.var.deps, c.var.actor, p.biz, p.app, p.key, c.req.valid("query").reveal === "true"), 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/bizs/{biz}/apps/{app}/kvs/{key}",
      tags,
      description: "Creates (201; `type` required) or replaces (200; type kept unless given) the item.",
      request: { params: KvParams, body: jsonBody(PutKv) },
      responses: { 200: json(KvItem), 201: json(KvItem, "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const r = await kvs.putKv(c.var.deps, c.var.actor, p.biz, p.app, p.key, c.req.valid("json"));
      return r.created ? c.json(r.item, 201) : c.json(r.item, 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/bizs/{biz}/apps/{app}/kvs/{key}", tags, request: { params: KvParams }, responses: { 200: json(z.object({ key: z.string() })), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await kvs.deleteKv(c.var.deps, c.var.actor, p.biz, p.app, p.key), 200);
    },
  );
