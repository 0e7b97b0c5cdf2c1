import { createRoute, z } from "@hono/zod-openapi";
import { IdParam, intParamOr } from "../http/input";
import * as files from "../core/files";
import { splitFilePath } from "../core/paths";
import { errorResponses, json, jsonBody, Paging, router } from "../http/openapi";
import { RawBody } from "./blobs";
import { AppParam } from "./services";

const Owner = z.string().max(33);
const Meta = { user: Owner.optional(), group: Owner.optional(), privilege: z.string().max(4).optional(), memo: z.string().max(4096).optional() };
const ConfigFile = z
  .object({
    id: z.number().int(),
    serviceId: z.number().int(),
    path: z.string(),
    name: z.string(),
    sha256: z.string(),
    size: z.number().int(),
    fileType: z.enum(["text", "binary"]),
    user: z.string(),
    group: z.string(),
    privilege: z.string(),
    memo: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("ConfigFile");
const CreateFile = z
  .object({
    path: z.string().openapi({ example: "/etc/nginx", description: "Absolute directory; no '..', '//', backslash or control characters." }),
    name: z.string().openapi({ example: "nginx.conf" }),
    sha256: z.string().openapi({ description: "A blob uploaded with PUT /bizs/{biz}/blobs." }),
    ...Meta,
  })
  .strict();
const UpdateFile = CreateFile.partial().strict();
const FileParams = AppParam.extend({ fileId: IdParam });
const tags = ["files"];

export const fileRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/apps/{app}/files",
      tags,
      description: "Adds a config file to the draft from an uploaded blob.",
      request: { params: AppParam, body: jsonBody(CreateFile) },
      responses: { 201: json(ConfigFile, "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { deps } = c.var;
      return c.json(await files.createFile(deps.db, deps.blobs, c.var.actor, p.biz, p.app, c.req.valid("json"), deps.clock()), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/files",
      tags,
      request: { params: AppParam, query: z.object({ limit: intParamOr(1, 5000, 500), offset: Paging.offset }) },
      responses: { 200: json(z.object({ items: z.array(ConfigFile), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await files.listFiles(c.var.deps.db, p.biz, p.app, c.req.valid("query")), 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/bizs/{biz}/apps/{app}/files/content",
      tags,
      description: "Uploads the raw body and creates or replaces the draft file at `path` (full path, e.g. /etc/nginx/nginx.conf). 201 when created, 200 when replaced.",
      request: { params: AppParam, query: z.object({ path: z.string().min(1).max(1300), ...Meta }), body: RawBody },
      responses: { 200: json(ConfigFile.extend({ created: z.boolean() })), 201: json(ConfigFile.extend({ created: z.boolean() }), "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { path: full, ...meta } = c.req.valid("query");
      const where = splitFilePath(full);
      const { deps } = c.var;
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      const r = await files.putFileContent(deps.db, deps.blobs, c.var.actor, p.biz, p.app, { ...where, ...meta, bytes }, { now: deps.clock(), maxBytes: deps.limits.maxFileBytes });
      return r.created ? c.json({ ...r.file, created: true }, 201) : c.json({ ...r.file, created: false }, 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/apps/{app}/files/{fileId}", tags, request: { params: FileParams }, responses: { 200: json(ConfigFile), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await files.getFile(c.var.deps.db, p.biz, p.app, p.fileId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/bizs/{biz}/apps/{app}/files/{fileId}",
      tags,
      description: "Moves, renames, re-points (sha256) or changes the permission or memo of a draft file.",
      request: { params: FileParams, body: jsonBody(UpdateFile) },
      responses: { 200: json(ConfigFile), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { deps } = c.var;
      return c.json(await files.updateFile(deps.db, deps.blobs, c.var.actor, p.biz, p.app, p.fileId, c.req.valid("json"), deps.clock()), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/bizs/{biz}/apps/{app}/files/{fileId}", tags, request: { params: FileParams }, responses: { 200: json(z.object({ id: z.number().int() })), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await files.deleteFile(c.var.deps.db, c.var.actor, p.biz, p.app, p.fileId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/files/{fileId}/content",
      tags,
      description: "Downloads the draft file's bytes.",
      request: { params: FileParams },
      responses: { 200: { description: "The bytes", content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } } }, ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const { deps } = c.var;
      const r = await files.fileContent(deps.db, deps.blobs, p.biz, p.app, p.fileId);
      return new Response(r.body, {
        status: 200,
        headers: {
          "content-type": r.file.fileType === "text" ? "text/plain; charset=utf-8" : "application/octet-stream",
          "content-length": String(r.size),
          etag: `"${r.file.sha256}"`,
          "x-content-sha256": r.file.sha256,
          "content-disposition": `attachment; filename="${r.file.name.replace(/[^A-Za-z0-9._-]/g, "_")}"`,
        },
      });
    },
  );
