import { and, count, desc, eq, isNull } from "drizzle-orm";
import { RE2JS } from "re2js";
import { credentials } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { constantTimeEqual, randomToken, sha256Hex } from "./crypto";
import { DomainError, invalid, notFound } from "./errors";
import type { Db } from "./ports";

export type CredentialKind = "admin" | "agent";
export type CredentialInput = { name: string; kind: CredentialKind; bizId?: number | null; apps?: string[] };

const TOKEN_PREFIX = { admin: "eca_", agent: "ecg_" } as const;

function publicView(row: typeof credentials.$inferSelect) {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    bizId: row.bizId,
    apps: row.apps,
    tokenPrefix: row.tokenPrefix,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
  };
}
export type CredentialView = ReturnType<typeof publicView>;

/** Creates a token; the plain token is returned once and only its SHA-256 is stored. */
export async function createCredential(
  db: Db,
  actor: Actor,
  input: CredentialInput,
  plainToken?: string,
): Promise<CredentialView & { token: string }> {
  if (input.kind === "agent" && input.bizId == null) throw invalid("bizId", "an agent token needs a biz");
  const token = plainToken ?? TOKEN_PREFIX[input.kind] + randomToken(24);
  const tokenHash = await sha256Hex(token);
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(credentials)
      .values({
        name: input.name,
        kind: input.kind,
        bizId: input.bizId ?? null,
        apps: input.kind === "agent" ? (input.apps?.length ? input.apps : ["*"]) : [],
        tokenHash,
        tokenPrefix: token.slice(0, 8),
        createdBy: actor.name,
      })
      .returning();
    await recordAudit(tx, actor, { bizId: row.bizId, action: "credential.create", resourceType: "credential", resourceId: row.id, after: publicView(row) });
    return { ...publicView(row), token };
  });
}

export async function listCredentials(db: Db) {
  const rows = await db.select().from(credentials).orderBy(desc(credentials.id));
  return rows.map(publicView);
}

export async function revokeCredential(db: Db, actor: Actor, id: number, now: Date) {
  return db.transaction(async (tx) => {
    // The active admin rows are locked first, so two revocations at once cannot both pass the last-admin check.
    const admins = await tx.select({ id: credentials.id }).from(credentials).where(and(eq(credentials.kind, "admin"), isNull(credentials.revokedAt))).for("update");
    if (admins.length === 1 && admins[0].id === id) {
      throw new DomainError("conflict", `credential ${id} is the last admin token: revoking it would leave no one able to manage the server; create another admin token first (POST /api/v1/credentials, or npm run create-admin-token)`);
    }
    const [row] = await tx
      .update(credentials)
      .set({ revokedAt: now })
      .where(and(eq(credentials.id, id), isNull(credentials.revokedAt)))
      .returning();
    if (!row) throw notFound(`credential ${id}`);
    await recordAudit(tx, actor, { bizId: row.bizId, action: "credential.revoke", resourceType: "credential", resourceId: id, after: publicView(row) });
    return publicView(row);
  });
}

/**
 * Resolves a bearer token to its actor, or null, with a database read. Requests go through
 * `verifyToken` (core/token-cache.ts), which caches verified tokens and throttles failures.
 */
export async function authenticate(db: Db, token: string): Promise<Actor | null> {
  if (!token || token.length > 200) return null;
  return authenticateHash(db, await sha256Hex(token));
}

/** The actor of the token whose SHA-256 is `hash`, or null. The lookup is by hash; the final compare is constant-time. */
export async function authenticateHash(db: Db, hash: string): Promise<Actor | null> {
  const [row] = await db.select().from(credentials).where(eq(credentials.tokenHash, hash)).limit(1);
  if (!row || row.revokedAt || !constantTimeEqual(row.tokenHash, hash)) return null;
  return { credentialId: row.id, name: row.name, kind: row.kind, bizId: row.bizId, apps: row.apps };
}

/**
 * First start: make the first admin token from `preset` (EDGECONF_ADMIN_TOKEN) or at random.
 * Returns the plain token when one was created, null when an admin token already exists.
 */
export async function ensureFirstAdmin(db: Db, actor: Actor, preset?: string): Promise<string | null> {
  const [{ n }] = await db.select({ n: count() }).from(credentials).where(and(eq(credentials.kind, "admin"), isNull(credentials.revokedAt)));
  if (n > 0) return null;
  // A preset that was revoked stays revoked: a restart with it must not bring it back (nor crash on its hash).
  if (preset) {
    const [revoked] = await db.select({ id: credentials.id }).from(credentials).where(eq(credentials.tokenHash, await sha256Hex(preset)));
    if (revoked) throw new DomainError("failed_precondition", "EDGECONF_ADMIN_TOKEN was revoked and no admin token is left: make a new one with npm run create-admin-token, then unset or change EDGECONF_ADMIN_TOKEN");
  }
  const created = await createCredential(db, actor, { name: "first-admin", kind: "admin" }, preset || undefined);
  return created.token;
}

/**
 * Service-name glob as in `service_*`: `*` any run, `?` one character, every other character itself.
 * Run by RE2 (re2js), whose automaton reads each character of the name a bounded number of times
 * whatever the glob: a glob turned into a JavaScript RegExp (or picomatch's, also a backtracking
 * RegExp) took seconds on a name crafted against a glob of many `*` (issue 10 item 5).
 */
export function globMatch(glob: string, name: string): boolean {
  return compileGlob(glob).matches(name);
}

const compiled = new Map<string, RE2JS>();
const MAX_COMPILED = 10_000;

/** The compiled glob (cached: agent tokens repeat the same few globs on every poll). */
export function compileGlob(glob: string): RE2JS {
  let re = compiled.get(glob);
  if (!re) {
    const source = [...glob].map((ch) => (ch === "*" ? ".*" : ch === "?" ? "." : RE2JS.quote(ch))).join("");
    re = RE2JS.compile(source, RE2JS.DOTALL);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(glob, re);
  }
  return re;
}

/** Whether an actor may read the feed of a service. */
export function mayReadService(actor: Actor, bizId: number, serviceName: string): boolean {
  if (actor.kind === "admin") return true;
  if (actor.kind !== "agent" || actor.bizId !== bizId) return false;
  // Every poll of a fleet asks the same few (globs, name) questions: answered from memory.
  const key = `${actor.apps.join("\u0000")}\u0001${serviceName}`;
  let may = readable.get(key);
  if (may === undefined) {
    may = actor.apps.some((g) => globMatch(g, serviceName));
    if (readable.size >= MAX_COMPILED) readable.clear();
    readable.set(key, may);
  }
  return may;
}
const readable = new Map<string, boolean>();
