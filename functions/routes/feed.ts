import { createRoute, z } from "@hono/zod-openapi";
import { agentText, Count, Id, IdParam, MAX_INT32 } from "../http/input";
import { EVENT_MESSAGE_CHARS, EVENT_OUTPUT_TAIL_CHARS, EVENT_TIMING_NAME_CHARS, EVENT_TIMINGS, notePoll, recordEvent, recordHeartbeat } from "../core/clients";
import { DEFAULT_WAIT_SECONDS, feedCacheFor, MAX_WAIT_SECONDS, parseLabels, readableBlob, releaseIdOfEtag, targetAnswer } from "../core/feed";
import { mayReadService } from "../core/credentials";
import type { Actor } from "../core/audit";
import type { AppDeps, Db, ReleaseNotifier, WaitHolder, WaitOutcome } from "../core/ports";
import { tokenCacheFor } from "../core/token-cache";
import { loadService } from "../core/services";
import { assertFeedScope, requireToken } from "../http/auth";
import { ApiError } from "../http/errors";
import { errorResponses, json, jsonBody, router } from "../http/openapi";

const AppParams = z.object({
  biz: IdParam,
  app: z.string().min(1).max(128),
});
const BlobParams = z.object({
  biz: IdParam,
  sha256: z.string().regex(/^[A-Fa-f0-9]{64}$/, "must be 64 hex characters"),
});
const ReleaseQuery = z.object({
  uid: z.string().max(256).optional(),
  labels: z.string().max(8192).optional(),
  current: z.coerce.number().int().min(0).max(MAX_INT32).optional(),
  seen: z.coerce.number().int().min(0).max(MAX_INT32).optional().openapi({ description: "a release the agent received but could not apply: held on like `current`, while `current` stays what it has applied" }),
  seenPublish: z.coerce.number().int().min(0).max(MAX_INT32).optional().openapi({ description: "with `seen`: the publish that brought it; a new publish of the same release (a retry) answers at once" }),
  wait: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(DEFAULT_WAIT_SECONDS),
});
const Uid = z.string().min(1).max(256);
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
const modeOf = (h: string | undefined): "pull" | "watch" | undefined => (h === "pull" || h === "watch" ? h : undefined);

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

/**
 * Waits for a notify of the service until the deadline or the client goes away; `cancel` drops the
 * waiter. `holder` lets a revocation of its token end the wait, and a newer poll of its uid replace it.
 */
function holdUntil(notifier: ReleaseNotifier, serviceId: number, deadline: number, request: AbortSignal, holder: WaitHolder) {
  const remaining = deadline - Date.now();
  if (remaining <= 0 || request.aborted) return { woke: Promise.resolve<WaitOutcome>(false), cancel: () => {} };
  const armed = new AbortController();
  const cancel = () => armed.abort();
  request.addEventListener("abort", cancel, { once: true });
  const woke = notifier.wait(serviceId, remaining, armed.signal, holder).finally(() => request.removeEventListener("abort", cancel));
  return { woke, cancel };
}

/**
 * A held poll that did not end with a publish or its timeout: its token was revoked (this process
 * or isolate forgets the token too), or a newer poll took its place.
 */
function endedEarly(outcome: WaitOutcome, deps: AppDeps, credentialId: number | null): never | void {
  if (outcome === "revoked") {
    if (credentialId !== null) tokenCacheFor(deps).forgetCredential(credentialId);
    throw new ApiError("unauthenticated", "token revoked while the poll was held");
  }
  if (outcome === "replaced") throw new ApiError("conflict", "a newer poll with the same uid replaced this one (one held poll per uid and service)");
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
      const cache = feedCacheFor(deps);
      const service = await cache.serviceOf(deps.db, biz, app);
      const client = { uid: q.uid ?? "", labels: parseLabels(q.labels) };
      const applied = q.current !== undefined ? q.current || null : c.req.header("if-none-match") ? releaseIdOfEtag(c.req.header("if-none-match")) : null;
      // The release to hold on: the one applied, or one the agent already has and failed to apply.
      const known = q.seen !== undefined ? q.seen || null : applied;
      if (q.uid) {
        const info = { ...client, agentVersion: c.req.header("x-edgeconf-agent-version")?.slice(0, 64), mode: modeOf(c.req.header("x-edgeconf-mode")) };
        notePoll(deps, service, { ...info, currentReleaseId: applied ?? null }, deps.clock());
      }
      const headers = { "X-Edgeconf-Wait": String(q.wait), "Cache-Control": "no-store" };
      const deadline = Date.now() + q.wait * 1000;
      const holder: WaitHolder = { credentialId: c.var.actor.credentialId, uid: q.uid || undefined };
      for (let round = 0; ; round++) {
        const seen = cache.notifyCount(service.id);
        // Without a notify count or a wait that honours `since`, arm the wait before reading so a
        // publish in between is not missed.
        const early = seen === undefined && !deps.notifier.wakesSince ? holdUntil(deps.notifier, service.id, deadline, c.req.raw.signal, holder) : undefined;
        // wait=0 answers from what it reads: never from a copy (no wait would catch a publish it missed).
        let answer = await targetAnswer(deps, service, client, q.wait, { fresh: round > 0 || q.wait === 0 });
        // Publishing the failed release again is a retry: it answers like a new release.
        const changed = (a: typeof answer) => a.releaseId !== known || (q.seen !== undefined && q.seenPublish !== undefined && a.publishId !== null && a.publishId !== q.seenPublish);
        // A per-isolate copy of the publish list is good for holding on, never for answering.
        if (changed(answer) && answer.cached) answer = await targetAnswer(deps, service, client, q.wait, { fresh: true });
        if (changed(answer)) {
          early?.cancel();
          if (early) endedEarly(await early.woke, deps, c.var.actor.credentialId);
          return c.body(answer.body, 200, { ...headers, ETag: answer.etag, "Content-Type": "application/json" });
        }
        // A notify while reading: read again. Else the check and the wait are in one tick: nothing slips between.
        if (seen !== undefined && cache.notifyCount(service.id) !== seen) continue;
        // Nothing touches the database while the poll is held: give its connections back (Workers).
        deps.idle?.();
        const woke = await (early ?? holdUntil(deps.notifier, service.id, deadline, c.req.raw.signal, { ...holder, since: answer.asOf })).woke;
        endedEarly(woke, deps, c.var.actor.credentialId);
        if (!woke) return c.body(null, 304, { ...headers, ETag: answer.etag });
      }
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
