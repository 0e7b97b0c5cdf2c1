import { createMiddleware } from "hono/factory";
import { authenticate, mayReadService } from "../core/credentials";
import type { Actor } from "../core/audit";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

function bearer(header: string | undefined): string {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  return m ? m[1].trim() : "";
}

/** Any valid token; sets `actor`. */
export const requireToken = createMiddleware<AppEnv>(async (c, next) => {
  const token = bearer(c.req.header("authorization"));
  if (!token) throw new ApiError("unauthenticated", "missing bearer token (Authorization: Bearer <token>)");
  const actor = await authenticate(c.var.deps.db, token);
  if (!actor) throw new ApiError("unauthenticated", "invalid or revoked token");
  c.set("actor", actor);
  await next();
});

/** Admin tokens only. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  if (!c.get("actor")) {
    const token = bearer(c.req.header("authorization"));
    if (!token) throw new ApiError("unauthenticated", "missing bearer token (Authorization: Bearer <token>)");
    const actor = await authenticate(c.var.deps.db, token);
    if (!actor) throw new ApiError("unauthenticated", "invalid or revoked token");
    c.set("actor", actor);
  }
  if (c.var.actor.kind !== "admin") throw new ApiError("permission_denied", "this route needs an admin token");
  await next();
});

/** Throws 403 unless the actor may read the feed of `serviceName` in `bizId`. */
export function assertFeedScope(actor: Actor, bizId: number, serviceName: string) {
  if (!mayReadService(actor, bizId, serviceName)) throw new ApiError("permission_denied", `token is not allowed to read biz ${bizId} service ${serviceName}`);
}
