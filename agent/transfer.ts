/**
 * One blob over HTTP: received into memory when small, else appended to its partial file (resumed
 * with `Range` where an earlier transfer stopped); either way its size and SHA-256 are checked
 * before anything uses it.
 */
import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import type { FeedClient } from "./feed.js";
import { hashInto, sha256Handle } from "./fsutil.js";
import { createFresh, openResumable } from "./partial.js";
import { readBody } from "./http.js";

/** A blob whose bytes are not the ones its manifest declares (size or SHA-256). */
export class IntegrityError extends Error {}

export interface BlobNeed {
  sha256: string;
  size: number;
}

/**
 * Blobs up to this size are received into memory, hashed, and written with one call, and handed to
 * `onReady` so the runner stages them from memory rather than copying the file back: most config
 * files are small, and per-chunk stream writes cost more CPU than the transfer.
 */
export const IN_MEMORY_LIMIT = 1 << 20;

/**
 * Appends to the partial file from where it stopped, hashing the bytes already there first,
 * then checks size and SHA-256 of the whole. Returns the bytes received over the network.
 * A partial is resumed only when it is a regular file with one link (opened O_NOFOLLOW|
 * O_NONBLOCK); else, and for every fresh start, whatever has its name is unlinked and the file
 * created anew (O_CREAT|O_EXCL|O_NOFOLLOW): a planted link is never written through.
 */
export async function receiveBlob(feed: Pick<FeedClient, "openBlob">, need: BlobNeed, partial: string, resumable: boolean, signal?: AbortSignal): Promise<{ received: number; data?: Buffer }> {
  let file: FileHandle | null = null;
  let offset = 0;
  try {
    if (resumable) {
      file = await openResumable(partial);
      offset = file ? (await file.stat()).size : 0;
    }
    if (offset >= need.size && need.size > 0) {
      // Complete before an interruption (crash before the rename): verify it, no request.
      if (offset === need.size && (await sha256Handle(file!)) === need.sha256) return { received: 0 };
      offset = 0;
    }
    let res = await feed.openBlob(need.sha256, offset, signal);
    if (res.statusCode === 416 && offset > 0) {
      res.resume();
      offset = 0;
      res = await feed.openBlob(need.sha256, 0, signal);
    }
    if (res.statusCode === 200) offset = 0; // no Range (or ignored): start over
    else if (res.statusCode !== 206) {
      const body = await readBody(res).catch(() => Buffer.alloc(0));
      throw new Error(`blob ${need.sha256}: HTTP ${res.statusCode} ${body.toString("utf8").slice(0, 200)}`);
    }
    if (offset === 0 && need.size <= IN_MEMORY_LIMIT) return await receiveWhole(need, res);
    const hash = createHash("sha256");
    if (offset > 0) await hashInto(file!, hash, offset);
    else {
      await file?.close();
      file = await createFresh(partial);
    }
    let received = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        received += chunk.length;
        // Stop at the declared size: a server sending more is not written to disk.
        if (offset + received > need.size) done(new IntegrityError(`blob ${need.sha256}: more than the declared ${need.size} bytes`));
        else done(null, chunk);
      },
    });
    const out = file!.createWriteStream({ start: offset });
    file = null; // the stream closes it
    await pipeline(res, tap, out);
    const total = offset + received;
    const digest = hash.digest("hex");
    if (total !== need.size || digest !== need.sha256) {
      throw new IntegrityError(`blob ${need.sha256}: received ${total} bytes hashing to ${digest}, expected ${need.size} bytes`);
    }
    return { received };
  } finally {
    await file?.close().catch(() => undefined);
  }
}

/** A small blob: into memory and checked; nothing written (see Fetcher's `keep`). */
async function receiveWhole(need: BlobNeed, res: AsyncIterable<Buffer> & { destroy(): void }): Promise<{ received: number; data: Buffer }> {
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of res) {
    received += chunk.length;
    if (received > need.size) {
      res.destroy();
      break;
    }
    chunks.push(chunk);
  }
  const data = Buffer.concat(chunks, Math.min(received, need.size));
  const digest = createHash("sha256").update(data).digest("hex");
  if (received !== need.size || digest !== need.sha256) {
    throw new IntegrityError(`blob ${need.sha256}: received ${received} bytes hashing to ${digest}, expected ${need.size} bytes`);
  }
  return { received, data };
}
