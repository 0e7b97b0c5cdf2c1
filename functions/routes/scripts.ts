import { createRoute, z } from "@hono/zod-openapi";
import { IdParam } from "../http/input";
import { requireBiz } from "../core/bizs";
import * as scripts from "../core/scripts";
import type { AppEnv } from "../env";
import { ApiError } from "../http/errors";
import { BizParam, errorResponses, json, jsonBody, Paging, router, SafeName } from "../http/openapi";
import type { Context } from "hono";

const ScriptType = z.enum(["shell", "python"]);
const State = z.enum(["not_deployed", "deployed", "shutdown"]);
const Tag = z.string().min(1).max(64).regex(/^[^\u0000-\u001f,]+$/, "no control characters or commas");
const Memo = z.string().max(4096);
const Content = z.string().openapi({ description: "Script text; not empty, no NUL byte, at most 1 MiB." });

const Ref = z.object({ id: z.number().int(), name: z.string() });
const ScriptVersion = z
  .object({
    id: z.number().int(),
    scriptId: z.number().int(),
    name: z.string(),
    memo: z.string(),
    state: State,
    content: z.string().optional(),
    contentSize: z.number().int(),
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    publishedAt: z.string().nullable(),
    normalized: z
      .array(z.enum(["crlf"]))
      .optional()
      .openapi({ description: "in answers to a save: what saving changed in the content; `crlf`: Windows line endings were made LF (bash and python would read the CR)" }),
  })
  .openapi("ScriptVersion");
const Script = z
  .object({
    id: z.number().int(),
    bizId: z.number().int(),
    name: z.string(),
    type: ScriptType,
    tags: z.array(z.string()),
    memo: z.string(),
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    onlineVersion: Ref.nullable(),
    usageCount: z.number().int(),
  })
  .openapi("Script");

const ScriptParams = BizParam.extend({ scriptId: IdParam });
const VersionParams = ScriptParams.extend({ versionId: IdParam });

const CreateScript = z
  .object({
    name: SafeName,
    type: ScriptType,
    tags: z.array(Tag).max(20).optional(),
    memo: Memo.optional(),
    content: Content,
    versionName: SafeName.optional(),
    versionMemo: Memo.optional(),
  })
  .strict();
const UpdateScript = z.object({ tags: z.array(Tag).max(20).optional(), memo: Memo.optional(), name: z.unknown().optional(), type: z.unknown().optional() }).strict();
const CreateVersion = z.object({ name: SafeName.optional(), content: Content, memo: Memo.optional() }).strict();
const UpdateVersion = z.object({ name: SafeName.optional(), content: Content.optional(), memo: Memo.optional() }).strict();

const References = z
  .object({
    scriptId: z.number().int(),
    versionId: z.number().int().nullable(),
    drafts: z.array(z.object({ serviceId: z.number().int(), serviceName: z.string(), kind: z.enum(["pre", "post", "validate"]), followsOnline: z.boolean(), pinnedVersionId: z.number().int().nullable() })),
    versions: z.array(
      z.object({
        serviceId: z.number().int(),
        serviceName: z.string(),
        releaseId: z.number().int(),
        releaseName: z.string(),
        kind: z.enum(["pre", "post", "validate"]),
        scriptVersionId: z.number().int().nullable(),
        scriptVersionName: z.string(),
      }),
    ),
  })
  .openapi("ScriptReferences");

const list = <T extends z.ZodTypeAny>(item: T) => z.object({ items: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });
const opts = (c: Context<AppEnv>) => ({ now: c.var.deps.clock(), maxBytes: c.var.deps.limits.maxScriptBytes });
const tags = ["scripts"];

