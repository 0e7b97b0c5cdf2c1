import { createRoute, z } from "@hono/zod-openapi";
import { Id, IdParam } from "../http/input";
import { requireBiz } from "../core/bizs";
import { createCredential, listCredentials, revokeCredential } from "../core/credentials";
import { announceRevocation } from "../core/token-cache";
import { sightingsFor } from "../core/sightings";
import { errorResponses, json, jsonBody, router } from "../http/openapi";

const Credential = z
  .object({
    id: z.number().int(),
    name: z.string(),
    kind: z.enum(["admin", "agent"]),
    bizId: z.number().int().nullable(),
    apps: z.array(z.string()),
    tokenPrefix: z.string(),
    createdBy: z.string(),
    createdAt: z.string(),
    lastUsedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi("Credential");

const CreateCredential = z.object({
  name: z.string().min(1).max(128),
  kind: z.enum(["admin", "agent"]),
  bizId: Id.optional(),
  apps: z
    .array(z.string().min(1).max(128).regex(/^[A-Za-z0-9_.*?-]+$/, "service-name glob: letters, digits, _ . - * ?"))
    .max(100)
    .optional(),
});

export const credentialRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/credentials",
      tags: ["credentials"],
      description: "Creates a token. The token is in this answer only; the server keeps its hash.",
      request: { body: jsonBody(CreateCredential) },
      responses: { 201: json(Credential.extend({ token: z.string() }), "Created"), ...errorResponses },
    }),
    async (c) => {
      const input = c.req.valid("json");
      if (input.bizId != null) await requireBiz(c.var.deps.db, input.bizId);
      return c.json(await createCredential(c.var.deps.db, c.var.actor, input), 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/credentials", tags: ["credentials"], responses: { 200: json(z.object({ items: z.array(Credential) })), ...errorResponses } }),
    async (c) => {
      // Token uses this process has noted but not yet written are part of `lastUsedAt`.
      await sightingsFor(c.var.deps).flush(c.var.deps.db);
      return c.json({ items: await listCredentials(c.var.deps.db) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/credentials/{id}",
      tags: ["credentials"],
      request: { params: z.object({ id: IdParam }) },
      responses: { 200: json(Credential, "Revoked"), ...errorResponses },
    }),
    async (c) => {
      const revoked = await revokeCredential(c.var.deps.db, c.var.actor, c.req.valid("param").id, c.var.deps.clock());
      await announceRevocation(c.var.deps, revoked);
      return c.json(revoked, 200);
    },
  );
