import { createReadStream } from "node:fs";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import type { BlobObject, BlobStore } from "../core/ports";

/** Blobs as files under `root/{key}`, written to a temp name and renamed so a reader never sees half a blob. */
export function fsBlobStore(root: string): BlobStore {
  const file = (key: string) => {
    if (!/^[A-Za-z0-9/_-]+$/.test(key) || key.includes("..")) throw new Error(`bad blob key ${key}`);
    return path.join(root, key);
  };
  return {
    async put(key, body) {
      const target = file(key);
      await mkdir(path.dirname(target), { recursive: true });
      const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(tmp, body);
      await rename(tmp, target);
    },
    async get(key, range): Promise<BlobObject | null> {
      const target = file(key);
      const st = await stat(target).catch(() => null);
      if (!st) return null;
      const start = range?.start ?? 0;
      const end = range?.end ?? st.size - 1;
      const stream = createReadStream(target, { start, end: Math.max(start, end) });
      const body = st.size === 0 || start > end ? new ReadableStream<Uint8Array>({ start: (c) => c.close() }) : (Readable.toWeb(stream) as ReadableStream<Uint8Array>);
      if (st.size === 0 || start > end) stream.destroy();
      return { body, size: st.size };
    },
    async head(key) {
      const st = await stat(file(key)).catch(() => null);
      return st ? { size: st.size } : null;
    },
    async delete(key) {
      await rm(file(key), { force: true });
    },
  };
}