export const scriptRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/scripts",
      tags,
      description: "Creates a script and its first version, which is online at once.",
      request: { params: BizParam, body: jsonBody(CreateScript) },
      responses: { 201: json(Script.extend({ version: ScriptVersion, normalized: z.array(z.enum(["crlf"])) }), "Created"), ...errorResponses },
    }),
    async (c) => c.json(await scripts.createScript(c.var.deps.db, c.var.actor, c.req.valid("param").biz, c.req.valid("json"), opts(c)), 201),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/scripts",
      tags,
      request: { params: BizParam, query: z.object({ tag: z.string().max(64).optional(), search: z.string().max(128).optional(), type: ScriptType.optional(), ...Paging }) },
      responses: { 200: json(list(Script)), ...errorResponses },
    }),
    async (c) => c.json(await scripts.listScripts(c.var.deps.db, c.req.valid("param").biz, c.req.valid("query")), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/scripts/tags",
      tags,
      description: "Every tag (category) with how many scripts carry it.",
      request: { params: BizParam },
      responses: { 200: json(z.object({ items: z.array(z.object({ tag: z.string(), count: z.number().int() })), untagged: z.number().int() })), ...errorResponses },
    }),
    async (c) => c.json(await scripts.listTags(c.var.deps.db, c.req.valid("param").biz), 200),
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/scripts/{scriptId}", tags, request: { params: ScriptParams }, responses: { 200: json(Script), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.getScript(c.var.deps.db, p.biz, p.scriptId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/bizs/{biz}/scripts/{scriptId}",
      tags,
      description: "Updates tags and memo. Name and type are fixed once created.",
      request: { params: ScriptParams, body: jsonBody(UpdateScript) },
      responses: { 200: json(Script), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const body = c.req.valid("json");
      if (body.name !== undefined) throw new ApiError("invalid_argument", "name: a script's name is fixed once created");
      if (body.type !== undefined) throw new ApiError("invalid_argument", "type: a script's type is fixed once created");
      return c.json(await scripts.updateScript(c.var.deps.db, c.var.actor, p.biz, p.scriptId, { tags: body.tags, memo: body.memo }, c.var.deps.clock()), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/bizs/{biz}/scripts/{scriptId}",
      tags,
      description: "Refused while a service draft binds the script, unless force=true (which unbinds it).",
      request: { params: ScriptParams, query: z.object({ force: z.enum(["true", "false"]).optional() }) },
      responses: { 200: json(z.object({ id: z.number().int(), unbound: z.array(z.object({ serviceId: z.number().int(), serviceName: z.string(), kind: z.enum(["pre", "post", "validate"]) })) })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.deleteScript(c.var.deps.db, c.var.actor, p.biz, p.scriptId, c.req.valid("query").force === "true"), 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/scripts/{scriptId}/references", tags, request: { params: ScriptParams }, responses: { 200: json(References), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.references(c.var.deps.db, p.biz, p.scriptId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/scripts/{scriptId}/diff",
      tags,
      request: { params: ScriptParams, query: z.object({ from: IdParam, to: IdParam }) },
      responses: { 200: json(z.object({ from: Ref, to: Ref, identical: z.boolean(), diff: z.string() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const q = c.req.valid("query");
      return c.json(await scripts.diffVersions(c.var.deps.db, p.biz, p.scriptId, q.from, q.to), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/scripts/{scriptId}/versions",
      tags,
      description: "Creates a not-deployed version (name defaults to v%Y%m%d%H%M%S, UTC). One not-deployed version at a time.",
      request: { params: ScriptParams, body: jsonBody(CreateVersion) },
      responses: { 201: json(ScriptVersion, "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.createVersion(c.var.deps.db, c.var.actor, p.biz, p.scriptId, c.req.valid("json"), opts(c)), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/scripts/{scriptId}/versions",
      tags,
      request: { params: ScriptParams, query: z.object({ state: State.optional(), search: z.string().max(128).optional(), ...Paging }) },
      responses: { 200: json(list(ScriptVersion)), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.listVersions(c.var.deps.db, p.biz, p.scriptId, c.req.valid("query")), 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/scripts/{scriptId}/versions/{versionId}", tags, request: { params: VersionParams }, responses: { 200: json(ScriptVersion), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.getVersion(c.var.deps.db, p.biz, p.scriptId, p.versionId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/bizs/{biz}/scripts/{scriptId}/versions/{versionId}",
      tags,
      description: "Only a not-deployed version can be edited.",
      request: { params: VersionParams, body: jsonBody(UpdateVersion) },
      responses: { 200: json(ScriptVersion), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.updateVersion(c.var.deps.db, c.var.actor, p.biz, p.scriptId, p.versionId, c.req.valid("json"), opts(c)), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/bizs/{biz}/scripts/{scriptId}/versions/{versionId}",
      tags,
      description: "Only a not-deployed version can be deleted.",
      request: { params: VersionParams },
      responses: { 200: json(z.object({ id: z.number().int() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.deleteVersion(c.var.deps.db, c.var.actor, p.biz, p.scriptId, p.versionId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/scripts/{scriptId}/versions/{versionId}/publish",
      tags,
      description: "Makes the version online; the old online version is shut down. Publishing a shut-down version is a rollback.",
      request: { params: VersionParams },
      responses: { 200: json(ScriptVersion.extend({ previousOnline: Ref.nullable() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.publishVersion(c.var.deps.db, c.var.actor, p.biz, p.scriptId, p.versionId, c.var.deps.clock()), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/scripts/{scriptId}/versions/{versionId}/references",
      tags,
      request: { params: VersionParams },
      responses: { 200: json(References), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await scripts.references(c.var.deps.db, p.biz, p.scriptId, p.versionId), 200);
    },
  );
