import type { CallResult } from "./app";

type Api = {
  call<T = any>(method: string, path: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string> }): Promise<CallResult<T>>;
};

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

/** A version from the draft (`POST .../versions`). */
export async function seedRelease(api: Api, biz: number, app: string, name: string): Promise<{ id: number; name: string }> {
  return must(await api.call("POST", `/api/v1/bizs/${biz}/apps/${app}/versions`, { name }), `create version ${name}`);
}

/** A label-selector group (`POST /bizs/{biz}/groups`). */
export async function seedGroup(api: Api, biz: number, name: string, selector: string, percent?: number): Promise<{ id: number }> {
  return must(await api.call("POST", `/api/v1/bizs/${biz}/groups`, { name, selector, ...(percent !== undefined ? { percent } : {}) }), `create group ${name}`);
}

/** Publishes a version to all (or to groups); the publish route wakes the feed. */
export async function seedPublish(api: Api, biz: number, app: string, versionId: number, groupIds?: number[]): Promise<{ id: number }> {
  return must(await api.call("POST", `/api/v1/bizs/${biz}/apps/${app}/publishes`, { versionId, ...(groupIds ? { groups: groupIds } : {}) }), `publish ${versionId}`);
}

/** An agent token for `apps` globs in `biz`. */
export async function agentToken(api: Api, biz: number, apps: string[], name = `agent-${apps.join("-")}`): Promise<{ id: number; token: string }> {
  return must(await api.call("POST", "/api/v1/credentials", { name, kind: "agent", bizId: biz, apps }), "create agent token");
}
