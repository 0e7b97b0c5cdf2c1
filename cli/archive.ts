/**
 * A version as a tar.gz (format `edgeconf-version/2`; `/1` archives are still read), written and
 * read with `tar` (node-tar):
 *   manifest.json              what the version is: files with sha256 and permission, scripts,
 *                              the service's validators, kv items (counted; secrets how handled)
 *   files/<path>/<name>        each file's bytes, the tar mode = its privilege
 *   scripts/pre_hook.sh|.py    each bound script's pinned content (post_hook, validate_hook likewise)
 *   kvs.json                   a kv service's items, `{key: {type, value, memo}}` (mode 0600)
 * Owners (user, group) live in manifest.json only: node-tar writes no group name, and a header
 * uid/gid of the exporting machine would mean nothing on another.
 * Reading refuses what could escape or surprise: links, devices, FIFOs, absolute or `..` paths,
 * entries the manifest does not name, bytes that do not match their sha256.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { Header, Pack, Parser, ReadEntry } from "tar";
import { UsageError } from "./context.js";

export const ARCHIVE_FORMAT = "edgeconf-version/2";
/** Older archives this CLI still imports (they hold no validate script, validators or kv items). */
const READABLE_FORMATS = ["edgeconf-version/1", ARCHIVE_FORMAT];
/** Beyond this much unpacked data an archive is refused (it is held in memory while importing). */
export const MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024;

export const HOOK_KINDS = ["pre", "post", "validate"] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

export type ArchivedFile = { path: string; name: string; entry: string; sha256: string; size: number; fileType: string; user: string; group: string; privilege: string; memo: string };
export type ArchivedHook = { scriptName: string; type: "shell" | "python"; versionName: string; entry: string; sha256: string } | null;
export type ArchivedValidator = { pathGlob: string; kind: string; schema: unknown; memo: string };
export type KvValue = { type: string; value: string; memo: string };
/**
 * The kv items entry. `secrets`: "included" (revealed at export, audited), "skipped" (left out,
 * named in `skippedSecrets`), or "none" (the version had no secret).
 */
export type ArchivedKvs = { entry: string; sha256: string; count: number; secrets: "included" | "skipped" | "none"; skippedSecrets: string[] };
export type Manifest = {
  format: string;
  exportedAt: string;
  biz: number;
  app: string;
  service: { configType: "file" | "kv" };
  version: { id: number; name: string; memo: string; createdBy: string; createdAt: string };
  files: ArchivedFile[];
  hooks: Record<HookKind, ArchivedHook>;
  /** The service's validators when it was exported (they belong to the service, not the version). */
  validators: ArchivedValidator[];
  kvs: ArchivedKvs | null;
};

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * Writes the archive to `outFile` via a temp file in the same folder and a rename, so a failed
 * export never leaves a half-written archive. `content(entry)` gives each entry's bytes, in order.
 */
