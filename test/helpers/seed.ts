import { eq } from "drizzle-orm";
import { configFiles, groups as groupsTable, publishes, releaseFiles, releases, services } from "../../db/schema/index";
import type { CallResult } from "./app";

type Api = {
  call<T = any>(method: string, path: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string> }): Promise<CallResult<T>>;
  deps?: { db: any; notifier: { notify(serviceId: number): Promise<void> } };
};

const noRoute = (r: CallResult) => r.status === 404 && /^no route/.test(r.body?.error?.message ?? "");

function must<T = any>(r: CallResult<T>, what: string, ...ok: number[]): T {
  if (!(ok.length ? ok : [200, 201]).includes(r.status)) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A file service with its draft files, through the API as a user would. */
export async function seedService(api: Api, biz: number, app: string, files: { path: string; content: string | Uint8Array }[] = []) {
  const svc = must(await api.call("POST", `/api/v1/bizs/${biz}/apps`, { name: app, configType: "file" }), `create service ${app}`);
  for (const f of files) must(await api.call("PUT", `/api/v1/bizs/${biz}/apps/${app}/files/content?path=${encodeURIComponent(f.path)}`, f.content), `upload ${f.path}`);
  return svc as { id: number; name: string };
}

/**
 * A version from the draft: `POST .../versions` when that route exists; before it lands, the same
 * snapshot written with drizzle (files only) so the feed can be tested on its own.
 */
export async function seedRelease(api: Api, biz: number, app: string, name: string): Promise<{ id: number; name: string }> {
  const r = await api.call("POST", `/api/v1/bizs/${biz}/apps/${app}/versions`, { name });
  if (!noRoute(r)) return must(r, `create version ${name}`);
  const db = api.deps!.db;
  return db.transaction(async (tx: any) => {
    const [svc] = await tx.select().from(services).where(eq(services.name, app));
    const [rel] = await tx.insert(releases).values({ bizId: biz, serviceId: svc.id, name }).returning();
    const files = await tx.select().from(configFiles).where(eq(configFiles.serviceId, svc.id));
    if (files.length)
      await tx.insert(releaseFiles).values(
        files.map((f: typeof configFiles.$inferSelect) => ({ releaseId: rel.id, path: f.path, name: f.name, sha256: f.sha256, size: f.size, fileType: f.fileType, user: f.user, group: f.group, privilege: f.privilege })),
      );
    return { id: rel.id, name: rel.name };
  });
}

/** A label-selector group (`POST /bizs/{biz}/groups`, or drizzle before that route lands). */
export async function seedGroup(api: Api, biz: number, name: string, selector: string, percent?: number): Promise<{ id: number }> {
  const r = await api.call("POST", `/api/v1/bizs/${biz}/groups`, { name, selector, ...(percent !== undefined ? { percent } : {}) });
  if (!noRoute(r)) return must(r, `create group ${name}`);
  const [g] = await api.deps!.db.insert(groupsTable).values({ bizId: biz, name, selector, percent: percent ?? null }).returning();
  return { id: g.id };
}

/** Publishes a version to all (or to groups) and wakes the feed, as the publish route does. */
export async function seedPublish(api: Api, biz: number, app: string, versionId: number, groupIds?: number[]): Promise<{ id: number }> {
  const r = await api.call("POST", `/api/v1/bizs/${biz}/apps/${app}/publishes`, { versionId, ...(groupIds ? { groups: groupIds } : {}) });
  if (!noRoute(r)) return must(r, `publish ${versionId}`);
  const db = api.deps!.db;
  const [svc] = await db.select().from(services).where(eq(services.name, app));
  const snap = groupIds?.length ? await db.select().from(groupsTable) : [];
  const groups = snap.filter((g: any) => groupIds!.includes(g.id)).map((g: any) => ({ id: g.id, name: g.name, selector: g.selector, percent: g.percent }));
  const [p] = await db.insert(publishes).values({ bizId: biz, serviceId: svc.id, releaseId: versionId, groups }).returning();
  await api.deps!.notifier.notify(svc.id);
  return { id: p.id };
}

/** An agent token for `apps` globs in `biz`. */
export async function agentToken(api: Api, biz: number, apps: string[], name = `agent-${apps.join("-")}`): Promise<{ id: number; token: string }> {
  return must(await api.call("POST", "/api/v1/credentials", { name, kind: "agent", bizId: biz, apps }), "create agent token");
}
