/**
 * Request body limit that every client can read the answer of. Hono's `bodyLimit` answers 413
 * without reading the rest of the body; Node then drops the socket mid-upload and a client that
 * is still sending (Node's `fetch`) sees "other side closed" instead of the 413, and loses its
 * keep-alive socket. Here the rest of an oversized body is read and discarded first (up to
 * `drainBytes`), so the 413 arrives as an ordinary answer on a socket that stays usable; a body
 * past even that bound is answered with `Connection: close`.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

/** Bytes of an oversized body read and discarded before answering: twice the limit, at least 16 MiB. */
export const drainBound = (maxSize: number) => Math.max(2 * maxSize, 16 * 1024 * 1024);

/** Reads and discards up to `bound` bytes; true when the body ended within them. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, bound: number, already = 0): Promise<boolean> {
  let seen = already;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return true;
    seen += value.length;
    if (seen > bound) {
      await reader.cancel().catch(() => {});
      return false;
    }
  }
}

/**
 * Limits the body of non-GET requests to `maxSizeOf(c)` bytes: 413 `payload_too_large` beyond it,
 * after draining. A declared Content-Length within the limit passes unread (the server enforces
 * it); a chunked body is read here, as Hono's own limit does, and handed on as bytes.
 */
export function limitBody(maxSizeOf: (c: Context<AppEnv>) => number): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body || c.req.method === "GET" || c.req.method === "HEAD") return next();
    const maxSize = maxSizeOf(c);
    const refuse = (drained: boolean): never => {
      if (!drained) c.header("Connection", "close");
      throw new ApiError("payload_too_large", `request body is larger than ${maxSize} bytes`);
    };
    const declared = raw.headers.has("transfer-encoding") ? null : raw.headers.get("content-length");
    if (declared !== null) {
      if (Number(declared) <= maxSize) return next();
      return refuse(Number(declared) <= drainBound(maxSize) && (await drain(raw.body.getReader(), drainBound(maxSize))));
    }
    const reader = raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxSize) return refuse(await drain(reader, drainBound(maxSize), size));
      chunks.push(value);
    }
    const body = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) body.set(chunk, (at += chunk.length) - chunk.length);
    c.req.raw = new Request(raw, { body });
    return next();
  };
}
