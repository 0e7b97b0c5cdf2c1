import { OpenAPIHono } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import type { Context } from "hono";
import { requireBiz } from "./core/bizs";
import type { AppDeps } from "./core/ports";
import type { AppEnv } from "./env";
import { requireAdmin } from "./http/auth";
import { limitBody } from "./http/body-limit";
import { ApiError, renderError } from "./http/errors";
import { IdParam, MAX_INT32 } from "./http/input";
import { router } from "./http/openapi";
import { referencePage } from "./http/reference";
import { auditRoutes } from "./routes/audit";
import { consoleRoutes } from "./routes/console";
import { bizRoutes } from "./routes/bizs";
import { clientRoutes } from "./routes/clients";
import { credentialRoutes } from "./routes/credentials";
import { feedRoutes } from "./routes/feed";
import { scriptRoutes } from "./routes/scripts";
import { metricsRoutes } from "./routes/metrics";
import { webhookRoutes } from "./routes/webhooks";
import { groupRoutes } from "./routes/groups";
import { publishRoutes } from "./routes/publishes";
import { hookRoutes } from "./routes/hooks";
import { releaseRoutes } from "./routes/releases";
import { rolloutRoutes } from "./routes/rollouts";
import { serviceRoutes } from "./routes/services";
import { blobRoutes } from "./routes/blobs";
import { fileRoutes } from "./routes/files";
import { kvRoutes } from "./routes/kvs";
import { validatorRoutes } from "./routes/validators";

/** Deps for a request: fixed on Node, built per request on Workers (a Postgres pool per request). */
export type DepsSource = AppDeps | ((c: Context<AppEnv>) => AppDeps | Promise<AppDeps>);

/** Raw-body upload routes get the file limit; everything else the JSON limit. */
const isUpload = (path: string) => /\/blobs$|\/files\/content$/.test(path);

/**
 * What one listener serves: `all` (the default; the Worker and a single-port Node server), or `feed`:
 * the agents' routes only (`/feed/v1/*`, `/healthz`), for the Node server's fleet-facing port when
 * the console and admin API have their own (`EDGECONF_API_PORT`, README "Two listeners").
 */
export type AppSurface = "all" | "feed";

/**
 * The fleet-facing listener's own paths; decided on the path Hono routes on (percent-decoded, dot
 * segments resolved), and by node/serve.ts on the WHATWG-parsed path before it invites a body.
 */
export const onFeedSurface = (path: string) => path === "/healthz" || path.startsWith("/feed/");

export function createApp(source: DepsSource, options: { surface?: AppSurface } = {}) {
  const app = new OpenAPIHono<AppEnv>();
  const feedOnly = options.surface === "feed";

  app.use("*", async (c, next) => {
    c.set("requestId", c.req.header("x-request-id")?.slice(0, 64) || crypto.randomUUID());
    // Set before the handler runs, so it is part of the response as built; setting it afterwards
    // makes Hono copy every response into a stream-backed one (slow for 10,000 woken long-polls).
    c.header("X-Request-Id", c.var.requestId);
    // Refused before deps are built: the fleet's port never reaches an admin route, whatever the token.
    if (feedOnly && !onFeedSurface(c.req.path))
      throw new ApiError("not_found", `no route for ${c.req.method} ${c.req.path} on this port: it serves the agents' feed (/feed/v1) only; the console and the admin API listen on the API port (EDGECONF_API_PORT)`);
    if (feedOnly) c.set("agentsOnly", true);
    c.set("deps", typeof source === "function" ? await source(c) : source);
    await next();
  });

  app.use("*", limitBody((c) => (isUpload(c.req.path) ? c.var.deps.limits.maxFileBytes : c.var.deps.limits.maxJsonBytes)));

  app.get("/healthz", async (c) => {
    try {
      await c.var.deps.db.execute(sql`select 1`);
      return c.json({ status: "ok" });
    } catch {
      return c.json({ status: "unavailable", error: { code: "internal", message: "database does not answer" } }, 503);
    }
  });

  const api = router();
  api.use("*", async (c, next) => {
    // Signed webhook deliveries carry no bearer token; the docs are public.
    if (/^\/api\/v1\/(webhooks\/[^/]+|openapi\.json|reference)$/.test(c.req.path)) return next();
    return requireAdmin(c, next);
  });
  api.use("/bizs/:biz/*", async (c, next) => {
    const biz = IdParam.safeParse(c.req.param("biz"));
    if (!biz.success) throw new ApiError("invalid_argument", `biz: must be a positive integer up to ${MAX_INT32}`);
    await requireBiz(c.var.deps.db, biz.data);
    await next();
  });
  api.route("/", bizRoutes);
  api.route("/", scriptRoutes);
  api.route("/", groupRoutes);
  api.route("/", publishRoutes);
  api.route("/", hookRoutes);
  api.route("/", releaseRoutes);
  api.route("/", rolloutRoutes);
  api.route("/", serviceRoutes);
  api.route("/", blobRoutes);
  api.route("/", fileRoutes);
  api.route("/", kvRoutes);
  api.route("/", validatorRoutes);
  api.route("/", credentialRoutes);
  api.route("/", clientRoutes);
  api.route("/", webhookRoutes);
  api.route("/", auditRoutes);

  api.get("/reference", (c) => c.html(referencePage));
  app.route("/api/v1", api);
  app.route("/", consoleRoutes);
  app.route("/", feedRoutes);
  app.route("/", metricsRoutes);
  // On the root app, so the document covers the admin API and the agents' feed with full paths.
  app.doc31("/api/v1/openapi.json", {
    openapi: "3.1.0",
    info: { title: "edgeconf", version: "1.0.0", description: "Configuration releases with versioned pre/post scripts." },
    security: [{ bearer: [] }],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });

  app.notFound((c) => c.json({ error: { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}`, requestId: c.var.requestId ?? "" } }, 404));
  app.onError((err, c) => renderError(err, c));
  return app;
}

export type App = ReturnType<typeof createApp>;
