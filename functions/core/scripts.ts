import { and, asc, count, desc, eq, ilike, inArray, or, sql, type SQL } from "drizzle-orm";
import { releaseHooks, releases, scripts, scriptVersions, serviceHooks, services } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { alreadyExists, DomainError, invalid, isUniqueViolation, notFound, precondition } from "./errors";
import { rowsOf } from "../../db/types";
import type { Db } from "./ports";

export type ScriptType = "shell" | "python";
export type ScriptVersionState = "not_deployed" | "deployed" | "shutdown";

type ScriptRow = typeof scripts.$inferSelect;
type VersionRow = typeof scriptVersions.$inferSelect;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function scriptView(s: ScriptRow, extra: { onlineVersion: { id: number; name: string } | null; usageCount: number }) {
  return {
    id: s.id,
    bizId: s.bizId,
    name: s.name,
    type: s.type,
    tags: s.tags,
    memo: s.memo,
    createdBy: s.createdBy,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
    ...extra,
  };
}

export function versionView(v: VersionRow, withContent = true) {
  return {
    id: v.id,
    scriptId: v.scriptId,
    name: v.name,
    memo: v.memo,
    state: v.state,
    ...(withContent ? { content: v.content } : {}),
    contentSize: new TextEncoder().encode(v.content).length,
    createdBy: v.createdBy,
    createdAt: v.createdAt.toISOString(),
    updatedAt: v.updatedAt.toISOString(),
    publishedAt: iso(v.publishedAt),
  };
}

/** What saving changed in a script's content; `crlf`: Windows line endings became LF. */
export type Normalization = "crlf";

/**
 * Content rules: not empty, no NUL byte, at most `maxBytes`. Returns the content to store: CRLF
 * line endings become LF, since bash and python3 read the CR as part of each line (a script saved
 * on Windows wrote a file named "tag\r" on the host and reported SUCCESS); `normalized` says so.
 */
export function checkContent(content: string, maxBytes: number, field = "content"): { content: string; normalized: Normalization[] } {
  if (!content.trim()) throw invalid(field, "script content must not be empty");
  if (content.includes("\u0000")) throw invalid(field, "script content must not contain a NUL byte");
  const size = new TextEncoder().encode(content).length;
  if (size > maxBytes) throw new DomainError("payload_too_large", `${field}: script is ${size} bytes, the limit is ${maxBytes}`, field);
  return content.includes("\r\n") ? { content: content.replace(/\r\n/g, "\n"), normalized: ["crlf"] } : { content, normalized: [] };
}

/** The seed's default version name: v%Y%m%d%H%M%S in UTC. */
export function defaultVersionName(now: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `v${now.getUTCFullYear()}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}`;
}

/** A default name that is free in the script: the timestamp, then `-2`, `-3`… when taken in the same second. */
async function freeDefaultName(tx: Db, scriptId: number, now: Date): Promise<string> {
  const base = defaultVersionName(now);
  const taken = await tx
    .select({ name: scriptVersions.name })
    .from(scriptVersions)
    .where(and(eq(scriptVersions.scriptId, scriptId), or(eq(scriptVersions.name, base), ilike(scriptVersions.name, `${base}-%`))));
  const names = new Set(taken.map((t) => t.name));
  if (!names.has(base)) return base;
  for (let i = 2; ; i++) if (!names.has(`${base}-${i}`)) return `${base}-${i}`;
}

async function usageCounts(db: Db, scriptIds: number[]): Promise<Map<number, number>> {
  if (!scriptIds.length) return new Map();
  const rows = rowsOf<{ script_id: number; n: number }>(await db.execute(sql`
    select script_id, count(distinct service_id)::int as n from (
      select ${serviceHooks.scriptId} as script_id, ${serviceHooks.serviceId} as service_id from ${serviceHooks}
        where ${inArray(serviceHooks.scriptId, scriptIds)}
      union all
      select ${releaseHooks.scriptId}, ${releases.serviceId} from ${releaseHooks}
        join ${releases} on ${releases.id} = ${releaseHooks.releaseId}
        where ${inArray(releaseHooks.scriptId, scriptIds)}
    ) u group by script_id`));
  return new Map(rows.map((r) => [Number(r.script_id), Number(r.n)]));
}

