/**
 * The release long-poll on Node without a Request or Response object per poll (issue 11): a fleet
 * of 10,000 agents holds 10,000 polls, and Hono's per-request path (a `Request` built for its abort
 * signal, a `Response` per wake, header objects) made each cost ~3× a bare `node:http` poll in
 * memory and time. This listener answers `GET /feed/v1/bizs/{biz}/apps/{app}/release` straight on
 * the `ServerResponse`, running the same core (core/long-poll.ts), input schemas and error mapping
 * (http/release-poll.ts, http/errors.ts) as the route.
 *
 * It only takes requests whose answer it would give exactly as the app does: a plain path, a query
 * the route's schema accepts, a bearer token with a live copy in this process's token cache
 * (core/token-cache.ts) that may read the service, a service that exists. A token whose copy expired
 * goes to the app, which re-verifies it without throttling (the process knows its hash). Anything else (no or unknown token, 400s, 403s,
 * 404s, other routes) goes to the app untouched, before anything is written; checks that could
 * refuse it are all made before the poll is noted.
 */
import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { mayReadService } from "../core/credentials";
import { feedCacheFor } from "../core/feed-cache";
import { longPoll, type PollOutcome } from "../core/long-poll";
import type { AppDeps } from "../core/ports";
import { knownToken } from "../core/token-cache";
import { bearer } from "../http/auth";
import { errorAnswer } from "../http/errors";
import { MAX_INT32, unstorableText } from "../http/input";
import { endedEarly, isEndedEarly, parseReleaseQuery, pollRequestOf } from "../http/release-poll";

export type NodeListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Plain paths only: anything encoded or with dot segments is left to the app's URL handling. */
const RELEASE_PATH = /^\/feed\/v1\/bizs\/([1-9][0-9]*)\/apps\/([A-Za-z0-9_-][A-Za-z0-9_.-]*)\/release$/;
/** Hosts the app's adapter takes as they are (@hono/node-server `reValidHost`, plus loopback IPv6). */
const PLAIN_HOST = /^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/**
 * A header as `Headers.get` gives it to the app: every occurrence joined with ", " (Node's
 * `req.headers` keeps only the first of some, such as Authorization).
 */
function headerOf(req: IncomingMessage, name: string): string | undefined {
  const raw = req.rawHeaders;
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === name.length && raw[i].toLowerCase() === name) value = value === undefined ? raw[i + 1] : `${value}, ${raw[i + 1]}`;
  }
  return value;
}

/** A query key or value as the app decodes it: `+` is a space; throws on a broken `%` escape. */
const decoded = (s: string) => (/[%+]/.test(s) ? decodeURIComponent(s.replace(/\+/g, " ")) : s);

/** `a=1&b=2` as the app's query validator sees it; undefined when a key repeats or a value does not decode. */
function queryOf(search: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (!search) return out;
  for (const part of search.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    let key: string;
    let value: string;
    try {
      key = decoded(eq < 0 ? part : part.slice(0, eq));
      value = eq < 0 ? "" : decoded(part.slice(eq + 1));
    } catch {
      return undefined;
    }
    if (Object.hasOwn(out, key)) return undefined;
    out[key] = value;
  }
  return out;
}

/**
 * The client going away (the response closed before it was sent) ends the hold, as the app's
 * request signal does; lighter than an AbortController with its listeners, 10,000 times over.
 */
class Departure {
  aborted = false;
  private listeners: (() => void)[] = [];
  onAbort(fn: () => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }
  leave() {
    this.aborted = true;
    for (const fn of this.listeners.splice(0)) fn();
  }
}

/** Answers shared by every waiter of one release: the body's length in bytes is counted once. */
let lastBody = "";
let lastLength = 0;
function byteLengthOf(body: string): number {
  if (body !== lastBody) [lastBody, lastLength] = [body, Buffer.byteLength(body)];
  return lastLength;
}

function answer(res: ServerResponse, requestId: string, wait: number, outcome: Extract<PollOutcome, { kind: "answer" | "unchanged" }>) {
  if (outcome.kind === "unchanged") return res.writeHead(304, { "x-request-id": requestId, "x-edgeconf-wait": String(wait), "cache-control": "no-store", etag: outcome.etag }).end();
  // A string body is joined to the head in one chunk (a Buffer would be a chunk of its own).
  const body = outcome.answer.body;
  res.writeHead(200, { "x-request-id": requestId, "x-edgeconf-wait": String(wait), "cache-control": "no-store", etag: outcome.answer.etag, "content-type": "application/json", "content-length": byteLengthOf(body) }).end(body);
}

function fail(res: ServerResponse, requestId: string, path: string, err: unknown) {
  const a = errorAnswer(err, { requestId, method: "GET", path });
  const bytes = Buffer.from(JSON.stringify(a.body));
  res.writeHead(a.status, { "x-request-id": requestId, "content-type": "application/json", "content-length": bytes.length }).end(bytes);
}

/**
 * A `node:http` listener that serves held release polls itself and hands every other request to
 * `app` (the Hono app's listener). `deps`: the same deps the app was built with. `agentsOnly`: the
 * fleet-facing listener, whose app refuses other tokens; their polls go to it.
 */
export function withFeedLongPoll(deps: AppDeps, app: NodeListener, { agentsOnly = false } = {}): NodeListener {
  const cache = feedCacheFor(deps);

  async function serve(req: IncomingMessage, res: ServerResponse, path: string, m: RegExpExecArray, search: string) {
    const host = headerOf(req, "host");
    const token = bearer(headerOf(req, "authorization"));
    const query = queryOf(search);
    const parsed = query && parseReleaseQuery(query);
    // The path's biz and app as the route's AppParams take them (plain digits and names here).
    const biz = Number(m[1]);
    const appName = m[2];
    if (!host || !PLAIN_HOST.test(host) || !token || token.length > 200 || !parsed || unstorableText(parsed) !== null) return app(req, res);
    if (!(biz >= 1 && biz <= MAX_INT32) || appName.length > 128) return app(req, res);
    const actor = knownToken(deps, createHash("sha256").update(token).digest("hex"));
    if (!actor || !mayReadService(actor, biz, appName) || (agentsOnly && actor.kind !== "agent")) return app(req, res);
    let service;
    let poll;
    try {
      service = await cache.serviceOf(deps.db, biz, appName);
      poll = pollRequestOf(parsed, (name) => headerOf(req, name));
    } catch {
      return app(req, res); // the app answers the same 404 or 400, or the error as it renders errors
    }
    const requestId = headerOf(req, "x-request-id")?.slice(0, 64) || randomUUID();
    const gone = new Departure();
    res.once("close", () => res.writableFinished || gone.leave());
    try {
      const outcome = await longPoll(deps, service, poll, actor.credentialId, gone);
      if (isEndedEarly(outcome)) throw endedEarly(outcome);
      answer(res, requestId, poll.wait, outcome);
    } catch (err) {
      fail(res, requestId, path, err);
    }
  }

  return (req, res) => {
    const url = req.url ?? "";
    if (req.method !== "GET" || url.charCodeAt(0) !== 47 /* "/" */ || url.includes("#")) return app(req, res);
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const m = RELEASE_PATH.exec(path);
    if (!m) return app(req, res);
    void serve(req, res, path, m, q < 0 ? "" : url.slice(q + 1)).catch((err) => (res.headersSent ? res.destroy() : fail(res, randomUUID(), path, err)));
  };
}
