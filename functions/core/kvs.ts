/**
 * Items of kv services: the draft's CRUD, import/export, and reveal of a secret (audited). Secret
 * values are sealed before they reach the database (./secrets.ts) and show as {@link MASK}
 * everywhere but an explicit reveal and the feed. Versions snapshot the items (./kv-versions.ts).
 */
import { and, asc, count, eq, ilike } from "drizzle-orm";
import { kvItems } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { sha256Hex } from "./crypto";
import { alreadyExists, invalid, isUniqueViolation, notFound, precondition } from "./errors";
import { checkKvKey, checkKvValue, MASK, MAX_KV_ITEMS, type KvType } from "./kv-values";
import type { AppDeps, Db } from "./ports";
import { openSecret, sealSecret, secretBinding } from "./secrets";
import { loadService, type ServiceRow } from "./services";

type KvRow = typeof kvItems.$inferSelect;
export type KvDeps = Pick<AppDeps, "db" | "secretKey" | "clock">;

/** Key-value items belong to `kv` services; a file service refuses them with this message. */
export function requireKvService(s: ServiceRow) {
  if (s.configType !== "kv") throw precondition(`service '${s.name}' is a file service: key-value items apply to kv services only`, "app");
}

async function loadKvService(db: Db, bizId: number, app: string, forUpdate = false) {
  const s = await loadService(db, bizId, app, forUpdate);
  requireKvService(s);
  return s;
}

/** An item as the API shows it: a secret's value is {@link MASK} unless `revealed` is given. */
export function kvView(r: KvRow, revealed?: string) {
  const secret = r.type === "secret";
  return {
    id: r.id,
    serviceId: r.serviceId,
    key: r.key,
    type: r.type,
    value: secret ? (revealed ?? MASK) : r.value,
    masked: secret && revealed === undefined,
    memo: r.memo,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
  };
}

/** What the audit log keeps of an item: never a secret's value, only a digest and size of the others. */
async function auditView(r: KvRow) {
  const base = { id: r.id, key: r.key, type: r.type, memo: r.memo };
  return r.type === "secret" ? { ...base, value: MASK } : { ...base, size: new TextEncoder().encode(r.value).byteLength, valueSha256: await sha256Hex(r.value) };
}

async function loadItem(db: Db, s: ServiceRow, key: string, forUpdate = false): Promise<KvRow | undefined> {
  const q = db.select().from(kvItems).where(and(eq(kvItems.serviceId, s.id), eq(kvItems.key, key))).limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  return row;
}

const missing = (s: ServiceRow, key: string) => notFound(`key '${key}' of service '${s.name}'`);

/**
 * The columns for a value of `type`: a secret is sealed, unless it equals the one already stored
 * (then its envelope is kept, so versions and diffs see it unchanged).
 */
async function valueColumns(deps: KvDeps, s: ServiceRow, key: string, type: KvType, value: string, before?: KvRow) {
  if (type !== "secret") return { type, value, sealed: null };
  const binding = secretBinding(s.id, key);
  if (before?.type === "secret" && before.sealed && (await openSecret(deps.secretKey, binding, before.sealed)) === value) return { type, value: "", sealed: before.sealed };
  return { type, value: "", sealed: await sealSecret(deps.secretKey, binding, value) };
}

export type KvInput = { key: string; type: KvType; value: unknown; memo?: string };

async function checkRoom(tx: Db, s: ServiceRow, adding: number) {
  const [{ n }] = await tx.select({ n: count() }).from(kvItems).where(eq(kvItems.serviceId, s.id));
  if (Number(n) + adding > MAX_KV_ITEMS) throw precondition(`service '${s.name}' would hold more than ${MAX_KV_ITEMS} items`, "key");
}