async function onlineVersions(db: Db, scriptIds: number[]) {
  if (!scriptIds.length) return new Map<number, { id: number; name: string }>();
  const rows = await db
    .select({ id: scriptVersions.id, name: scriptVersions.name, scriptId: scriptVersions.scriptId })
    .from(scriptVersions)
    .where(and(inArray(scriptVersions.scriptId, scriptIds), eq(scriptVersions.state, "deployed")));
  return new Map(rows.map((r) => [r.scriptId, { id: r.id, name: r.name }]));
}

async function decorate(db: Db, rows: ScriptRow[]) {
  const ids = rows.map((r) => r.id);
  const [online, usage] = await Promise.all([onlineVersions(db, ids), usageCounts(db, ids)]);
  return rows.map((r) => scriptView(r, { onlineVersion: online.get(r.id) ?? null, usageCount: usage.get(r.id) ?? 0 }));
}

export async function loadScript(db: Db, bizId: number, scriptId: number, forUpdate = false): Promise<ScriptRow> {
  const q = db.select().from(scripts).where(and(eq(scripts.id, scriptId), eq(scripts.bizId, bizId))).limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  if (!row) throw notFound(`script ${scriptId} in biz ${bizId}`);
  return row;
}

async function loadVersion(db: Db, script: ScriptRow, versionId: number, forUpdate = false): Promise<VersionRow> {
  const q = db
    .select()
    .from(scriptVersions)
    .where(and(eq(scriptVersions.id, versionId), eq(scriptVersions.scriptId, script.id)))
    .limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  if (!row) throw notFound(`version ${versionId} of script ${script.id}`);
  return row;
}

export type CreateScriptInput = {
  name: string;
  type: ScriptType;
  tags?: string[];
  memo?: string;
  content: string;
  versionName?: string;
  versionMemo?: string;
};

