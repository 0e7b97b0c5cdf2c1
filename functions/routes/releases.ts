import { createRoute, z } from "@hono/zod-openapi";
import { IdParam } from "../http/input";
import { KV_TYPES } from "../core/kv-values";
import * as releases from "../core/releases";
import { errorResponses, json, jsonBody, Paging, router, SafeName } from "../http/openapi";
import { AppParam } from "./services";

const Ref = z.object({ id: z.number().int(), name: z.string() });
const FileSnap = z
  .object({ path: z.string(), name: z.string(), sha256: z.string(), size: z.number().int(), fileType: z.enum(["text", "binary"]), user: z.string(), group: z.string(), privilege: z.string(), memo: z.string() })
  .openapi("VersionFile");
const HookSnap = z
  .object({ scriptId: z.number().int().nullable(), scriptVersionId: z.number().int().nullable(), scriptName: z.string(), versionName: z.string(), type: z.enum(["shell", "python"]), content: z.string() })
  .nullable();
const KvSnap = z.object({ key: z.string(), type: z.enum(KV_TYPES), value: z.string().openapi({ description: "Secrets read as ****** unless revealed." }), memo: z.string() }).openapi("VersionKv");
const Validation = z
  .object({ validators: z.array(z.object({ id: z.number().int(), pathGlob: z.string(), kind: z.string(), files: z.number().int() })) })
  .nullable()
  .openapi({ description: "The server validators the version passed at creation, with the number of files each checked; null when the service had none." });
const VersionBase = z.object({ id: z.number().int(), serviceId: z.number().int(), name: z.string(), memo: z.string(), createdBy: z.string(), createdAt: z.string(), validation: Validation });
const Refused = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      requestId: z.string().optional(),
      failures: z
        .array(z.object({ file: z.string(), line: z.number().int().nullable(), column: z.number().int().nullable(), reason: z.string(), validatorId: z.number().int(), kind: z.string(), pathGlob: z.string() }))
        .optional()
        .openapi({ description: "Every problem of every file the validators refused (present when validation refused the version)." }),
    }),
  })
  .openapi("VersionRefused");
const Version = VersionBase.extend({ files: z.array(FileSnap), hooks: z.object({ pre: HookSnap, post: HookSnap, validate: HookSnap }), kvs: z.array(KvSnap) }).openapi("Version");
const HookRef = z.object({ scriptId: z.number().int().nullable(), scriptName: z.string(), versionName: z.string(), type: z.enum(["shell", "python"]) }).nullable();
const HookChange = z.object({ status: z.enum(["added", "removed", "changed", "unchanged"]), from: HookRef, to: HookRef, diff: z.string().nullable() }).nullable();
const Diff = z
  .object({
    from: Ref,
    to: Ref,
    identical: z.boolean(),
    files: z.object({
      added: z.array(FileSnap),
      removed: z.array(FileSnap),
      changed: z.array(
        z.object({ path: z.string(), name: z.string(), contentChanged: z.boolean(), permissionChanged: z.boolean(), from: FileSnap, to: FileSnap, diff: z.string().nullable(), diffSkipped: z.string().nullable() }),
      ),
      unchanged: z.number().int(),
    }),
    hooks: z.object({ pre: HookChange, post: HookChange, validate: HookChange }),
    kvs: z.object({ added: z.array(KvSnap), removed: z.array(KvSnap), changed: z.array(z.object({ key: z.string(), from: KvSnap, to: KvSnap, valueChanged: z.boolean() })), unchanged: z.number().int() }),
  })
  .openapi("VersionDiff");
const VersionParams = AppParam.extend({ versionId: IdParam });
const tags = ["versions"];

export const releaseRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/apps/{app}/versions",
      tags,
      description:
        "Snapshots the draft: its files and the content of each bound script's version (pinned, else online). The name is unique in the service (default v%Y%m%d%H%M%S, UTC). An empty draft (no file, no script) is refused with 422. The service's validators run first: any failing file answers 422 with `error.failures` (file, line, reason, for every failure) and nothing is created.",
      request: { params: AppParam, body: jsonBody(z.object({ name: SafeName.optional(), memo: z.string().max(4096).optional() }).strict()) },
      responses: { 201: json(Version, "Created"), ...errorResponses, 422: json(Refused, "Refused: empty draft, a script without a version, or files that failed validation") },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await releases.createRelease(c.var.deps.db, c.var.deps.blobs, c.var.actor, p.biz, p.app, c.req.valid("json"), c.var.deps.clock()), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/versions",
      tags,
      request: { params: AppParam, query: z.object({ search: z.string().max(128).optional(), ...Paging }) },
      responses: {
        200: json(z.object({ items: z.array(VersionBase.extend({ fileCount: z.number().int(), publishCount: z.number().int() })), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })),
        ...errorResponses,
      },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await releases.listReleases(c.var.deps.db, p.biz, p.app, c.req.valid("query")), 200);
    },
  )
  // Registered before /versions/{versionId} so that "diff" is not read as an id.
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/versions/diff",
      tags,
      description: "Files added/removed/changed (unified diff for text files up to 1 MiB) and pre/post script changes between two versions of the service.",
      request: { params: AppParam, query: z.object({ from: IdParam, to: IdParam }) },
      responses: { 200: json(Diff), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const q = c.req.valid("query");
      return c.json(await releases.diffReleases(c.var.deps.db, c.var.deps.blobs, p.biz, p.app, q.from, q.to), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/versions/{versionId}",
      tags,
      description: "The version's snapshot. `reveal=true` shows its secret items' values (for an export that must carry them); the reveal is audited (kv.reveal).",
      request: { params: VersionParams, query: z.object({ reveal: z.enum(["true", "false"]).optional() }) },
      responses: { 200: json(Version), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const reveal = c.req.valid("query").reveal === "true" ? { actor: c.var.actor, secretKey: c.var.deps.secretKey } : undefined;
      return c.json(await releases.getRelease(c.var.deps.db, p.biz, p.app, p.versionId, reveal), 200);
    },
  );
