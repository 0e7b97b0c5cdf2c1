import { and, asc, count, desc, eq, ilike, inArray, or } from "drizzle-orm";
import { configFiles, publishes, releaseFiles, releaseHooks, releases } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { alreadyExists, isUniqueViolation, notFound, precondition } from "./errors";
import { HOOK_KINDS, resolveDraftHooks, type HookKind } from "./hooks";
import { diffKvs, draftKvs, revealedVersionKvs, snapshotKvs, versionKvs } from "./kv-versions";
import { createTwoFilesPatch } from "diff";
import { readBlob } from "./files";
import type { BlobStore, Db } from "./ports";
import { defaultVersionName } from "./scripts";
import { loadService, loadServiceById, type ServiceRow } from "./services";
import { runValidators } from "./validators";

type ReleaseRow = typeof releases.$inferSelect;
type ReleaseFileRow = typeof releaseFiles.$inferSelect;
type ReleaseHookRow = typeof releaseHooks.$inferSelect;

export function releaseView(r: ReleaseRow) {
  return { id: r.id, serviceId: r.serviceId, name: r.name, memo: r.memo, createdBy: r.createdBy, createdAt: r.createdAt.toISOString(), validation: r.validation ?? null };
}

export function releaseFileView(f: ReleaseFileRow) {
  return { path: f.path, name: f.name, sha256: f.sha256, size: f.size, fileType: f.fileType, user: f.user, group: f.group, privilege: f.privilege, memo: f.memo };
}

export function releaseHookView(h: ReleaseHookRow) {
  return { scriptId: h.scriptId, scriptVersionId: h.scriptVersionId, scriptName: h.scriptName, versionName: h.versionName, type: h.type, content: h.content };
}

/** A version of the service, or not_found (also for a version of another service). */
export async function loadRelease(db: Db, s: ServiceRow, releaseId: number): Promise<ReleaseRow> {
  const [row] = await db.select().from(releases).where(and(eq(releases.id, releaseId), eq(releases.serviceId, s.id))).limit(1);
  if (!row) throw notFound(`version ${releaseId} of service '${s.name}'`);
  return row;
}

/** The snapshot of a version: its files (sorted by path, name), its pre/post script content and its kv items (secrets masked). */
export async function releaseContents(db: Db, releaseId: number) {
  const [files, hookRows, kvs] = await Promise.all([
    db.select().from(releaseFiles).where(eq(releaseFiles.releaseId, releaseId)).orderBy(asc(releaseFiles.path), asc(releaseFiles.name)),
    db.select().from(releaseHooks).where(eq(releaseHooks.releaseId, releaseId)),
    versionKvs(db, releaseId),
  ]);
  const hooks: Record<HookKind, ReturnType<typeof releaseHookView> | null> = { pre: null, post: null, validate: null };
  for (const h of hookRows) hooks[h.kind] = releaseHookView(h);
  return { files: files.map(releaseFileView), hooks, kvs };
}