/** Creates a script with its first version, online at once so that it can be bound. */
export async function createScript(db: Db, actor: Actor, bizId: number, input: CreateScriptInput, opts: { now: Date; maxBytes: number }) {
  const { content, normalized } = checkContent(input.content, opts.maxBytes);
  try {
    return await db.transaction(async (tx) => {
      const [s] = await tx
        .insert(scripts)
        .values({ bizId, name: input.name, type: input.type, tags: normalizeTags(input.tags), memo: input.memo ?? "", createdBy: actor.name, createdAt: opts.now, updatedAt: opts.now })
        .returning();
      const [v] = await tx
        .insert(scriptVersions)
        .values({
          bizId,
          scriptId: s.id,
          name: input.versionName ?? defaultVersionName(opts.now),
          content,
          memo: input.versionMemo ?? "",
          state: "deployed",
          publishedAt: opts.now,
          createdBy: actor.name,
          createdAt: opts.now,
          updatedAt: opts.now,
        })
        .returning();
      await recordAudit(tx, actor, { bizId, action: "script.create", resourceType: "script", resourceId: s.id, after: { ...scriptView(s, { onlineVersion: { id: v.id, name: v.name }, usageCount: 0 }), versionId: v.id } });
      return { ...scriptView(s, { onlineVersion: { id: v.id, name: v.name }, usageCount: 0 }), version: versionView(v), normalized };
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw alreadyExists("name", `a script named '${input.name}' exists already in biz ${bizId}`);
    throw e;
  }
}

function normalizeTags(tags: string[] | undefined): string[] {
  return [...new Set((tags ?? []).map((t) => t.trim()).filter(Boolean))];
}

export async function listScripts(db: Db, bizId: number, q: { tag?: string; search?: string; type?: ScriptType; limit: number; offset: number }) {
  const where: SQL[] = [eq(scripts.bizId, bizId)];
  if (q.tag) where.push(sql`${q.tag} = any(${scripts.tags})`);
  if (q.search) where.push(or(ilike(scripts.name, `%${escapeLike(q.search)}%`), ilike(scripts.memo, `%${escapeLike(q.search)}%`))!);
  if (q.type) where.push(eq(scripts.type, q.type));
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(scripts).where(and(...where)).orderBy(desc(scripts.updatedAt), desc(scripts.id)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(scripts).where(and(...where)),
  ]);
  return { items: await decorate(db, rows), total, limit: q.limit, offset: q.offset };
}

export function escapeLike(s: string) {
  return s.replace(/[\\%_]/g, (m) => "\\" + m);
}

/** The seed's "category" view: every tag with the number of scripts carrying it. */
export async function listTags(db: Db, bizId: number) {
  const rows = rowsOf<{ tag: string; n: number }>(await db.execute(
    sql`select t as tag, count(*)::int as n from ${scripts}, unnest(${scripts.tags}) as t where ${scripts.bizId} = ${bizId} group by t order by t`,
  ));
  const [{ untagged }] = await db.select({ untagged: count() }).from(scripts).where(and(eq(scripts.bizId, bizId), sql`cardinality(${scripts.tags}) = 0`));
  return { items: rows.map((r) => ({ tag: r.tag, count: Number(r.n) })), untagged };
}

export async function getScript(db: Db, bizId: number, scriptId: number) {
  const [view] = await decorate(db, [await loadScript(db, bizId, scriptId)]);
  return view;
}

export async function updateScript(db: Db, actor: Actor, bizId: number, scriptId: number, input: { tags?: string[]; memo?: string }, now: Date) {
  return db.transaction(async (tx) => {
    const before = await loadScript(tx, bizId, scriptId, true);
    const [after] = await tx
      .update(scripts)
      .set({ ...(input.tags ? { tags: normalizeTags(input.tags) } : {}), ...(input.memo !== undefined ? { memo: input.memo } : {}), updatedAt: now })
      .where(eq(scripts.id, scriptId))
      .returning();
    await recordAudit(tx, actor, { bizId, action: "script.update", resourceType: "script", resourceId: scriptId, before: { tags: before.tags, memo: before.memo }, after: { tags: after.tags, memo: after.memo } });
    const [view] = await decorate(tx, [after]);
    return view;
  });
}

/** Refused while a service draft binds the script, unless forced (which unbinds it from those drafts). */
export async function deleteScript(db: Db, actor: Actor, bizId: number, scriptId: number, force: boolean) {
  return db.transaction(async (tx) => {
    const s = await loadScript(tx, bizId, scriptId, true);
    const bound = await tx
      .select({ serviceId: serviceHooks.serviceId, kind: serviceHooks.kind, serviceName: services.name })
      .from(serviceHooks)
      .innerJoin(services, eq(services.id, serviceHooks.serviceId))
      .where(eq(serviceHooks.scriptId, scriptId));
    if (bound.length && !force) {
      const names = bound.map((b) => `${b.serviceName} (${b.kind})`).join(", ");
      throw precondition(`script '${s.name}' is bound to the draft of ${names}; unbind it first or delete with force=true`, "scriptId");
    }
    if (bound.length) await tx.delete(serviceHooks).where(eq(serviceHooks.scriptId, scriptId));
    await tx.delete(scripts).where(eq(scripts.id, scriptId));
    await recordAudit(tx, actor, { bizId, action: force ? "script.delete.force" : "script.delete", resourceType: "script", resourceId: scriptId, before: { name: s.name, type: s.type, unbound: bound } });
    return { id: scriptId, unbound: bound };
  });
}

export async function listVersions(db: Db, bizId: number, scriptId: number, q: { state?: ScriptVersionState; search?: string; limit: number; offset: number }) {
  await loadScript(db, bizId, scriptId);
  const where: SQL[] = [eq(scriptVersions.scriptId, scriptId)];
  if (q.state) where.push(eq(scriptVersions.state, q.state));
  if (q.search) where.push(or(ilike(scriptVersions.name, `%${escapeLike(q.search)}%`), ilike(scriptVersions.memo, `%${escapeLike(q.search)}%`))!);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(scriptVersions).where(and(...where)).orderBy(desc(scriptVersions.id)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(scriptVersions).where(and(...where)),
  ]);
  return { items: rows.map((v) => versionView(v, false)), total, limit: q.limit, offset: q.offset };
}

export async function getVersion(db: Db, bizId: number, scriptId: number, versionId: number) {
  return versionView(await loadVersion(db, await loadScript(db, bizId, scriptId), versionId));
}

