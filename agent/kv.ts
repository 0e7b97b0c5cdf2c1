/**
 * Key-value services on the agent: the release's items become `{temp_dir}/{biz}/{app}/kv.json`
 * (`{key: {type, value}}`, 0600), written whole or not at all (a temp file created 0600 with
 * O_EXCL|O_NOFOLLOW, then one rename: agent/safetree.ts `placeFile`), never through a link.
 * Scripts are refused for kv services. Readers: `edgeconf-agent get kv` and `watch`'s `/kv/`.
 */
import { createHash } from "node:crypto";
import { StepError, stateOf, type Attempt, type RunnerDeps } from "./attempt.js";
import { errnoOf, nodeFsys, READ, type Fsys } from "./fsys.js";
import { ManifestError, type Manifest } from "./manifest.js";
import { preflight } from "./phase-files.js";
import { placeFile, removeTempFiles, UnsafePathError } from "./safetree.js";
import { keyOf } from "./integrity.js";
import { appPaths, appTree, writeState, type AppPaths, type FileRecord } from "./state.js";

export const KV_FILE = "kv.json";
const KV_TYPES = new Set(["string", "number", "text", "json", "yaml", "xml", "secret"]);
/** The server's key rule (functions/core/kv-values.ts), checked again: keys are JSON keys and URL segments here. */
const KV_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface KvItem {
  key: string;
  type: string;
  value: string;
}
export type KvDocument = Record<string, { type: string; value: string }>;

/** The manifest's `kvs`, checked (ManifestError names the first bad item). */
export function checkKvs(raw: unknown): KvItem[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ManifestError("invalid manifest: kvs");
  const seen = new Set<string>();
  return raw.map((k) => {
    const item = k as KvItem;
    if (!item || typeof item.key !== "string" || !KV_KEY.test(item.key)) throw new ManifestError(`invalid manifest: kv key ${JSON.stringify(item?.key)}`);
    if (seen.has(item.key)) throw new ManifestError(`invalid manifest: kv key "${item.key}" listed twice`);
    seen.add(item.key);
    if (!KV_TYPES.has(item.type) || typeof item.value !== "string") throw new ManifestError(`invalid manifest: kv "${item.key}" type or value`);
    return { key: item.key, type: item.type, value: item.value };
  });
}

/** kv.json's bytes: keys in the manifest's order (sorted by the server), created without a prototype. */
export function kvDocument(items: KvItem[]): string {
  const doc: KvDocument = Object.create(null);
  for (const k of items) doc[k.key] = { type: k.type, value: k.value };
  return JSON.stringify(doc, null, 2) + "\n";
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * Applies a kv release: refuses scripts, checks the service folder (no link anywhere), writes
 * kv.json, then state.json (with kv.json's hash, never the values: `kvs` is left out of the saved
 * manifest). Throws StepError on a refusal; other errors are the disk's.
 */
export async function applyKv(deps: RunnerDeps, attempt: Attempt): Promise<void> {
  const { manifest, paths } = attempt;
  if (manifest.hooks.pre || manifest.hooks.post || manifest.hooks.validate) throw new StepError(`service ${attempt.app} is a kv service: scripts are refused for kv services`);
  if (manifest.files.length) throw new StepError(`service ${attempt.app} is a kv service: its release must not carry files`);
  const text = kvDocument(manifest.kvs ?? []);
  const tree = await appTree(paths, deps.fsys);
  let record: FileRecord;
  try {
    await preflight(tree).catch((err) => Promise.reject(err instanceof UnsafePathError ? new StepError(err.message) : err));
    if ((await tree.kind(KV_FILE)) === "dir") throw new StepError(`${tree.real(KV_FILE)} is a folder; the agent does not replace it`);
    // Leftovers of a write a crash cut short (they may hold secrets): removed before the next write.
    await removeTempFiles(tree, "", KV_FILE);
    await placeFile(tree, "", KV_FILE, text, 0o600);
    const s = await tree.fsys.lstat((await tree.path(KV_FILE))!);
    record = { sha256: sha256(text), size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, privilege: "600", user: "", group: "" };
  } finally {
    await tree.close();
  }
  attempt.timings.kvCount = manifest.kvs?.length ?? 0;
  const saved: Manifest = { ...manifest, kvs: [] };
  // No journal for kv.json (one rename): the attempt is finished once the state is written.
  await writeState(paths, keyOf(deps), { ...stateOf(deps, attempt, saved, {}, true), kv: record }, deps.fsys);
}

/** Whether kv.json still holds what the applied release wrote (same inode and stat, else same hash). */
export async function kvApplied(paths: AppPaths, fsys: Fsys | undefined, record: FileRecord | undefined): Promise<boolean> {
  if (!record) return false;
  const doc = await readKvFile(paths, fsys).catch(() => null);
  return doc !== null && sha256(doc.text) === record.sha256;
}

/** kv.json of a service as text and parsed, read without following a link; null when absent. */
export async function readKvFile(paths: AppPaths, fsys?: Fsys): Promise<{ text: string; doc: KvDocument } | null> {
  const tree = await appTree(paths, fsys);
  try {
    if ((await tree.kind(KV_FILE)) !== "file") return null;
    const handle = await tree.fsys.open((await tree.path(KV_FILE))!, READ);
    try {
      const text = await handle.readFile("utf8");
      return { text, doc: JSON.parse(text) as KvDocument };
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return null;
    throw err;
  } finally {
    await tree.close();
  }
}

/** One item of a service's kv.json, or null when the key (or the file) is absent. */
export async function readKvItem(tempDir: string, biz: number, app: string, key: string, fsys: Fsys = nodeFsys): Promise<{ type: string; value: string } | null> {
  const paths = appPaths(tempDir, biz, app);
  // A reader creates nothing: no service folder yet means no item.
  if (!(await fsys.lstat(paths.appDir).then(() => true, (err) => (errnoOf(err) === "ENOENT" ? false : Promise.reject(err))))) return null;
  const file = await readKvFile(paths, fsys);
  if (!file || !Object.prototype.hasOwnProperty.call(file.doc, key)) return null;
  return file.doc[key];
}
