/**
 * The server's resources as the CLI reads them, and the look-ups commands share: a version by
 * name, groups by name or id. Shapes follow the OpenAPI document (`GET /api/v1/openapi.json`).
 */
import type { Api } from "./api.js";
import { UsageError } from "./context.js";

export type DraftFile = { id: number; path: string; name: string; sha256: string; size: number; user: string; group: string; privilege: string; memo: string };
export type VersionFile = { path: string; name: string; sha256: string; size: number; fileType: "text" | "binary"; user: string; group: string; privilege: string; memo: string };
export type HookSnapshot = { scriptId: number | null; scriptVersionId: number | null; scriptName: string; versionName: string; type: "shell" | "python"; content: string } | null;
export type VersionKv = { key: string; type: string; value: string; memo: string };
export type Version = {
  id: number;
  name: string;
  memo: string;
  createdBy: string;
  createdAt: string;
  files: VersionFile[];
  hooks: { pre: HookSnapshot; post: HookSnapshot; validate: HookSnapshot };
  /** Secrets read "******" unless the version was read with `reveal` (audited by the server). */
  kvs: VersionKv[];
};
export type Service = { id: number; name: string; configType: "file" | "kv" };
export type Publish = { id: number; version: { id: number; name: string }; toAll: boolean; groups: { id: number; name: string }[]; createdAt: string };
export type Ref = { id: number; name: string | null } | null;
export type HookRun = { exitCode: number | null; durationMs: number; outputTail: string } | null;
export type ClientEvent = { release: Ref; status: string; message: string; preHook: HookRun; postHook: HookRun; createdAt: string };
export type Client = {
  uid: string;
  labels: Record<string, string>;
  currentRelease: Ref;
  targetRelease: Ref;
  online: boolean;
  lastHeartbeatAt: string | null;
  lastStatus: string | null;
  lastEvent: ClientEvent | null;
};

/** `/etc/nginx` + `nginx.conf` → `/etc/nginx/nginx.conf`. */
export function fullPath(f: { path: string; name: string }): string {
  return `${f.path === "/" ? "" : f.path}/${f.name}`;
}

/** The service's version named `name` (exact match), or with id `#123`; UsageError when none. `reveal`: secrets in clear (audited). */
export async function findVersion(api: Api, app: string, name: string, opts: { reveal?: boolean } = {}): Promise<Version> {
  const byId = /^#(\d+)$/.exec(name);
  let id = byId ? Number(byId[1]) : undefined;
  if (id === undefined) {
    const found = (await api.all<{ id: number; name: string }>(api.appPath(app, `/versions?search=${encodeURIComponent(name)}`))).find((v) => v.name === name);
    if (!found) throw new UsageError(`service '${app}' has no version named '${name}'`);
    id = found.id;
  }
  return api.json<Version>("GET", api.appPath(app, `/versions/${id}${opts.reveal ? "?reveal=true" : ""}`));
}

/** Group ids for `a,b` (names, or numeric ids); UsageError naming an unknown one. Empty → []. */
export async function resolveGroups(api: Api, list: string | undefined): Promise<number[]> {
  const wanted = (list ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (!wanted.length) return [];
  const groups = await api.all<{ id: number; name: string }>(api.bizPath("/groups"));
  return wanted.map((w) => {
    const g = groups.find((x) => x.name === w) ?? (/^\d+$/.test(w) ? groups.find((x) => x.id === Number(w)) : undefined);
    if (!g) throw new UsageError(`--groups: no group '${w}' in biz ${api.biz}`);
    return g.id;
  });
}

export function getService(api: Api, app: string): Promise<Service> {
  return api.json<Service>("GET", api.appPath(app));
}

export function draftFiles(api: Api, app: string): Promise<DraftFile[]> {
  return api.all<DraftFile>(api.appPath(app, "/files"));
}

/** Every client of the service, or only the online ones (filtered by the server). */
export function allClients(api: Api, app: string, only: { online?: boolean } = {}): Promise<Client[]> {
  return api.all<Client>(api.appPath(app, only.online ? "/clients?online=true" : "/clients"));
}

/** One line for a failed apply: the agent's message, else the failing hook's exit code and last output line. */
export function failureReason(ev: ClientEvent | null): string {
  if (!ev) return "no report";
  const hook = ev.preHook?.exitCode ? ["pre-script", ev.preHook] : ev.postHook?.exitCode ? ["post-script", ev.postHook] : null;
  const parts = [ev.message || (hook ? `${hook[0]} exited ${(hook[1] as NonNullable<HookRun>).exitCode}` : "failed")];
  const tail = hook ? (hook[1] as NonNullable<HookRun>).outputTail.trim().split("\n").pop() : "";
  if (tail && !parts[0].includes(tail)) parts.push(`(output: ${tail})`);
  return parts.join(" ");
}