/** A new not_deployed version; there can be only one at a time. */
export async function createVersion(
  db: Db,
  actor: Actor,
  bizId: number,
  scriptId: number,
  input: { name?: string; content: string; memo?: string },
  opts: { now: Date; maxBytes: number },
) {
  const { content, normalized } = checkContent(input.content, opts.maxBytes);
  try {
    return await db.transaction(async (tx) => {
      const s = await loadScript(tx, bizId, scriptId, true);
      const [pending] = await tx
        .select({ id: scriptVersions.id, name: scriptVersions.name })
        .from(scriptVersions)
        .where(and(eq(scriptVersions.scriptId, s.id), eq(scriptVersions.state, "not_deployed")))
        .limit(1);
      if (pending) throw precondition(`script '${s.name}' already has a not-deployed version '${pending.name}' (id ${pending.id}); publish, edit or delete it first`, "state");
      const name = input.name ?? (await freeDefaultName(tx, s.id, opts.now));
      const [v] = await tx
        .insert(scriptVersions)
        .values({ bizId, scriptId: s.id, name, content, memo: input.memo ?? "", state: "not_deployed", createdBy: actor.name, createdAt: opts.now, updatedAt: opts.now })
        .returning();
      await tx.update(scripts).set({ updatedAt: opts.now }).where(eq(scripts.id, s.id));
      await recordAudit(tx, actor, { bizId, action: "script_version.create", resourceType: "script_version", resourceId: v.id, after: versionView(v, false) });
      return { ...versionView(v), normalized };
    });
  } catch (e) {
    if (isUniqueViolation(e)) {
      if (input.name) throw alreadyExists("name", `script ${scriptId} already has a version named '${input.name}'`);
      throw precondition(`script ${scriptId} already has a not-deployed version`, "state");
    }
    throw e;
  }
}

function assertEditable(v: VersionRow, verb: string) {
  if (v.state !== "not_deployed") {
    const why = v.state === "deployed" ? "it is online, and an online version is immutable" : "it has been shut down; only a not-deployed version can change";
    throw precondition(`cannot ${verb} version '${v.name}': ${why}`, "state");
  }
}

