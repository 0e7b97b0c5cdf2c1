import { and, eq, inArray } from "drizzle-orm";
import { scripts, scriptVersions, serviceHooks } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { notFound, precondition } from "./errors";
import type { Db } from "./ports";
import { loadScript } from "./scripts";
import { loadService, requireFileService, type ServiceRow } from "./services";

/** `validate` runs on the agent over the staged new version, before any file is swapped in. */
export type HookKind = "pre" | "post" | "validate";
export const HOOK_KINDS: HookKind[] = ["pre", "post", "validate"];
export type HookBinding = { scriptId: number; versionId?: number | null };

type VersionRef = { id: number; name: string; state: string };
export type ResolvedHook = {
  kind: HookKind;
  scriptId: number;
  scriptName: string;
  type: "shell" | "python";
  followsOnline: boolean;
  /** The version the draft uses now: the pinned one, or the script's online version (null if it has none). */
  version: VersionRef | null;
  content: string | null;
};

/**
 * The draft's hooks with the version each one uses right now. Used by the GET view and by version
 * creation (which snapshots `content`).
 */
export async function resolveDraftHooks(db: Db, serviceId: number): Promise<Record<HookKind, ResolvedHook | null>> {
  const rows = await db
    .select({ kind: serviceHooks.kind, scriptId: serviceHooks.scriptId, pinned: serviceHooks.scriptVersionId, scriptName: scripts.name, type: scripts.type })
    .from(serviceHooks)
    .innerJoin(scripts, eq(scripts.id, serviceHooks.scriptId))
    .where(eq(serviceHooks.serviceId, serviceId));
  const out: Record<HookKind, ResolvedHook | null> = { pre: null, post: null, validate: null };
  if (!rows.length) return out;
  const versions = await db
    .select({ id: scriptVersions.id, name: scriptVersions.name, state: scriptVersions.state, scriptId: scriptVersions.scriptId, content: scriptVersions.content })
    .from(scriptVersions)
    .where(inArray(scriptVersions.scriptId, rows.map((r) => r.scriptId)));
  for (const r of rows) {
    const v = r.pinned !== null ? versions.find((x) => x.id === r.pinned) : versions.find((x) => x.scriptId === r.scriptId && x.state === "deployed");
    out[r.kind] = {
      kind: r.kind,
      scriptId: r.scriptId,
      scriptName: r.scriptName,
      type: r.type,
      followsOnline: r.pinned === null,
      version: v ? { id: v.id, name: v.name, state: v.state } : null,
      content: v?.content ?? null,
    };
  }
  return out;
}

function hooksView(h: Record<HookKind, ResolvedHook | null>) {
  const one = (x: ResolvedHook | null) => (x ? { scriptId: x.scriptId, scriptName: x.scriptName, type: x.type, followsOnline: x.followsOnline, version: x.version } : null);
  return { pre: one(h.pre), post: one(h.post), validate: one(h.validate) };
}

export async function getHooks(db: Db, bizId: number, app: string) {
  const s = await loadService(db, bizId, app);
  return hooksView(await resolveDraftHooks(db, s.id));
}

/** Checks one binding: the script exists in the biz, and the version to use exists and can be used. */
async function checkBinding(tx: Db, bizId: number, kind: HookKind, b: HookBinding) {
  const script = await loadScript(tx, bizId, b.scriptId);
  if (b.versionId != null) {
    const [v] = await tx
      .select()
      .from(scriptVersions)
      .where(and(eq(scriptVersions.id, b.versionId), eq(scriptVersions.scriptId, script.id)))
      .limit(1);
    if (!v) throw notFound(`${kind}.versionId: version ${b.versionId} of script '${script.name}'`);
    if (v.state === "not_deployed") throw precondition(`${kind}.versionId: version '${v.name}' of script '${script.name}' is not deployed yet; publish it first, or pin a deployed or shut-down version`, `${kind}.versionId`);
    return;
  }
  const [online] = await tx
    .select({ id: scriptVersions.id })
    .from(scriptVersions)
    .where(and(eq(scriptVersions.scriptId, script.id), eq(scriptVersions.state, "deployed")))
    .limit(1);
  if (!online) throw precondition(`${kind}.scriptId: script '${script.name}' has no online version; publish one or pass versionId`, `${kind}.scriptId`);
}

/**
 * Binds (or with null unbinds) the pre, post and/or validate script of a file service's draft. A kind left out
 * of the input keeps its binding. Without `versionId` the draft follows the script's online version.
 */
export async function setHooks(db: Db, actor: Actor, bizId: number, app: string, input: Partial<Record<HookKind, HookBinding | null>>, now: Date) {
  return db.transaction(async (tx) => {
    const s: ServiceRow = await loadService(tx, bizId, app, true);
    const binds = HOOK_KINDS.filter((k) => input[k]);
    if (binds.length) requireFileService(s, "scripts");
    const before = hooksView(await resolveDraftHooks(tx, s.id));
    for (const kind of HOOK_KINDS) {
      const b = input[kind];
      if (b === undefined) continue;
      if (b === null) {
        await tx.delete(serviceHooks).where(and(eq(serviceHooks.serviceId, s.id), eq(serviceHooks.kind, kind)));
        continue;
      }
      await checkBinding(tx, bizId, kind, b);
      await tx
        .insert(serviceHooks)
        .values({ serviceId: s.id, kind, bizId, scriptId: b.scriptId, scriptVersionId: b.versionId ?? null, createdAt: now })
        .onConflictDoUpdate({ target: [serviceHooks.serviceId, serviceHooks.kind], set: { scriptId: b.scriptId, scriptVersionId: b.versionId ?? null, createdAt: now } });
    }
    const after = hooksView(await resolveDraftHooks(tx, s.id));
    await recordAudit(tx, actor, { bizId, action: "service.hooks.update", resourceType: "service", resourceId: s.id, before, after });
    return after;
  });
}
