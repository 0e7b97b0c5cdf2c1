/**
 * The admin API as the CLI uses it: JSON calls under `/api/v1/bizs/{biz}`, raw uploads, blob
 * downloads. Built on the agent's `node:http`/`node:https` client (no undici: a CLI run stays
 * ~45 MB of memory, and the same keep-alive and timeout behaviour as the agent).
 * Every failure is a ServerError (exit 3): unreachable, or the server's `{error:{code,message}}`.
 */
import { closeIdleSockets, errorMessage, request, type BufferedResponse } from "../agent/http.js";
import { ServerError } from "./context.js";

export type Page<T> = { items: T[]; total: number; limit: number; offset: number };

export class Api {
  constructor(
    readonly url: string,
    private readonly token: string,
    readonly biz: number,
  ) {}

  /** `/api/v1/bizs/{biz}` + `path`. */
  bizPath(path: string): string {
    return `/api/v1/bizs/${this.biz}${path}`;
  }

  /** Service-scoped path: `/api/v1/bizs/{biz}/apps/{app}` + `path`. */
  appPath(app: string, path = ""): string {
    return this.bizPath(`/apps/${encodeURIComponent(app)}${path}`);
  }

  /** Sends a request to an absolute server path; any status >= 300 throws ServerError. */
  async send(method: string, path: string, body?: unknown): Promise<BufferedResponse> {
    const raw = Buffer.isBuffer(body);
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: "application/json" };
    let payload: Buffer | string | undefined;
    if (body !== undefined) {
      payload = raw ? (body as Buffer) : JSON.stringify(body);
      headers["content-type"] = raw ? "application/octet-stream" : "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    let res: BufferedResponse;
    try {
      res = await request(this.url + path, { method, headers, body: payload, timeoutMs: 120_000 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ServerError(`cannot reach the edgeconf server at ${this.url}: ${code ?? (err as Error).message}`);
    }
    if (res.status >= 300) throw new ServerError(`server refused ${method} ${path}: ${errorMessage(res)}`, res.status);
    return res;
  }

  /** A JSON call; answers the parsed body (null when empty). */
  async json<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    return (res.body.length ? JSON.parse(res.body.toString("utf8")) : null) as T;
  }

  /** Every item of a paged list (`?limit=&offset=`, answers `{items,total}`). */
  async all<T>(path: string, pageSize = 500): Promise<T[]> {
    const items: T[] = [];
    const sep = path.includes("?") ? "&" : "?";
    for (let offset = 0; ; offset += pageSize) {
      const page = await this.json<Page<T>>("GET", `${path}${sep}limit=${pageSize}&offset=${offset}`);
      items.push(...page.items);
      if (page.items.length < pageSize || items.length >= page.total) return items;
    }
  }

  /** A blob's bytes by SHA-256 (the feed's blob route; admin tokens may read every service). */
  async blob(sha256: string): Promise<Buffer> {
    return (await this.send("GET", `/feed/v1/bizs/${this.biz}/blobs/${sha256}`)).body;
  }

  /** Lets the process exit: keep-alive sockets would hold it. */
  close(): void {
    closeIdleSockets();
  }
}