export async function updateVersion(
  db: Db,
  actor: Actor,
  bizId: number,
  scriptId: number,
  versionId: number,
  input: { name?: string; content?: string; memo?: string },
  opts: { now: Date; maxBytes: number },
) {
  const checked = input.content !== undefined ? checkContent(input.content, opts.maxBytes) : undefined;
  const normalized = checked?.normalized ?? [];
  try {
    return await db.transaction(async (tx) => {
      const s = await loadScript(tx, bizId, scriptId, true);
      const before = await loadVersion(tx, s, versionId, true);
      assertEditable(before, "edit");
      const [after] = await tx
        .update(scriptVersions)
        .set({ ...input, ...(checked ? { content: checked.content } : {}), updatedAt: opts.now })
        .where(eq(scriptVersions.id, versionId))
        .returning();
      await recordAudit(tx, actor, { bizId, action: "script_version.update", resourceType: "script_version", resourceId: versionId, before: versionView(before), after: versionView(after) });
      return { ...versionView(after), normalized };
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw alreadyExists("name", `script ${scriptId} already has a version named '${input.name}'`);
    throw e;
  }
}

export async function deleteVersion(db: Db, actor: Actor, bizId: number, scriptId: number, versionId: number) {
  return db.transaction(async (tx) => {
    const s = await loadScript(tx, bizId, scriptId, true);
    const v = await loadVersion(tx, s, versionId, true);
    assertEditable(v, "delete");
    await tx.delete(scriptVersions).where(eq(scriptVersions.id, versionId));
    await recordAudit(tx, actor, { bizId, action: "script_version.delete", resourceType: "script_version", resourceId: versionId, before: versionView(v, false) });
    return { id: versionId };
  });
}

/**
 * Makes a version the online one. The old online version goes to `shutdown`; publishing a
 * `shutdown` version is a rollback. The script row lock serialises concurrent publishes and the
 * partial unique index backs it, so exactly one version is online afterwards.
 */
export async function publishVersion(db: Db, actor: Actor, bizId: number, scriptId: number, versionId: number, now: Date) {
  try {
    return await db.transaction(async (tx) => {
      const s = await loadScript(tx, bizId, scriptId, true);
      const v = await loadVersion(tx, s, versionId, true);
      if (v.state === "deployed") return { ...versionView(v), previousOnline: null as null | { id: number; name: string } };
      const [prev] = await tx
        .update(scriptVersions)
        .set({ state: "shutdown", updatedAt: now })
        .where(and(eq(scriptVersions.scriptId, s.id), eq(scriptVersions.state, "deployed")))
        .returning();
      const [after] = await tx
        .update(scriptVersions)
        .set({ state: "deployed", publishedAt: now, updatedAt: now })
        .where(eq(scriptVersions.id, v.id))
        .returning();
      await tx.update(scripts).set({ updatedAt: now }).where(eq(scripts.id, s.id));
      await recordAudit(tx, actor, {
        bizId,
        action: v.state === "shutdown" ? "script_version.rollback" : "script_version.publish",
        resourceType: "script_version",
        resourceId: v.id,
        before: { online: prev ? { id: prev.id, name: prev.name } : null, state: v.state },
        after: { online: { id: after.id, name: after.name } },
      });
      return { ...versionView(after), previousOnline: prev ? { id: prev.id, name: prev.name } : null };
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new DomainError("conflict", `another publish of script ${scriptId} happened at the same time; try again`);
    throw e;
  }
}

/** Which service drafts and versions use a script (or one version of it). */
export async function references(db: Db, bizId: number, scriptId: number, versionId?: number) {
  const s = await loadScript(db, bizId, scriptId);
  let online: { id: number; name: string } | undefined;
  if (versionId !== undefined) {
    const v = await loadVersion(db, s, versionId);
    online = v.state === "deployed" ? { id: v.id, name: v.name } : undefined;
  }
  const draftRows = await db
    .select({
      serviceId: services.id,
      serviceName: services.name,
      kind: serviceHooks.kind,
      pinnedVersionId: serviceHooks.scriptVersionId,
    })
    .from(serviceHooks)
    .innerJoin(services, eq(services.id, serviceHooks.serviceId))
    .where(eq(serviceHooks.scriptId, s.id))
    .orderBy(asc(services.name));
  // A draft that follows the online version references the online version.
  const drafts = draftRows
    .filter((d) => versionId === undefined || d.pinnedVersionId === versionId || (d.pinnedVersionId === null && online))
    .map((d) => ({ serviceId: d.serviceId, serviceName: d.serviceName, kind: d.kind, followsOnline: d.pinnedVersionId === null, pinnedVersionId: d.pinnedVersionId }));
  const versionRows = await db
    .select({
      serviceId: services.id,
      serviceName: services.name,
      releaseId: releases.id,
      releaseName: releases.name,
      kind: releaseHooks.kind,
      scriptVersionId: releaseHooks.scriptVersionId,
      scriptVersionName: releaseHooks.versionName,
    })
    .from(releaseHooks)
    .innerJoin(releases, eq(releases.id, releaseHooks.releaseId))
    .innerJoin(services, eq(services.id, releases.serviceId))
    .where(versionId === undefined ? eq(releaseHooks.scriptId, s.id) : and(eq(releaseHooks.scriptId, s.id), eq(releaseHooks.scriptVersionId, versionId)))
    .orderBy(asc(services.name), desc(releases.id));
  return { scriptId: s.id, versionId: versionId ?? null, drafts, versions: versionRows };
}

/** A unified diff between two versions of one script. */
export async function diffVersions(db: Db, bizId: number, scriptId: number, fromId: number, toId: number) {
  const { createTwoFilesPatch } = await import("diff");
  const s = await loadScript(db, bizId, scriptId);
  const [from, to] = await Promise.all([loadVersion(db, s, fromId), loadVersion(db, s, toId)]);
  const patch = createTwoFilesPatch(`${s.name}@${from.name}`, `${s.name}@${to.name}`, from.content, to.content, "", "", { context: 3 });
  return { from: { id: from.id, name: from.name }, to: { id: to.id, name: to.name }, identical: from.content === to.content, diff: patch };
}
