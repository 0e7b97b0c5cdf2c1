import { createRoute, z } from "@hono/zod-openapi";
import { agentText, Count, Id, IdParam } from "../http/input";
import { EVENT_MESSAGE_CHARS, EVENT_OUTPUT_TAIL_CHARS, EVENT_TIMING_NAME_CHARS, EVENT_TIMINGS, recordEvent, recordHeartbeat } from "../core/clients";
import { parseLabels, readableBlob } from "../core/feed";
import { feedCacheFor } from "../core/feed-cache";
import { mayReadService } from "../core/credentials";
import type { Actor } from "../core/audit";
import type { Db } from "../core/ports";
import { longPoll } from "../core/long-poll";
import { AppParams, endedEarly, isEndedEarly, pollRequestOf, ReleaseQuery, Uid } from "../http/release-poll";
import { loadService } from "../core/services";
import { assertFeedScope, requireToken } from "../http/auth";
import { ApiError } from "../http/errors";
import { errorResponses, json, jsonBody, router } from "../http/openapi";

const BlobParams = z.object({
  biz: IdParam,
  sha256: z.string().regex(/^[A-Fa-f0-9]{64}$/, "must be 64 hex characters"),
});
const Labels = z.record(z.string(), z.string());
const Mode = z.enum(["pull", "watch"]);
// Agent-reported text is cut and cleaned, not refused: an event is never lost for what a script printed.
const HookRun = z.object({ exitCode: z.number().int().nullable(), durationMs: z.number().int().min(0), outputTail: agentText(EVENT_OUTPUT_TAIL_CHARS, "end") }).nullable();
const EventBody = z.object({
  uid: Uid,
  releaseId: Id.nullable(),
  status: z.enum(["SUCCESS", "FAILED", "PROCESSING"]),
  message: agentText(EVENT_MESSAGE_CHARS, "start").optional(),
  preHook: HookRun.optional(),
  postHook: HookRun.optional(),
  filesCount: Count.optional(),
  bytesDownloaded: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  timings: z
    .record(z.string().max(EVENT_TIMING_NAME_CHARS), z.number().min(0))
    .refine((t) => Object.keys(t).length <= EVENT_TIMINGS, `at most ${EVENT_TIMINGS} timings`)
    .optional(),
  agentVersion: z.string().max(64).optional(),
  mode: Mode.optional(),
  labels: Labels.optional(),
});
const HeartbeatBody = z.object({
  uid: Uid,
  currentReleaseId: Id.nullable().optional(),
  labels: Labels.optional(),
  agentVersion: z.string().max(64).optional(),
  mode: Mode.optional(),
});

const tags = ["feed"];

/** Checks label maps sent as JSON bodies with the same rules as the query form. */
const checkedLabels = (labels: Record<string, string> | undefined) => parseLabels(JSON.stringify(labels ?? {}));

/** `bytes=N-`, `bytes=N-M`, `bytes=-K` → inclusive range; null when absent or several; "unsatisfiable". */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | "unsatisfiable" {
  const m = /^bytes=(\d*)-(\d*)$/.exec((header ?? "").trim());
  if (!m || (!m[1] && !m[2])) return null;
  let start: number;
  let end: number;
  if (!m[1]) {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (m[2] && Number(m[2]) < start) return null;
  }
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/** The service behind a feed path, once the token is known to be allowed to read it (403 before any lookup). */
async function scopedService(actor: Actor, db: Db, p: { biz: number; app: string }) {
  assertFeedScope(actor, p.biz, p.app);
  return loadService(db, p.biz, p.app);
}

export const feedRoutes = router();
feedRoutes.use("/feed/v1/*", requireToken);

feedRoutes
  .openapi(
    createRoute({
      method: "get",
      path: "/feed/v1/bizs/{biz}/apps/{app}/release",
      tags,
      description: "Long-poll for the client's target release (see docs/feed-protocol.md).",
      request: { params: AppParams, query: ReleaseQuery },
      responses: { 200: { description: "Manifest" }, 304: { description: "Target unchanged after `wait` seconds" }, ...errorResponses },
    }),
    async (c) => {
      const { biz, app } = c.req.valid("param");
      const q = c.req.valid("query");
      const deps = c.var.deps;
      assertFeedScope(c.var.actor, biz, app);
      const service = await feedCacheFor(deps).serviceOf(deps.db, biz, app);
      const poll = pollRequestOf(q, (name) => c.req.header(name));
      const outcome = await longPoll(deps, service, poll, c.var.actor.credentialId, c.req.raw.signal);
      const headers = { "X-Edgeconf-Wait": String(q.wait), "Cache-Control": "no-store" };
      if (isEndedEarly(outcome)) throw endedEarly(outcome);
      if (outcome.kind === "unchanged") return c.body(null, 304, { ...headers, ETag: outcome.etag });
      return c.body(outcome.answer.body, 200, { ...headers, ETag: outcome.answer.etag, "Content-Type": "application/json" });
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/feed/v1/bizs/{biz}/blobs/{sha256}",
      tags,
      description: "Streams a file's content by SHA-256; `Range: bytes=N-M` answers 206.",
      request: { params: BlobParams },
      responses: { 200: { description: "The bytes" }, 206: { description: "Part of the bytes" }, 416: { description: "Range not satisfiable" }, ...errorResponses },
    }),
    async (c) => {
      const { biz } = c.req.valid("param");
      const sha256 = c.req.valid("param").sha256.toLowerCase();
      const actor = c.var.actor;
      const size = await readableBlob(c.var.deps.db, biz, sha256, (name) => mayReadService(actor, biz, name));
      if (size === null) throw new ApiError("not_found", `blob ${sha256} not found in a release this token may read`);
      const range = parseRange(c.req.header("range"), size);
      const base = { ETag: `"${sha256}"`, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", "Cache-Control": "private, max-age=31536000, immutable" };
      if (range === "unsatisfiable") return c.body(null, 416, { ...base, "Content-Range": `bytes */${size}` });
      const obj = await c.var.deps.blobs.get(`${biz}/${sha256}`, range ?? undefined);
      if (!obj) throw new ApiError("not_found", `blob ${sha256} is missing from the blob store`);
      if (!range) return c.body(obj.body, 200, { ...base, "Content-Length": String(obj.size) });
      return c.body(obj.body, 206, { ...base, "Content-Length": String(range.end - range.start + 1), "Content-Range": `bytes ${range.start}-${range.end}/${obj.size}` });
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/feed/v1/bizs/{biz}/apps/{app}/events",
      tags,
      request: { params: AppParams, body: jsonBody(EventBody) },
      responses: { 202: json(z.object({ id: z.number().int() }), "Recorded"), ...errorResponses },
    }),
    async (c) => {
      const deps = c.var.deps;
      const service = await scopedService(c.var.actor, deps.db, c.req.valid("param"));
      const body = c.req.valid("json");
      return c.json(await recordEvent(deps, service, { ...body, labels: checkedLabels(body.labels) }, deps.clock()), 202);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/feed/v1/bizs/{biz}/apps/{app}/heartbeat",
      tags,
      request: { params: AppParams, body: jsonBody(HeartbeatBody) },
      responses: { 204: { description: "Recorded" }, ...errorResponses },
    }),
    async (c) => {
      const deps = c.var.deps;
      const service = await scopedService(c.var.actor, deps.db, c.req.valid("param"));
      const body = c.req.valid("json");
      await recordHeartbeat(deps, service, { ...body, labels: checkedLabels(body.labels), currentReleaseId: body.currentReleaseId ?? null }, deps.clock());
      return c.body(null, 204);
    },
  );
