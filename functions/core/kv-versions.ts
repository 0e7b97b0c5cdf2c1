/**
 * Items in versions: the snapshot made with a version (in its transaction), the items a version
 * shows (secrets masked), their diff, and the plaintext list the feed hands to agents.
 */
import { asc, eq } from "drizzle-orm";
import { kvItems, releaseKvs } from "../../db/schema/index";
import { MASK, type KvType } from "./kv-values";
import type { Db } from "./ports";
import { openSecret, secretBinding } from "./secrets";

type DraftKv = typeof kvItems.$inferSelect;

/** A version's item as stored: `sealed` is the secret's envelope (null for other types). */
export type StoredKv = { key: string; type: KvType; value: string; sealed: string | null; memo: string };

/** The draft's items, sorted by key (read in the version's transaction). */
export const draftKvs = (tx: Db, serviceId: number): Promise<DraftKv[]> => tx.select().from(kvItems).where(eq(kvItems.serviceId, serviceId)).orderBy(asc(kvItems.key));

/** Copies the items into the version; secrets keep their envelope (bound to service and key, not to the row). */
export async function snapshotKvs(tx: Db, releaseId: number, items: DraftKv[]): Promise<void> {
  if (items.length) await tx.insert(releaseKvs).values(items.map((k) => ({ releaseId, key: k.key, type: k.type, value: k.value, sealed: k.sealed, memo: k.memo })));
}

export async function storedKvs(db: Db, releaseId: number): Promise<StoredKv[]> {
  return db.select({ key: releaseKvs.key, type: releaseKvs.type, value: releaseKvs.value, sealed: releaseKvs.sealed, memo: releaseKvs.memo }).from(releaseKvs).where(eq(releaseKvs.releaseId, releaseId)).orderBy(asc(releaseKvs.key));
}

/** A version's item as the admin API shows it. */
export const maskedKv = (k: StoredKv) => ({ key: k.key, type: k.type, value: k.type === "secret" ? MASK : k.value, memo: k.memo });
export type MaskedKv = ReturnType<typeof maskedKv>;

/** The items of a version for the admin API: secrets masked. */
export async function versionKvs(db: Db, releaseId: number): Promise<MaskedKv[]> {
  return (await storedKvs(db, releaseId)).map(maskedKv);
}

/**
 * Keys added, removed and changed (type, value or memo) between two versions; secrets compare by
 * envelope (a secret set again to the same value keeps its envelope) and show as masked.
 */
export async function diffKvs(db: Db, fromId: number, toId: number) {
  const [a, b] = await Promise.all([storedKvs(db, fromId), storedKvs(db, toId)]);
  const before = new Map(a.map((k) => [k.key, k]));
  const after = new Set(b.map((k) => k.key));
  const changed: { key: string; from: MaskedKv; to: MaskedKv; valueChanged: boolean }[] = [];
  let unchanged = 0;
  for (const k of b) {
    const old = before.get(k.key);
    if (!old) continue;
    const valueChanged = old.type !== k.type || old.value !== k.value || old.sealed !== k.sealed;
    if (!valueChanged && old.memo === k.memo) unchanged++;
    else changed.push({ key: k.key, from: maskedKv(old), to: maskedKv(k), valueChanged });
  }
  return { added: b.filter((k) => !before.has(k.key)).map(maskedKv), removed: a.filter((k) => !after.has(k.key)).map(maskedKv), changed, unchanged };
}

/** The items an agent gets, secrets decrypted (only the feed calls this). */
export async function revealKvs(secretKey: string, serviceId: number, items: StoredKv[]): Promise<{ key: string; type: KvType; value: string }[]> {
  return Promise.all(items.map(async (k) => ({ key: k.key, type: k.type, value: k.type === "secret" && k.sealed ? await openSecret(secretKey, secretBinding(serviceId, k.key), k.sealed) : k.value })));
}

/** A version's items as the admin API shows them but with secrets decrypted (the caller audits the reveal). */
export async function revealedVersionKvs(db: Db, secretKey: string, serviceId: number, releaseId: number): Promise<MaskedKv[]> {
  const stored = await storedKvs(db, releaseId);
  const plain = await revealKvs(secretKey, serviceId, stored);
  return stored.map((k, i) => ({ key: k.key, type: k.type, value: plain[i].value, memo: k.memo }));
}