export async function writeArchive(outFile: string, manifest: Manifest, content: (entry: string) => Promise<Buffer>): Promise<void> {
  const temp = `${outFile}.tmp-${process.pid}`;
  const pack = new Pack({ gzip: true });
  const done = pipeline(pack, createWriteStream(temp, { mode: 0o600 }));
  const mtime = new Date(manifest.version.createdAt);
  const add = (path: string, mode: number, data: Buffer) => {
    const entry = new ReadEntry(new Header({ path, mode, size: data.length, type: "File", mtime, uid: 0, gid: 0 }));
    pack.add(entry);
    entry.end(data);
  };
  try {
    add("manifest.json", 0o644, Buffer.from(JSON.stringify(manifest, null, 2) + "\n"));
    for (const f of manifest.files) add(f.entry, Number.parseInt(f.privilege, 8), await content(f.entry));
    for (const kind of HOOK_KINDS) {
      const h = manifest.hooks[kind];
      if (h) add(h.entry, 0o755, await content(h.entry));
    }
    if (manifest.kvs) add(manifest.kvs.entry, 0o600, await content(manifest.kvs.entry));
    pack.end();
    await done;
    await rename(temp, outFile);
  } catch (err) {
    pack.destroy();
    await done.catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}

function checkEntryPath(path: string): void {
  const bad = path.startsWith("/") || path.includes("\\") || /[\u0000-\u001f]/.test(path) || path.split("/").some((s) => s === ".." || s === ".");
  if (bad) throw new UsageError(`archive: entry "${path}" escapes the archive (absolute, '..', '.' or backslash); refused`);
}

/** Reads and checks an archive; every entry's bytes in memory, keyed by entry path. */
export async function readArchive(file: string): Promise<{ manifest: Manifest; entries: Map<string, { bytes: Buffer; mode: number }> }> {
  const entries = new Map<string, { bytes: Buffer; mode: number }>();
  let total = 0;
  let refused: Error | null = null;
  const parser = new Parser({
    strict: true,
    onReadEntry: (e) => {
      const path = e.path.replace(/^\.\//, "").replace(/\/$/, "");
      try {
        checkEntryPath(path);
        if (e.type === "Directory") return void e.resume();
        if (e.type !== "File" && e.type !== "OldFile") throw new UsageError(`archive: entry "${path}" is a ${e.type}; only regular files are imported`);
        if (entries.has(path)) throw new UsageError(`archive: entry "${path}" appears twice`);
      } catch (err) {
        refused ??= err as Error;
        return void e.resume();
      }
      const chunks: Buffer[] = [];
      e.on("data", (c: Buffer) => {
        total += c.length;
        if (total > MAX_ARCHIVE_BYTES) refused ??= new UsageError(`archive: more than ${MAX_ARCHIVE_BYTES} bytes unpacked; refused`);
        else chunks.push(c);
      });
      e.on("end", () => entries.set(path, { bytes: Buffer.concat(chunks), mode: (e.mode ?? 0) & 0o7777 }));
    },
  });
  try {
    await pipeline(createReadStream(file), parser);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).syscall) throw err;
    throw new UsageError(`archive: ${file} is not a readable tar.gz: ${(err as Error).message}`);
  }
  if (refused) throw refused;
  const raw = entries.get("manifest.json");
  if (!raw) throw new UsageError("archive: no manifest.json; not an edgeconf export");
  let manifest: Manifest;
  try {
    manifest = JSON.parse(raw.bytes.toString("utf8")) as Manifest;
  } catch {
    throw new UsageError("archive: manifest.json is not JSON");
  }
  if (!READABLE_FORMATS.includes(manifest.format) || !Array.isArray(manifest.files)) throw new UsageError(`archive: manifest.json is not format ${READABLE_FORMATS.join(" or ")}`);
  // A /1 archive holds files and pre/post scripts only.
  manifest.service ??= { configType: "file" };
  manifest.hooks = { pre: manifest.hooks?.pre ?? null, post: manifest.hooks?.post ?? null, validate: manifest.hooks?.validate ?? null };
  manifest.validators ??= [];
  manifest.kvs ??= null;
  const named = new Set(["manifest.json"]);
  for (const item of [...manifest.files, ...HOOK_KINDS.map((k) => manifest.hooks[k]), manifest.kvs]) {
    if (!item) continue;
    const got = entries.get(item.entry);
    if (!got) throw new UsageError(`archive: manifest names "${item.entry}" but the archive has no such entry`);
    if (sha256(got.bytes) !== item.sha256) throw new UsageError(`archive: "${item.entry}" does not match its sha256 in manifest.json`);
    named.add(item.entry);
  }
  for (const path of entries.keys()) if (!named.has(path)) throw new UsageError(`archive: entry "${path}" is not in manifest.json; refused`);
  return { manifest, entries };
}

/** The kv items of an archive (`kvs.json`), checked for shape; {} when it has none. */
export function archivedKvs(manifest: Manifest, entries: Map<string, { bytes: Buffer }>): Record<string, KvValue> {
  if (!manifest.kvs) return {};
  let items: unknown;
  try {
    items = JSON.parse(entries.get(manifest.kvs.entry)!.bytes.toString("utf8"));
  } catch {
    throw new UsageError(`archive: ${manifest.kvs.entry} is not JSON`);
  }
  if (!items || typeof items !== "object" || Array.isArray(items)) throw new UsageError(`archive: ${manifest.kvs.entry} is not a {key: {type, value}} object`);
  for (const [key, it] of Object.entries(items)) {
    if (!it || typeof it.type !== "string" || typeof it.value !== "string") throw new UsageError(`archive: ${manifest.kvs.entry}: item '${key}' has no string type and value`);
  }
  return items as Record<string, KvValue>;
}
