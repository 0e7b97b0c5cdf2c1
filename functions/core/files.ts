import { and, asc, count, eq } from "drizzle-orm";
import { blobs, configFiles } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { sha256Hex } from "./crypto";
import { alreadyExists, DomainError, invalid, isUniqueViolation, notFound } from "./errors";
import { checkDir, checkName, checkOwner, checkPrivilege } from "./paths";
import type { BlobStore, Db } from "./ports";
import { loadService, requireFileService, type ServiceRow } from "./services";

export type FileType = "text" | "binary";
type FileRow = typeof configFiles.$inferSelect;

export const blobKey = (bizId: number, sha256: string) => `${bizId}/${sha256}`;

/** Binary when the bytes hold a NUL or are not valid UTF-8; agents write both kinds byte for byte. */
export function detectFileType(bytes: Uint8Array): FileType {
  if (bytes.includes(0)) return "binary";
  // Decoded 1 MiB at a time, so a 100 MiB text file never becomes a 200 MB string.
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const step = 1024 * 1024;
  try {
    for (let at = 0; at < bytes.byteLength; at += step) decoder.decode(bytes.subarray(at, at + step), { stream: true });
    decoder.decode();
    return "text";
  } catch {
    return "binary";
  }
}

/** Streams a blob to decide its type without holding more than one chunk of it. */
async function detectStoredType(store: BlobStore, key: string): Promise<FileType> {
  const obj = await store.get(key);
  if (!obj) throw new DomainError("internal", `blob ${key} is missing from the blob store`);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const reader = obj.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.includes(0)) return "binary";
      decoder.decode(value, { stream: true });
    }
    decoder.decode();
    return "text";
  } catch {
    return "binary";
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

export async function readBlob(store: BlobStore, bizId: number, sha256: string): Promise<Uint8Array> {
  const obj = await store.get(blobKey(bizId, sha256));
  if (!obj) throw new DomainError("internal", `blob ${sha256} is missing from the blob store`);
  return new Uint8Array(await new Response(obj.body).arrayBuffer());
}

/**
 * Stores bytes once per biz by SHA-256: the bytes go to the store first, then the row, so a row
 * always means the bytes are there. Uploading the same bytes again writes nothing.
 */
export async function putBlob(db: Db, store: BlobStore, bizId: number, bytes: Uint8Array, maxBytes: number) {
  if (bytes.byteLength > maxBytes) throw new DomainError("payload_too_large", `body: the file is ${bytes.byteLength} bytes, the limit is ${maxBytes}`, "body");
  const sha256 = await sha256Hex(bytes);
  const size = bytes.byteLength;
  const key = blobKey(bizId, sha256);
  const [known] = await db.select({ size: blobs.size }).from(blobs).where(and(eq(blobs.bizId, bizId), eq(blobs.sha256, sha256))).limit(1);
  const stored = known ? await store.head(key) : null;
  if (!stored || stored.size !== size) await store.put(key, bytes);
  if (!known) await db.insert(blobs).values({ bizId, sha256, size }).onConflictDoNothing();
  return { sha256, size, fileType: detectFileType(bytes) };
}

export function fileView(f: FileRow) {
  return {
    id: f.id,
    serviceId: f.serviceId,
    path: f.path,
    name: f.name,
    sha256: f.sha256,
    size: f.size,
    fileType: f.fileType,
    user: f.user,
    group: f.group,
    privilege: f.privilege,
    memo: f.memo,
    createdAt: f.createdAt.toISOString(),
    updatedAt: f.updatedAt.toISOString(),
  };
}

export type FileMeta = { user?: string; group?: string; privilege?: string; memo?: string };

function checkMeta(m: FileMeta) {
  if (m.user !== undefined) checkOwner(m.user, "user");
  if (m.group !== undefined) checkOwner(m.group, "group");
  if (m.privilege !== undefined) checkPrivilege(m.privilege);
}

async function blobInfo(db: Db, store: BlobStore, bizId: number, sha256: string) {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw invalid("sha256", "must be 64 lowercase hex digits");
  const [row] = await db.select().from(blobs).where(and(eq(blobs.bizId, bizId), eq(blobs.sha256, sha256))).limit(1);
  if (!row) throw invalid("sha256", `no blob with this sha256 was uploaded in biz ${bizId}; PUT the bytes to /api/v1/bizs/${bizId}/blobs first`);
  return { size: row.size, fileType: await detectStoredType(store, blobKey(bizId, sha256)) };
}

const duplicate = (s: ServiceRow, path: string, name: string) => alreadyExists("name", `service '${s.name}' already has a file ${path === "/" ? "" : path}/${name}`);

async function loadFile(db: Db, s: ServiceRow, fileId: number, forUpdate = false): Promise<FileRow> {
  const q = db.select().from(configFiles).where(and(eq(configFiles.id, fileId), eq(configFiles.serviceId, s.id))).limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  if (!row) throw notFound(`file ${fileId} of service '${s.name}'`);
  return row;
}

export type CreateFileInput = { path: string; name: string; sha256: string } & FileMeta;

export async function createFile(db: Db, store: BlobStore, actor: Actor, bizId: number, app: string, input: CreateFileInput, now: Date) {
  checkDir(input.path);
  checkName(input.name);
  checkMeta(input);
  const s = await loadService(db, bizId, app);
  requireFileService(s, "config files");
  const blob = await blobInfo(db, store, bizId, input.sha256);
  try {
    return await db.transaction(async (tx) => {
      await loadService(tx, bizId, app, true);
      const [row] = await tx
        .insert(configFiles)
        .values({ bizId, serviceId: s.id, path: input.path, name: input.name, sha256: input.sha256, size: blob.size, fileType: blob.fileType, user: input.user, group: input.group, privilege: input.privilege, memo: input.memo, createdAt: now, updatedAt: now })
        .returning();
      await recordAudit(tx, actor, { bizId, action: "file.create", resourceType: "config_file", resourceId: row.id, after: fileView(row) });
      return fileView(row);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw duplicate(s, input.path, input.name);
    throw e;
  }
}

/** Upload + upsert by full path: creates the file, or replaces the content (and given metadata) of the one there. */
export async function putFileContent(
  db: Db,
  store: BlobStore,
  actor: Actor,
  bizId: number,
  app: string,
  input: { path: string; name: string; bytes: Uint8Array } & FileMeta,
  opts: { now: Date; maxBytes: number },
) {
  checkMeta(input);
  const s = await loadService(db, bizId, app);
  requireFileService(s, "config files");
  const blob = await putBlob(db, store, bizId, input.bytes, opts.maxBytes);
  const meta = { user: input.user, group: input.group, privilege: input.privilege, memo: input.memo };
  const set = { sha256: blob.sha256, size: blob.size, fileType: blob.fileType, ...Object.fromEntries(Object.entries(meta).filter(([, v]) => v !== undefined)) };
  try {
    return await db.transaction(async (tx) => {
      await loadService(tx, bizId, app, true);
      const [before] = await tx
        .select()
        .from(configFiles)
        .where(and(eq(configFiles.serviceId, s.id), eq(configFiles.path, input.path), eq(configFiles.name, input.name)))
        .for("update");
      if (before) {
        const [after] = await tx.update(configFiles).set({ ...set, updatedAt: opts.now }).where(eq(configFiles.id, before.id)).returning();
        await recordAudit(tx, actor, { bizId, action: "file.update", resourceType: "config_file", resourceId: after.id, before: fileView(before), after: fileView(after) });
        return { created: false, file: fileView(after) };
      }
      const [row] = await tx
        .insert(configFiles)
        .values({ bizId, serviceId: s.id, path: input.path, name: input.name, ...set, createdAt: opts.now, updatedAt: opts.now })
        .returning();
      await recordAudit(tx, actor, { bizId, action: "file.create", resourceType: "config_file", resourceId: row.id, after: fileView(row) });
      return { created: true, file: fileView(row) };
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw duplicate(s, input.path, input.name);
    throw e;
  }
}

export async function listFiles(db: Db, bizId: number, app: string, q: { limit: number; offset: number }) {
  const s = await loadService(db, bizId, app);
  const where = eq(configFiles.serviceId, s.id);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(configFiles).where(where).orderBy(asc(configFiles.path), asc(configFiles.name)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(configFiles).where(where),
  ]);
  return { items: rows.map(fileView), total, limit: q.limit, offset: q.offset };
}

export async function getFile(db: Db, bizId: number, app: string, fileId: number) {
  return fileView(await loadFile(db, await loadService(db, bizId, app), fileId));
}

export async function updateFile(db: Db, store: BlobStore, actor: Actor, bizId: number, app: string, fileId: number, input: Partial<CreateFileInput>, now: Date) {
  if (input.path !== undefined) checkDir(input.path);
  if (input.name !== undefined) checkName(input.name);
  checkMeta(input);
  const s = await loadService(db, bizId, app);
  const blob = input.sha256 !== undefined ? await blobInfo(db, store, bizId, input.sha256) : undefined;
  try {
    return await db.transaction(async (tx) => {
      const before = await loadFile(tx, s, fileId, true);
      const set = Object.fromEntries(Object.entries({ ...input, ...(blob ? { size: blob.size, fileType: blob.fileType } : {}) }).filter(([, v]) => v !== undefined));
      const [after] = await tx.update(configFiles).set({ ...set, updatedAt: now }).where(eq(configFiles.id, before.id)).returning();
      await recordAudit(tx, actor, { bizId, action: "file.update", resourceType: "config_file", resourceId: fileId, before: fileView(before), after: fileView(after) });
      return fileView(after);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw alreadyExists("name", `another file of service '${s.name}' has that path and name`);
    throw e;
  }
}

export async function deleteFile(db: Db, actor: Actor, bizId: number, app: string, fileId: number) {
  return db.transaction(async (tx) => {
    const s = await loadService(tx, bizId, app);
    const before = await loadFile(tx, s, fileId, true);
    await tx.delete(configFiles).where(eq(configFiles.id, fileId));
    await recordAudit(tx, actor, { bizId, action: "file.delete", resourceType: "config_file", resourceId: fileId, before: fileView(before) });
    return { id: fileId };
  });
}

/** The bytes of a draft file, for download. */
export async function fileContent(db: Db, store: BlobStore, bizId: number, app: string, fileId: number) {
  const f = await loadFile(db, await loadService(db, bizId, app), fileId);
  const obj = await store.get(blobKey(bizId, f.sha256));
  if (!obj) throw new DomainError("internal", `blob ${f.sha256} is missing from the blob store`);
  return { file: fileView(f), body: obj.body, size: obj.size };
}