async function freeName(tx: Db, serviceId: number, now: Date) {
  const base = defaultVersionName(now);
  const taken = new Set(
    (await tx.select({ name: releases.name }).from(releases).where(and(eq(releases.serviceId, serviceId), or(eq(releases.name, base), ilike(releases.name, `${base}-%`))))).map((r) => r.name),
  );
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

/**
 * Creates a version: copies the draft's files and the content of each bound script's version (the
 * pinned one, else the online one) in one transaction. An empty draft (no file, no script) is
 * refused: a version that would delete every file on every client is almost always a mistake.
 * The service's validators run over the draft files under the same lock (ValidationError, a 422
 * listing every failing file, and nothing is created); what they checked is kept on the version.
 */
export async function createReleaseForService(db: Db, store: BlobStore, actor: Actor, bizId: number, serviceId: number, input: { name?: string; memo?: string }, now: Date) {
  try {
    return await db.transaction(async (tx) => {
      // Row lock on the service: versions and draft edits of one service happen one at a time.
      const s = await loadServiceById(tx, bizId, serviceId, true);
      const files = await tx.select().from(configFiles).where(eq(configFiles.serviceId, s.id)).orderBy(asc(configFiles.path), asc(configFiles.name));
      const hooks = await resolveDraftHooks(tx, s.id);
      for (const kind of HOOK_KINDS) {
        const h = hooks[kind];
        if (h && (!h.version || h.content === null)) throw precondition(`${kind} script '${h.scriptName}' has no online version to snapshot; publish a version of it or pin one`, kind);
      }
      const kvs = await draftKvs(tx, s.id);
      if (!files.length && !hooks.pre && !hooks.post && !kvs.length) throw precondition("draft is empty: add a config file, a key-value item or bind a script before creating a version", "draft");
      const validation = await runValidators(tx, store, bizId, s.id, files);
      const name = input.name ?? (await freeName(tx, s.id, now));
      const [r] = await tx.insert(releases).values({ bizId, serviceId: s.id, name, memo: input.memo ?? "", createdBy: actor.name, validation, createdAt: now }).returning();
      if (files.length) {
        await tx.insert(releaseFiles).values(
          files.map((f) => ({ releaseId: r.id, path: f.path, name: f.name, sha256: f.sha256, size: f.size, fileType: f.fileType, user: f.user, group: f.group, privilege: f.privilege, memo: f.memo })),
        );
      }
      const hookRows = HOOK_KINDS.flatMap((kind) => {
        const h = hooks[kind];
        return h && h.version ? [{ releaseId: r.id, kind, scriptId: h.scriptId, scriptVersionId: h.version.id, scriptName: h.scriptName, versionName: h.version.name, type: h.type, content: h.content! }] : [];
      });
      if (hookRows.length) await tx.insert(releaseHooks).values(hookRows);
      await snapshotKvs(tx, r.id, kvs);
      const summary = { ...releaseView(r), fileCount: files.length, kvCount: kvs.length, hooks: Object.fromEntries(hookRows.map((h) => [h.kind, { scriptId: h.scriptId, scriptVersionId: h.scriptVersionId, versionName: h.versionName }])) };
      await recordAudit(tx, actor, { bizId, action: "version.create", resourceType: "version", resourceId: r.id, after: summary });
      return { ...releaseView(r), ...(await releaseContents(tx, r.id)) };
    });
  } catch (e) {
    if (isUniqueViolation(e)) {
      throw input.name ? alreadyExists("name", `a version named '${input.name}' exists already in this service`) : alreadyExists("name", "another version took the default name at the same moment; try again");
    }
    throw e;
  }
}

export async function createRelease(db: Db, store: BlobStore, actor: Actor, bizId: number, app: string, input: { name?: string; memo?: string }, now: Date) {
  const s = await loadService(db, bizId, app);
  return createReleaseForService(db, store, actor, bizId, s.id, input, now);
}

export async function listReleases(db: Db, bizId: number, app: string, q: { search?: string; limit: number; offset: number }) {
  const s = await loadService(db, bizId, app);
  const where = and(eq(releases.serviceId, s.id), q.search ? ilike(releases.name, `%${q.search.replace(/[\\%_]/g, (m) => "\\" + m)}%`) : undefined);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(releases).where(where).orderBy(desc(releases.id)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(releases).where(where),
  ]);
  const ids = rows.map((r) => r.id);
  const [fileCounts, lastPublish] = ids.length
    ? await Promise.all([
        db.select({ id: releaseFiles.releaseId, n: count() }).from(releaseFiles).where(inArray(releaseFiles.releaseId, ids)).groupBy(releaseFiles.releaseId),
        db.select({ id: publishes.releaseId, n: count() }).from(publishes).where(inArray(publishes.releaseId, ids)).groupBy(publishes.releaseId),
      ])
    : [[], []];
  const files = new Map(fileCounts.map((f) => [f.id, Number(f.n)]));
  const pubs = new Map(lastPublish.map((f) => [f.id, Number(f.n)]));
  return { items: rows.map((r) => ({ ...releaseView(r), fileCount: files.get(r.id) ?? 0, publishCount: pubs.get(r.id) ?? 0 })), total, limit: q.limit, offset: q.offset };
}

/**
 * One version with its snapshot. With `reveal` its secret items show their values (for an export
 * that must carry them), and the reveal is audited (`kv.reveal`, naming the version and the keys);
 * without it they read as masked, like everywhere else.
 */
export async function getRelease(db: Db, bizId: number, app: string, releaseId: number, reveal?: { actor: Actor; secretKey: string }) {
  const s = await loadService(db, bizId, app);
  const r = await loadRelease(db, s, releaseId);
  const contents = await releaseContents(db, r.id);
  if (!reveal || !contents.kvs.some((k) => k.type === "secret")) return { ...releaseView(r), ...contents };
  const kvs = await revealedVersionKvs(db, reveal.secretKey, s.id, r.id);
  const keys = kvs.filter((k) => k.type === "secret").map((k) => k.key);
  await recordAudit(db, reveal.actor, { bizId, action: "kv.reveal", resourceType: "version", resourceId: r.id, after: { service: s.name, version: r.name, keys } });
  return { ...releaseView(r), ...contents, kvs };
}