/** Adds an item to the draft; 409 when the key exists. */
export async function createKv(deps: KvDeps, actor: Actor, bizId: number, app: string, input: KvInput) {
  checkKvKey(input.key);
  const value = checkKvValue(input.type, input.value);
  const s = await loadKvService(deps.db, bizId, app);
  const cols = await valueColumns(deps, s, input.key, input.type, value);
  const now = deps.clock();
  try {
    return await deps.db.transaction(async (tx) => {
      await loadKvService(tx, bizId, app, true);
      await checkRoom(tx, s, 1);
      const [row] = await tx.insert(kvItems).values({ bizId, serviceId: s.id, key: input.key, ...cols, memo: input.memo ?? "", createdAt: now, updatedAt: now }).returning();
      await recordAudit(tx, actor, { bizId, action: "kv.create", resourceType: "kv_item", resourceId: `${s.name}/${row.key}`, after: await auditView(row) });
      return kvView(row);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw alreadyExists("key", `service '${s.name}' already has a key '${input.key}'; PUT .../kvs/${input.key} replaces it`);
    throw e;
  }
}

/**
 * Creates or replaces the item `key` (type kept when not given; required to create). `value`
 * undefined keeps the stored one (same type only: the console's "keep the secret" field).
 * Returns `{created, item}`; an unchanged value still updates the memo and the time.
 */
export async function putKv(deps: KvDeps, actor: Actor, bizId: number, app: string, key: string, input: { type?: KvType; value?: unknown; memo?: string }) {
  checkKvKey(key);
  const s = await loadKvService(deps.db, bizId, app);
  const now = deps.clock();
  return deps.db.transaction(async (tx) => {
    await loadKvService(tx, bizId, app, true);
    const before = await loadItem(tx, s, key, true);
    const type = input.type ?? before?.type;
    if (!type) throw invalid("type", `required to create the key '${key}'`);
    const keep = input.value === undefined && before?.type === type;
    if (input.value === undefined && !keep) throw invalid("value", `required to ${before ? `change the type to ${type}` : "create the key"}`);
    const cols = keep ? { type, value: before.value, sealed: before.sealed } : await valueColumns(deps, s, key, type, checkKvValue(type, input.value), before);
    const memo = input.memo ?? before?.memo ?? "";
    if (before) {
      const [after] = await tx.update(kvItems).set({ ...cols, memo, updatedAt: now }).where(eq(kvItems.id, before.id)).returning();
      await recordAudit(tx, actor, { bizId, action: "kv.update", resourceType: "kv_item", resourceId: `${s.name}/${key}`, before: await auditView(before), after: await auditView(after) });
      return { created: false, item: kvView(after) };
    }
    await checkRoom(tx, s, 1);
    const [row] = await tx.insert(kvItems).values({ bizId, serviceId: s.id, key, ...cols, memo, createdAt: now, updatedAt: now }).returning();
    await recordAudit(tx, actor, { bizId, action: "kv.create", resourceType: "kv_item", resourceId: `${s.name}/${key}`, after: await auditView(row) });
    return { created: true, item: kvView(row) };
  });
}

export async function listKvs(db: Db, bizId: number, app: string, q: { search?: string; limit: number; offset: number }) {
  const s = await loadKvService(db, bizId, app);
  const where = and(eq(kvItems.serviceId, s.id), q.search ? ilike(kvItems.key, `%${q.search.replace(/[\\%_]/g, (m) => "\\" + m)}%`) : undefined);
  const [rows, [{ total }]] = await Promise.all([
    db.select().from(kvItems).where(where).orderBy(asc(kvItems.key)).limit(q.limit).offset(q.offset),
    db.select({ total: count() }).from(kvItems).where(where),
  ]);
  return { items: rows.map((r) => kvView(r)), total, limit: q.limit, offset: q.offset };
}

/** One item; with `reveal`, a secret's plaintext, and the reveal is audited (`kv.reveal`). */
export async function getKv(deps: KvDeps, actor: Actor, bizId: number, app: string, key: string, reveal = false) {
  const s = await loadKvService(deps.db, bizId, app);
  const row = await loadItem(deps.db, s, key);
  if (!row) throw missing(s, key);
  if (!reveal || row.type !== "secret" || !row.sealed) return kvView(row);
  const plain = await openSecret(deps.secretKey, secretBinding(s.id, key), row.sealed);
  await recordAudit(deps.db, actor, { bizId, action: "kv.reveal", resourceType: "kv_item", resourceId: `${s.name}/${key}`, after: { key, type: row.type } });
  return kvView(row, plain);
}

export async function deleteKv(deps: KvDeps, actor: Actor, bizId: number, app: string, key: string) {
  return deps.db.transaction(async (tx) => {
    const s = await loadKvService(tx, bizId, app, true);
    const before = await loadItem(tx, s, key, true);
    if (!before) throw missing(s, key);
    await tx.delete(kvItems).where(eq(kvItems.id, before.id));
    await recordAudit(tx, actor, { bizId, action: "kv.delete", resourceType: "kv_item", resourceId: `${s.name}/${key}`, before: await auditView(before) });
    return { key };
  });
}

/** Items as `{key: {type, value}}` (the shape of the agent's kv.json); secrets masked unless `reveal` (audited). */
export async function exportKvs(deps: KvDeps, actor: Actor, bizId: number, app: string, reveal = false) {
  const s = await loadKvService(deps.db, bizId, app);
  const rows = await deps.db.select().from(kvItems).where(eq(kvItems.serviceId, s.id)).orderBy(asc(kvItems.key));
  const out: Record<string, { type: KvType; value: string }> = {};
  for (const r of rows) {
    out[r.key] = { type: r.type, value: r.type === "secret" ? (reveal && r.sealed ? await openSecret(deps.secretKey, secretBinding(s.id, r.key), r.sealed) : MASK) : r.value };
  }
  if (reveal && rows.some((r) => r.type === "secret")) await recordAudit(deps.db, actor, { bizId, action: "kv.reveal", resourceType: "kv_item", resourceId: `${s.name}/*`, after: { keys: rows.filter((r) => r.type === "secret").map((r) => r.key) } });
  return out;
}

export type KvImport = Record<string, { type: KvType; value: unknown; memo?: string }>;

/**
 * Sets many items in one transaction (all or none): each is created or replaced; with `prune`,
 * keys not in `items` are deleted. A secret given as {@link MASK} keeps its stored value, so an
 * export with masked secrets imports back without wiping them. Returns the keys by outcome.
 */
export async function importKvs(deps: KvDeps, actor: Actor, bizId: number, app: string, items: KvImport, opts: { prune?: boolean } = {}) {
  const entries = Object.entries(items);
  if (entries.length > MAX_KV_ITEMS) throw invalid("items", `at most ${MAX_KV_ITEMS} items`);
  const checked = entries.map(([key, it]) => {
    checkKvKey(key, `items.${key}`);
    return { key, type: it.type, value: it.type === "secret" && it.value === MASK ? MASK : checkKvValue(it.type, it.value, `items.${key}.value`), memo: it.memo };
  });
  const s = await loadKvService(deps.db, bizId, app);
  const now = deps.clock();
  return deps.db.transaction(async (tx) => {
    await loadKvService(tx, bizId, app, true);
    const existing = new Map((await tx.select().from(kvItems).where(eq(kvItems.serviceId, s.id))).map((r) => [r.key, r]));
    const result = { added: [] as string[], changed: [] as string[], removed: [] as string[], unchanged: [] as string[] };
    for (const it of checked) {
      const before = existing.get(it.key);
      if (it.value === MASK && it.type === "secret") {
        if (before?.type === "secret") {
          result.unchanged.push(it.key);
          continue;
        }
        throw invalid(`items.${it.key}.value`, `'${MASK}' stands for a stored secret, and '${it.key}' has none; give the value`);
      }
      const cols = await valueColumns(deps, s, it.key, it.type, it.value, before);
      const memo = it.memo ?? before?.memo ?? "";
      if (before && before.type === cols.type && before.value === cols.value && before.sealed === cols.sealed && before.memo === memo) {
        result.unchanged.push(it.key);
        continue;
      }
      if (before) {
        await tx.update(kvItems).set({ ...cols, memo, updatedAt: now }).where(eq(kvItems.id, before.id));
        result.changed.push(it.key);
      } else {
        await tx.insert(kvItems).values({ bizId, serviceId: s.id, key: it.key, ...cols, memo, createdAt: now, updatedAt: now });
        result.added.push(it.key);
      }
    }
    if (opts.prune) {
      const keep = new Set(checked.map((it) => it.key));
      for (const [key, row] of existing) {
        if (keep.has(key)) continue;
        await tx.delete(kvItems).where(eq(kvItems.id, row.id));
        result.removed.push(key);
      }
    }
    await checkRoom(tx, s, 0);
    await recordAudit(tx, actor, { bizId, action: "kv.import", resourceType: "kv_item", resourceId: `${s.name}/*`, after: result });
    return result;
  });
}
