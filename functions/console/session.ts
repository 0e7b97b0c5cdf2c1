/**
 * Console sessions. The cookie carries a random id; the `sessions` table keeps only its SHA-256,
 * the credential it signs in as, and a per-session CSRF token that every form posts back.
 */
import { and, eq, gt, isNull, lt } from "drizzle-orm";
import type { Context } from "hono";
import { getCookie, setCookie, deleteCookie } from "hono/cookie";
import { credentials, sessions } from "../../db/schema/index";
import type { Actor } from "../core/audit";
import { verifyToken } from "../core/token-cache";
import { sourceAddress } from "../http/auth";
import { constantTimeEqual, randomToken, sha256Hex } from "../core/crypto";
import type { Db } from "../core/ports";
import type { ConsoleEnv } from "./env";

export const SESSION_COOKIE = "edgeconf_session";
/** Before sign-in there is no session: the sign-in form is protected by a double-submit cookie. */
export const LOGIN_COOKIE = "edgeconf_login";
const SESSION_HOURS = 12;

export type ConsoleSession = { actor: Actor; csrf: string; idHash: string };

/** HTTPS directly, or behind a proxy that says so. */
export function isHttps(c: Context<ConsoleEnv>): boolean {
  return new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto")?.split(",")[0].trim() === "https";
}

function cookieOptions(c: Context<ConsoleEnv>, maxAge?: number) {
  return { httpOnly: true, secure: isHttps(c), sameSite: "Strict" as const, path: "/", ...(maxAge ? { maxAge } : {}) };
}

/**
 * Signs in with an admin token. Returns a words-only reason when refused, with `retryAfterSeconds`
 * when the address failed too often (the same per-address throttle as bearer tokens).
 */
export async function signIn(c: Context<ConsoleEnv>, token: string): Promise<{ ok: true } | { ok: false; reason: string; retryAfterSeconds?: number }> {
  const { db, clock } = c.var.deps;
  const check = await verifyToken(c.var.deps, token.trim(), sourceAddress(c));
  const actor = check.actor;
  if (!check.actor && check.retryAfterSeconds) return { ok: false, reason: `Too many failed sign-ins from this address; try again in ${check.retryAfterSeconds} s.`, retryAfterSeconds: check.retryAfterSeconds };
  if (!actor) return { ok: false, reason: "This token is unknown or has been revoked." };
  if (actor.kind !== "admin") return { ok: false, reason: "Only admin tokens can sign in to the console; agent tokens are for the feed." };
  const id = randomToken(32);
  const now = clock();
  await db.delete(sessions).where(lt(sessions.expiresAt, now));
  await db.insert(sessions).values({
    idHash: await sha256Hex(id),
    credentialId: actor.credentialId!,
    csrfToken: randomToken(24),
    createdAt: now,
    expiresAt: new Date(now.getTime() + SESSION_HOURS * 3600_000),
  });
  setCookie(c, SESSION_COOKIE, id, cookieOptions(c, SESSION_HOURS * 3600));
  deleteCookie(c, LOGIN_COOKIE, { path: "/" });
  return { ok: true };
}

/** The signed-in admin, or null (no cookie, expired, credential revoked or no longer admin). */
export async function currentSession(c: Context<ConsoleEnv>): Promise<ConsoleSession | null> {
  const id = getCookie(c, SESSION_COOKIE);
  if (!id || id.length > 100) return null;
  const { db, clock } = c.var.deps;
  const idHash = await sha256Hex(id);
  const [row] = await db
    .select({ csrf: sessions.csrfToken, cred: credentials })
    .from(sessions)
    .innerJoin(credentials, eq(credentials.id, sessions.credentialId))
    .where(and(eq(sessions.idHash, idHash), gt(sessions.expiresAt, clock()), isNull(credentials.revokedAt), eq(credentials.kind, "admin")))
    .limit(1);
  if (!row) return null;
  const actor: Actor = { credentialId: row.cred.id, name: row.cred.name, kind: "admin", bizId: row.cred.bizId, apps: row.cred.apps };
  return { actor, csrf: row.csrf, idHash };
}

export async function signOut(c: Context<ConsoleEnv>, db: Db, idHash: string | undefined) {
  if (idHash) await db.delete(sessions).where(eq(sessions.idHash, idHash));
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: isHttps(c) });
}

/** A fresh double-submit value for the sign-in form (set as a cookie, echoed in a hidden field). */
export function loginCsrf(c: Context<ConsoleEnv>): string {
  const existing = getCookie(c, LOGIN_COOKIE);
  if (existing && existing.length >= 16 && existing.length <= 64) return existing;
  const v = randomToken(18);
  setCookie(c, LOGIN_COOKIE, v, cookieOptions(c));
  return v;
}

export function checkLoginCsrf(c: Context<ConsoleEnv>, posted: string): boolean {
  const cookie = getCookie(c, LOGIN_COOKIE);
  return !!cookie && !!posted && constantTimeEqual(cookie, posted);
}

export function csrfMatches(expected: string, posted: unknown): boolean {
  return typeof posted === "string" && posted.length > 0 && constantTimeEqual(expected, posted);
}