type HookChangeStatus = "added" | "removed" | "changed" | "unchanged";
type FileSnap = ReturnType<typeof releaseFileView>;
type HookSnap = ReturnType<typeof releaseHookView>;

/** Text diffs are made only when both sides are text and at most this size. */
export const MAX_DIFF_BYTES = 1024 * 1024;

const fullPath = (f: { path: string; name: string }) => (f.path === "/" ? `/${f.name}` : `${f.path}/${f.name}`);
const perm = (f: FileSnap) => ({ user: f.user, group: f.group, privilege: f.privilege });

async function fileDiff(store: BlobStore, bizId: number, a: FileSnap, b: FileSnap, label: [string, string]): Promise<{ diff: string | null; diffSkipped: string | null }> {
  if (a.sha256 === b.sha256) return { diff: null, diffSkipped: null };
  if (a.fileType !== "text" || b.fileType !== "text") return { diff: null, diffSkipped: "binary" };
  if (a.size > MAX_DIFF_BYTES || b.size > MAX_DIFF_BYTES) return { diff: null, diffSkipped: `larger than ${MAX_DIFF_BYTES} bytes` };
  const dec = new TextDecoder();
  const [x, y] = await Promise.all([readBlob(store, bizId, a.sha256), readBlob(store, bizId, b.sha256)]);
  const p = fullPath(b);
  return { diff: createTwoFilesPatch(`${label[0]}${p}`, `${label[1]}${p}`, dec.decode(x), dec.decode(y), "", "", { context: 3 }), diffSkipped: null };
}

const hookRef = (h: HookSnap) => ({ scriptId: h.scriptId, scriptName: h.scriptName, versionName: h.versionName, type: h.type });

/**
 * What changes from one version to another: files added, removed and changed (content and/or
 * permission, with a unified diff for text files up to 1 MiB), and the pre/post script changes.
 */
export async function diffReleases(db: Db, store: BlobStore, bizId: number, app: string, fromId: number, toId: number) {
  const s = await loadService(db, bizId, app);
  const [from, to] = await Promise.all([loadRelease(db, s, fromId), loadRelease(db, s, toId)]);
  const [a, b] = await Promise.all([releaseContents(db, from.id), releaseContents(db, to.id)]);
  const label: [string, string] = [`${from.name}:`, `${to.name}:`];
  const before = new Map(a.files.map((f) => [fullPath(f), f]));
  const after = new Map(b.files.map((f) => [fullPath(f), f]));
  const added = b.files.filter((f) => !before.has(fullPath(f)));
  const removed = a.files.filter((f) => !after.has(fullPath(f)));
  const changed = [];
  let unchanged = 0;
  for (const f of b.files) {
    const old = before.get(fullPath(f));
    if (!old) continue;
    const contentChanged = old.sha256 !== f.sha256;
    const permissionChanged = JSON.stringify(perm(old)) !== JSON.stringify(perm(f));
    if (!contentChanged && !permissionChanged) {
      unchanged++;
      continue;
    }
    changed.push({ path: f.path, name: f.name, contentChanged, permissionChanged, from: old, to: f, ...(await fileDiff(store, bizId, old, f, label)) });
  }
  const hooks = Object.fromEntries(
    HOOK_KINDS.map((kind) => {
      const x = a.hooks[kind];
      const y = b.hooks[kind];
      if (!x && !y) return [kind, null];
      const status: HookChangeStatus = !x ? "added" : !y ? "removed" : x.content === y.content && x.type === y.type && x.scriptId === y.scriptId ? "unchanged" : "changed";
      const diff = status === "unchanged" ? null : createTwoFilesPatch(x ? `${from.name}:${kind}/${x.scriptName}@${x.versionName}` : "/dev/null", y ? `${to.name}:${kind}/${y.scriptName}@${y.versionName}` : "/dev/null", x?.content ?? "", y?.content ?? "", "", "", { context: 3 });
      return [kind, { status, from: x ? hookRef(x) : null, to: y ? hookRef(y) : null, diff }];
    }),
  );
  const kvs = await diffKvs(db, from.id, to.id);
  return {
    from: { id: from.id, name: from.name },
    to: { id: to.id, name: to.name },
    files: { added, removed, changed, unchanged },
    hooks: hooks as Record<HookKind, { status: HookChangeStatus; from: ReturnType<typeof hookRef> | null; to: ReturnType<typeof hookRef> | null; diff: string | null } | null>,
    kvs,
    identical: !added.length && !removed.length && !changed.length && !kvs.added.length && !kvs.removed.length && !kvs.changed.length && HOOK_KINDS.every((k) => !hooks[k] || hooks[k].status === "unchanged"),
  };
}
