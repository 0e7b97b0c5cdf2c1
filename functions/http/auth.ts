import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { mayReadService } from "../core/credentials";
import type { Actor } from "../core/audit";
import { verifyToken } from "../core/token-cache";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

/** The token of an `Authorization: Bearer <token>` header, or "" when there is none. */
export function bearer(header: string | undefined): string {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  return m ? m[1].trim() : "";
}

/**
 * The client's IP as this runtime sees it: the socket's peer on Node (a reverse proxy in front makes
 * every client one address: failures are then throttled together, known tokens still pass), the
 * `CF-Connecting-IP` that Cloudflare sets on Workers. Without either (in-process requests): the header
 * or "unknown".
 */
export function sourceAddress(c: Context): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  if (incoming) return incoming.socket?.remoteAddress ?? "unknown";
  return c.req.header("cf-connecting-ip")?.slice(0, 64) || "unknown";
}

/**
 * The actor of the request's bearer token. 401 when missing, unknown or revoked; 429 with
 * Retry-After when the source address failed too often and the token is not one this process knows.
 */
async function actorOf(c: Context<AppEnv>): Promise<Actor> {
  const token = bearer(c.req.header("authorization"));
  if (!token) throw new ApiError("unauthenticated", "missing bearer token (Authorization: Bearer <token>)");
  const check = await verifyToken(c.var.deps, token, sourceAddress(c));
  if (check.actor) return check.actor;
  if (check.retryAfterSeconds) {
    c.header("Retry-After", String(check.retryAfterSeconds));
    throw new ApiError("too_many_requests", `too many failed tokens from this address; retry after ${check.retryAfterSeconds} s`);
  }
  throw new ApiError("unauthenticated", "invalid or revoked token");
}

/** Any valid token (only an agent's on the fleet-facing listener); sets `actor`. */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  const actor = await actorOf(c);
  // An admin token leaked onto a host must not read every service's secrets or forge reports there.
  if (c.var.agentsOnly && actor.kind !== "agent")
    throw new ApiError("permission_denied", "this port takes agent tokens only: use an agent token, or the API port (EDGECONF_API_PORT) for an admin token");
  c.set("actor", actor);
  await next();
});

/** Admin tokens only. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  if (!c.get("actor")) c.set("actor", await actorOf(c));
  if (c.var.actor.kind !== "admin") throw new ApiError("permission_denied", "this route needs an admin token");
  await next();
});

/** Throws 403 unless the actor may read the feed of `serviceName` in `bizId`. */
export function assertFeedScope(actor: Actor, bizId: number, serviceName: string) {
  if (!mayReadService(actor, bizId, serviceName)) throw new ApiError("permission_denied", `token is not allowed to read biz ${bizId} service ${serviceName}`);
}
