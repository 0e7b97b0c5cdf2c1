/**
 * A man-in-the-middle between the agent and the server, for the agent's end-to-end tests
 * (re-exported by harness.ts).
 */
import http from "node:http";
import { setTimeout as delay } from "node:timers/promises";

export interface ProxyOptions {
  /** Rewrites a release body (200 answers only). */
  release?: (body: any) => any;
  /** Rewrites a blob's bytes (200 answers only). */
  blob?: (sha: string, body: Buffer) => Buffer;
  /** Runs once the server has answered a release poll, before the agent gets the answer. */
  answered?: (url: URL, status: number) => Promise<void>;
  /**
   * Like a load balancer's idle timeout: a request the server has not answered within the
   * returned milliseconds gets `504` (null: never cut). Asked anew for each request.
   */
  cutMs?: () => number | null;
  /** Holds each blob answer this many milliseconds before passing it on (a slow link). */
  blobDelayMs?: number;
  /**
   * Cuts a blob answer's connection after this many body bytes (null: pass it whole); asked
   * for each blob request with how many requests for that blob came before.
   */
  cutBlobAfter?: (sha: string, earlier: number) => number | null;
}

export interface Proxy {
  addr: string;
  /** The release polls seen so far (path and query). */
  polls: URL[];
  /** How many requests were cut with 504. */
  cuts: () => number;
  /** Each blob request's `Range` header (undefined: none), in order, by blob. */
  ranges: Map<string, (string | undefined)[]>;
  close: () => Promise<void>;
}

/**
 * A man-in-the-middle between agent and server, to test what the server never sends: a manifest
 * with `../`, bytes that do not match their hash, a proxy that cuts long requests; or to look at
 * the server between its answer and the agent's next step (`answered`).
 */
export async function startProxy(target: string, tamper: ProxyOptions = {}): Promise<Proxy> {
  const upstream = new URL(target);
  const polls: URL[] = [];
  const ranges = new Map<string, (string | undefined)[]>();
  let cuts = 0;
  const server = http.createServer((req, res) => {
    const isRelease = /\/release(\?|$)/.test(req.url ?? "");
    const blobMatch = /\/blobs\/([0-9a-f]{64})/.exec(req.url ?? "");
    const url = new URL(req.url ?? "/", "http://proxy");
    if (isRelease) polls.push(url);
    let cutAfter: number | null = null;
    if (blobMatch) {
      const seen = ranges.get(blobMatch[1]) ?? [];
      cutAfter = tamper.cutBlobAfter?.(blobMatch[1], seen.length) ?? null;
      ranges.set(blobMatch[1], [...seen, req.headers.range]);
    }
    const headers = { ...req.headers };
    if (tamper.blob && blobMatch) delete headers.range;
    const cutMs = tamper.cutMs?.() ?? null;
    const timer =
      cutMs === null
        ? undefined
        : setTimeout(() => {
            cuts++;
            up.destroy();
            res.writeHead(504, { "content-type": "text/html" }).end("<html><body>504 Gateway Time-out</body></html>");
          }, cutMs);
    const up = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers }, async (upRes) => {
      clearTimeout(timer);
      if (isRelease && tamper.answered) await tamper.answered(url, upRes.statusCode ?? 0);
      if (blobMatch && tamper.blobDelayMs) await delay(tamper.blobDelayMs);
      const rewrite = (isRelease && tamper.release && upRes.statusCode === 200) || (blobMatch && tamper.blob && upRes.statusCode === 200);
      if (cutAfter !== null) {
        // Half the body, then the connection dies mid-transfer (as a dropped link does).
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        let sent = 0;
        upRes.on("data", (chunk: Buffer) => {
          if (sent >= cutAfter!) return;
          const part = chunk.subarray(0, cutAfter! - sent);
          sent += part.length;
          res.write(part, () => {
            if (sent >= cutAfter!) res.socket?.destroy();
          });
        });
        return;
      }
      if (!rewrite) {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      upRes.on("data", (c) => chunks.push(c));
      upRes.on("end", () => {
        let body: Buffer = Buffer.concat(chunks);
        if (isRelease) body = Buffer.from(JSON.stringify(tamper.release!(JSON.parse(body.toString("utf8")))));
        else body = tamper.blob!(blobMatch![1], body);
        const outHeaders = { ...upRes.headers, "content-length": String(body.length) };
        delete outHeaders["transfer-encoding"];
        res.writeHead(upRes.statusCode!, outHeaders);
        res.end(body);
      });
    });
    up.on("error", () => {
      clearTimeout(timer);
      if (!res.headersSent) res.writeHead(502).end();
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    addr: `127.0.0.1:${port}`,
    polls,
    ranges,
    cuts: () => cuts,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
