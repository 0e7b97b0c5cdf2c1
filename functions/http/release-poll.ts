/**
 * The release long-poll's input and early endings, shared by the route (routes/feed.ts) and the
 * Node fast path (node/feed-long-poll.ts), so both accept the same requests and answer alike.
 */
import { z } from "@hono/zod-openapi";
import { DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS, parseLabels } from "../core/feed";
import type { PollOutcome, PollRequest } from "../core/long-poll";
import { ApiError } from "./errors";
import { noUnsafeChars, UNSAFE_MESSAGE } from "../core/text";
import { IdParam, intParam, intParamOr, MAX_INT32 } from "./input";

export const AppParams = z.object({
  biz: IdParam,
  app: z.string().min(1).max(128),
});

/** A host's uid as agents send it: 1-256 characters, none of them control, bidi or invisible. */
const uidOk = (v: string) => v.length >= 1 && v.length <= 256 && noUnsafeChars(v);
export const Uid = z.string().refine(uidOk, `must be 1-256 characters and ${UNSAFE_MESSAGE}`);

export const ReleaseQuery = z.object({
  uid: Uid.optional(),
  labels: z.string().max(8192).optional(),
  current: intParam(0).optional(),
  seen: intParam(0).optional().openapi({ description: "a release the agent received but could not apply: held on like `current`, while `current` stays what it has applied" }),
  seenPublish: intParam(0).optional().openapi({ description: "with `seen`: the publish that brought it; a new publish of the same release (a retry) answers at once" }),
  currentPublish: intParam(0).optional().openapi({ description: "with `current`: the publish that brought it (`release.publishId`). An instance whose publish list is older than it reads the list again, and never answers from an older one: the host is not sent back to a release it has moved past" }),
  wait: intParamOr(0, MAX_WAIT_SECONDS, DEFAULT_WAIT_SECONDS),
});

/** The canonical spellings `intParam` takes (its fast twin, for the usual query). */
const PLAIN_INT = /^(?:0|[1-9][0-9]{0,9})$/;
type ReleaseQueryValue = z.infer<typeof ReleaseQuery>;

/**
 * A query as `ReleaseQuery` parses it, or undefined where it refuses it. The usual query (known
 * keys, plain decimal numbers in range, strings within their lengths) is read without zod, as a
 * herd of 10,000 polls makes that cost add up; anything else goes through `ReleaseQuery` itself.
 */
export function parseReleaseQuery(query: Record<string, string>): ReleaseQueryValue | undefined {
  const out: ReleaseQueryValue = { wait: DEFAULT_WAIT_SECONDS };
  for (const key in query) {
    const v = query[key];
    if (key === "uid" && uidOk(v)) out.uid = v;
    else if (key === "labels" && v.length <= 8192) out.labels = v;
    else if ((key === "current" || key === "seen" || key === "seenPublish" || key === "currentPublish" || key === "wait") && PLAIN_INT.test(v) && Number(v) <= (key === "wait" ? MAX_WAIT_SECONDS : MAX_INT32)) out[key] = Number(v);
    else {
      const parsed = ReleaseQuery.safeParse(query);
      return parsed.success ? parsed.data : undefined;
    }
  }
  return out;
}

export const modeOf = (h: string | undefined): "pull" | "watch" | undefined => (h === "pull" || h === "watch" ? h : undefined);

/**
 * A validated query and the request's headers (`header(name)`, lower-case names) as the poll core
 * takes it. Throws the 400 of `parseLabels` for bad labels.
 */
export function pollRequestOf(q: z.infer<typeof ReleaseQuery>, header: (name: string) => string | undefined): PollRequest {
  return {
    uid: q.uid,
    labels: parseLabels(q.labels),
    current: q.current,
    seen: q.seen,
    seenPublish: q.seenPublish,
    currentPublish: q.currentPublish,
    wait: q.wait,
    ifNoneMatch: header("if-none-match"),
    agentVersion: header("x-edgeconf-agent-version")?.slice(0, 64),
    mode: modeOf(header("x-edgeconf-mode")),
  };
}

type EndedEarly = Extract<PollOutcome, { kind: "revoked" | "replaced" | "gone" }>;

/** Whether a long-poll ended early (the HTTP layers answer it with `endedEarly`'s error). */
export const isEndedEarly = (o: PollOutcome): o is EndedEarly => o.kind === "revoked" || o.kind === "replaced" || o.kind === "gone";

/**
 * The error of a held poll that ended early: its token was revoked (401), a newer poll of its uid
 * took its place (409), or the service was deleted (404, as a new poll of it would get).
 */
export function endedEarly({ kind }: EndedEarly): ApiError {
  if (kind === "revoked") return new ApiError("unauthenticated", "token revoked while the poll was held");
  if (kind === "gone") return new ApiError("not_found", "the service was deleted while the poll was held");
  return new ApiError("conflict", "a newer poll with the same uid replaced this one (one held poll per uid and service)");
}
