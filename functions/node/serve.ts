/**
 * The Node HTTP server: the app's listener (@hono/node-server) behind the release long-poll fast
 * path (node/feed-long-poll.ts), which takes the held polls and hands everything else on.
 */
import { getRequestListener } from "@hono/node-server";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { randomUUID } from "node:crypto";
import { createServer, maxHeaderSize as nodeMaxHeaderSize, STATUS_CODES, type Server, type ServerOptions } from "node:http";
import type { Duplex } from "node:stream";
import type { AppDeps } from "../core/ports";
import { onFeedSurface } from "../app";
import { errorAnswer } from "../http/errors";
import { withFeedLongPoll } from "./feed-long-poll";

/**
 * Request line plus headers Node takes, bytes, unless `maxHeaderSize` is given. Node's own default
 * (16 KiB) is below what the feed accepts: `labels` may be 8,192 characters, which URL-encoded
 * JSON (`{"k":"v"}` → `%7B%22k%22%3A%22v%22%7D`) makes up to ~24 KiB. With 32 KiB a poll the Worker
 * takes is taken here too, and one past the field's limit gets the app's 400 naming `labels`.
 */
export const MAX_HEADER_BYTES = 32 * 1024;

/**
 * The Node server for `app` (its `fetch`) and the fast path built on `deps`. `serverOptions` are
 * node:http's (timeouts in ms, `maxHeaderSize` in bytes, default {@link MAX_HEADER_BYTES}).
 * Requests Node's parser refuses before the app sees them are answered like the app's errors.
 */
export function createNodeServer(
  app: { fetch: (req: Request, env: any) => Response | Promise<Response> },
  deps: AppDeps,
  serverOptions: ServerOptions = {},
  { feedOnly = false }: { feedOnly?: boolean } = {},
): Server {
  const options = { maxHeaderSize: MAX_HEADER_BYTES, ...serverOptions };
  const listener = withFeedLongPoll(deps, getRequestListener(app.fetch), { agentsOnly: feedOnly });
  const server = createServer(options, listener);
  server.on("clientError", clientErrorHandler(options.maxHeaderSize ?? nodeMaxHeaderSize));
  // `Expect: 100-continue` (Node answers 100 unless told otherwise): the fleet's listener invites a
  // body only to its own paths; anything else gets the app's final answer (404) without it.
  if (feedOnly)
    server.on("checkContinue", (req, res) => {
      if (onFeedSurface(new URL(req.url ?? "/", "http://h").pathname)) res.writeContinue();
      listener(req, res);
    });
  return server;
}

/** What Node's parser (or its receive timeouts) refused, as status and message; the code is the app's mapping of the status. */
function refusal(err: Error & { code?: string; reason?: string }, maxHeaderBytes: number): { status: ContentfulStatusCode; message: string } {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, message: `request line and headers larger than ${Math.floor(maxHeaderBytes / 1024)} KB: send long values (such as labels) shorter` };
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return { status: 413, message: "chunk extensions of the request body too large" };
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return { status: 408, message: "request: headers or body did not arrive in time" };
    default:
      return { status: 400, message: `request: not valid HTTP/1.1 (${err.reason ?? err.code ?? "parse error"})` };
  }
}

/**
 * The server's 'clientError' listener. Without one Node writes a bare status line and no body
 * (e.g. `431` with nothing to read); every answer here carries `{error:{code,message,requestId}}`
 * like the app's, then closes the connection, as the parser cannot go on after such an error.
 */
function clientErrorHandler(maxHeaderBytes: number) {
  return (err: Error & { code?: string; reason?: string }, socket: Duplex) => {
    // Nothing can be answered on a reset or already-answered socket, nor once a response has begun
    // (the bytes would land inside it). Node calls this again for data arriving after our answer.
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent) return void socket.destroy();
    const { status, message } = refusal(err, maxHeaderBytes);
    const a = errorAnswer(new HTTPException(status, { message }), { requestId: randomUUID(), method: "", path: "" });
    const body = Buffer.from(JSON.stringify(a.body));
    const head = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status]}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nX-Request-Id: ${a.body.error.requestId}\r\nConnection: close\r\n\r\n`;
    // end(), not destroy(): the answer goes out before the FIN, so the client reads it.
    socket.end(Buffer.concat([Buffer.from(head), body]));
  };
}
