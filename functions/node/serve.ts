/**
 * The Node HTTP server: the app's listener (@hono/node-server) behind the release long-poll fast
 * path (node/feed-long-poll.ts), which takes the held polls and hands everything else on.
 */
import { getRequestListener } from "@hono/node-server";
import { createServer, type Server, type ServerOptions } from "node:http";
import type { AppDeps } from "../core/ports";
import { withFeedLongPoll } from "./feed-long-poll";

export function createNodeServer(app: { fetch: (req: Request, env: any) => Response | Promise<Response> }, deps: AppDeps, serverOptions: ServerOptions = {}): Server {
  return createServer(serverOptions, withFeedLongPoll(deps, getRequestListener(app.fetch)));
}
