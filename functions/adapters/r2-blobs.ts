import type { BlobObject, BlobStore } from "../core/ports";

/** The part of a Workers R2 binding this adapter uses (no @cloudflare/workers-types dependency). */
export interface R2BucketLike {
  put(key: string, value: Uint8Array | ArrayBuffer | ReadableStream | string | null): Promise<unknown>;
  get(key: string, options?: { range?: { offset: number; length?: number } }): Promise<{ body: ReadableStream<Uint8Array>; size: number } | null>;
  head(key: string): Promise<{ size: number } | null>;
  delete(key: string | string[]): Promise<void>;
}

const empty = () => new ReadableStream<Uint8Array>({ start: (c) => c.close() });

/** Blobs in an R2 bucket binding, under `{prefix}{key}`. */
export function r2BlobStore(bucket: R2BucketLike, prefix = ""): BlobStore {
  const name = (key: string) => {
    if (!/^[A-Za-z0-9/_-]+$/.test(key) || key.includes("..")) throw new Error(`bad blob key ${key}`);
    return prefix + key;
  };
  return {
    async put(key, body) {
      await bucket.put(name(key), body);
    },
    async get(key, range): Promise<BlobObject | null> {
      if (!range) {
        const obj = await bucket.get(name(key));
        return obj ? { body: obj.body, size: obj.size } : null;
      }
      // R2 refuses a range past the end; answer like the fs adapter (size + empty body) instead.
      const head = await bucket.head(name(key));
      if (!head) return null;
      const end = Math.min(range.end ?? head.size - 1, head.size - 1);
      if (head.size === 0 || range.start > end) return { body: empty(), size: head.size };
      const obj = await bucket.get(name(key), { range: { offset: range.start, length: end - range.start + 1 } });
      return obj ? { body: obj.body, size: head.size } : null;
    },
    async head(key) {
      const obj = await bucket.head(name(key));
      return obj ? { size: obj.size } : null;
    },
    async delete(key) {
      await bucket.delete(name(key));
    },
  };
}
