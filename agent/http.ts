/**
 * A small HTTP client on `node:http`/`node:https`. Global `fetch` (undici) costs ~40 MB of
 * resident memory in an otherwise idle agent; these modules do not.
 */
import http, { type IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import type https from "node:https";

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Socket idle timeout: no byte for this long aborts the request. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** A buffered answer longer than this is refused (HttpError) instead of filling memory. Default 64 MiB. */
  maxBytes?: number;
}

/** Default cap of a buffered answer (a manifest of ~100,000 files is ~20 MiB of JSON). */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export interface BufferedResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class HttpError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A buffered answer past its byte limit: the server's answer is wrong, not unreachable. */
export class TooLargeError extends HttpError {}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 32 });
let tls: { module: typeof https; agent: https.Agent } | undefined;

/** `node:https` (and OpenSSL's TLS state, ~1 MB) is loaded only when an https address is used. */
function httpsModule(): { module: typeof https; agent: https.Agent } {
  if (!tls) {
    const module = createRequire(import.meta.url)("node:https") as typeof https;
    tls = { module, agent: new module.Agent({ keepAlive: true, maxSockets: 32 }) };
  }
  return tls;
}

/** Closes idle keep-alive sockets so the process can exit. */
export function closeIdleSockets(): void {
  httpAgent.destroy();
  tls?.agent.destroy();
}

/** Starts a request and resolves with the response head; the caller consumes the body. */
export function openRequest(url: string, options: RequestOptions = {}): Promise<IncomingMessage> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  const mod = secure ? httpsModule().module : http;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) return reject(new HttpError("aborted"));
    const req = mod.request(target, {
      method: options.method ?? "GET",
      headers: options.headers,
      agent: secure ? httpsModule().agent : httpAgent,
      signal: options.signal,
    });
    req.setTimeout(options.timeoutMs ?? 30_000, () => req.destroy(new HttpError(`timeout after ${options.timeoutMs ?? 30_000} ms`)));
    req.on("error", (err) => reject(options.signal?.aborted ? new HttpError("aborted") : err));
    req.on("response", (res) => {
      // Keep the idle timeout on the body stream too.
      res.on("error", () => undefined);
      resolve(res);
    });
    req.end(options.body);
  });
}

/** Reads a whole answer into memory; past `maxBytes` the response is destroyed and the promise rejects. */
export function readBody(res: IncomingMessage, maxBytes = MAX_BUFFERED_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new TooLargeError(`answer larger than the ${maxBytes}-byte limit`, res.statusCode);
    const declared = Number(res.headers["content-length"]);
    if (declared > maxBytes) {
      reject(tooLarge()); // first: destroying emits "aborted", which must not win
      return void res.destroy();
    }
    const chunks: Buffer[] = [];
    let got = 0;
    res.on("data", (chunk: Buffer) => {
      got += chunk.length;
      if (got > maxBytes) {
        reject(tooLarge());
        res.destroy();
        return;
      }
      chunks.push(chunk);
    });
    res.on("end", () => resolve(Buffer.concat(chunks)));
    res.on("error", reject);
    res.on("aborted", () => reject(new HttpError("response aborted")));
  });
}

export async function request(url: string, options: RequestOptions = {}): Promise<BufferedResponse> {
  const res = await openRequest(url, options);
  const body = await readBody(res, options.maxBytes);
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

/** Reads `{error:{code,message}}` from an error answer, falling back to the raw text. */
export function errorMessage(res: BufferedResponse): string {
  const text = res.body.toString("utf8");
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error) return `${res.status} ${parsed.error.code ?? ""}: ${parsed.error.message ?? ""}`.trim();
  } catch {
    /* not JSON */
  }
  return `${res.status} ${text.slice(0, 200)}`.trim();
}
