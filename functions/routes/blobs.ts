import { createRoute, z } from "@hono/zod-openapi";
import { putBlob } from "../core/files";
import { BizParam, errorResponses, json, router } from "../http/openapi";

export const RawBody = {
  required: true,
  content: { "application/octet-stream": { schema: z.string().openapi({ type: "string", format: "binary" }) } },
};

export const blobRoutes = router().openapi(
  createRoute({
    method: "put",
    path: "/bizs/{biz}/blobs",
    tags: ["files"],
    description: "Stores the raw body once by SHA-256 (any bytes, up to the file limit; 413 beyond it, nothing stored).",
    request: { params: BizParam, body: RawBody },
    responses: { 200: json(z.object({ sha256: z.string(), size: z.number().int(), fileType: z.enum(["text", "binary"]) })), ...errorResponses },
  }),
  async (c) => {
    const { deps } = c.var;
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    return c.json(await putBlob(deps.db, deps.blobs, c.req.valid("param").biz, bytes, deps.limits.maxFileBytes), 200);
  },
);
