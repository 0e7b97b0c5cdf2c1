/** The release manifest of docs/feed-protocol.md, checked before anything touches the disk. */
import { checkKvs, type KvItem } from "./kv.js";
export interface FilePermission {
  user: string;
  group: string;
  privilege: string;
}

export interface ManifestFile {
  path: string;
  name: string;
  sha256: string;
  size: number;
  fileType?: string;
  permission: FilePermission;
}

export type HookType = "shell" | "python";

export interface HookSnapshot {
  type: HookType;
  scriptName?: string;
  versionName?: string;
  content: string;
}

export interface ReleaseRef {
  id: number;
  name: string;
  publishId?: number;
  publishedAt?: string;
}

export interface Manifest {
  biz: number;
  app: string;
  configType: string;
  wait?: number;
  release: ReleaseRef | null;
  files: ManifestFile[];
  /** `validate` (absent from servers that predate it) runs over the staged version before the swap. */
  hooks: { pre: HookSnapshot | null; post: HookSnapshot | null; validate: HookSnapshot | null };
  /** A kv service's items (agent/kv.ts); absent for file services. */
  kvs?: KvItem[];
}

export class ManifestError extends Error {}

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Refuses a path that could escape `{app}/files`: relative paths, `..` or `.` segments, NUL,
 * backslashes. The server refuses these too; the agent does not rely on it.
 */
export function checkFilePath(path: string, name: string): void {
  const where = `${path}/${name}`;
  if (!path.startsWith("/")) throw new ManifestError(`file path "${where}" is not absolute`);
  if (/[\u0000\\]/.test(path) || /[\u0000\\/]/.test(name)) throw new ManifestError(`file path "${where}" has a forbidden character`);
  if (name === "" || name === "." || name === "..") throw new ManifestError(`file name "${name}" is not allowed`);
  for (const segment of path.split("/")) {
    if (segment === "." || segment === "..") throw new ManifestError(`file path "${where}" escapes its folder`);
  }
}

/** Joins path and name into the relative location below `files/`, e.g. `etc/nginx/nginx.conf`. */
export function relativeTarget(file: Pick<ManifestFile, "path" | "name">): string {
  return [...file.path.split("/").filter((s) => s !== ""), file.name].join("/");
}

function fail(message: string): never {
  throw new ManifestError(`invalid manifest: ${message}`);
}

function checkHook(hook: unknown, which: string): HookSnapshot | null {
  if (hook === null || hook === undefined) return null;
  const h = hook as HookSnapshot;
  if (h.type !== "shell" && h.type !== "python") fail(`${which} hook type "${String(h.type)}"`);
  if (typeof h.content !== "string") fail(`${which} hook content`);
  return { type: h.type, scriptName: h.scriptName, versionName: h.versionName, content: h.content };
}

export function parseManifest(body: unknown): Manifest {
  if (!body || typeof body !== "object") fail("not an object");
  const m = body as Manifest;
  if (m.release !== null && (typeof m.release !== "object" || typeof m.release.id !== "number")) fail("release");
  if (!Array.isArray(m.files)) fail("files");
  const seen = new Set<string>();
  const files = m.files.map((f) => {
    if (typeof f.path !== "string" || typeof f.name !== "string") fail("file path/name");
    checkFilePath(f.path, f.name);
    const key = relativeTarget(f);
    if (seen.has(key)) fail(`file "${key}" listed twice`);
    seen.add(key);
    const sha = String(f.sha256).toLowerCase();
    if (!SHA256.test(sha)) fail(`file "${key}" sha256`);
    if (typeof f.size !== "number" || f.size < 0) fail(`file "${key}" size`);
    const p = f.permission ?? { user: "", group: "", privilege: "" };
    const privilege = String(p.privilege ?? "");
    if (privilege !== "" && !/^[0-7]{3,4}$/.test(privilege)) fail(`file "${key}" privilege "${privilege}"`);
    return { ...f, sha256: sha, permission: { user: p.user ?? "", group: p.group ?? "", privilege } };
  });
  const hooks = m.hooks ?? { pre: null, post: null, validate: null };
  return {
    biz: m.biz,
    app: m.app,
    configType: m.configType,
    wait: m.wait,
    release: m.release,
    files,
    hooks: { pre: checkHook(hooks.pre, "pre"), post: checkHook(hooks.post, "post"), validate: checkHook(hooks.validate, "validate") },
    ...(m.configType === "kv" ? { kvs: checkKvs(m.kvs) } : {}),
  };
}

/** The release id of a manifest not yet checked (null when absent or malformed). */
export function releaseIdOf(raw: unknown): number | null {
  const id = (raw as { release?: { id?: unknown } } | null)?.release?.id;
  return typeof id === "number" ? id : null;
}
