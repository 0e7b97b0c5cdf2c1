/**
 * The web console at `/`: server-rendered pages that call the same domain verbs as the API.
 * Everything under `/ui` needs a session; every POST carries the session's CSRF token.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { requireBiz } from "../core/bizs";
import { DomainError, invalidInputCode } from "../core/errors";
import { IdParam } from "../http/input";
import { consoleCss, consoleJs, faviconSvg } from "../console/assets";
import { authRoutes, logoutRoute } from "../console/auth";
import { bizRoutes } from "../console/bizs";
import { credentialRoutes } from "../console/credentials";
import { auditRoutes } from "../console/audit";
import type { ConsoleEnv } from "../console/env";
import { errorPage } from "../console/errors";
import { scriptRoutes } from "../console/scripts";
import { scriptVersionRoutes } from "../console/script-versions";
import { serviceRoutes } from "../console/services";
import { fileRoutes } from "../console/files";
import { kvRoutes } from "../console/kvs";
import { clientRoutes } from "../console/clients";
import { overviewRoutes } from "../console/overview";
import { groupRoutes } from "../console/groups";
import { publishRoutes } from "../console/publish";
import { rolloutRoutes } from "../console/rollouts";
import { webhookRoutes } from "../console/webhooks";
import { csrfMatches, currentSession } from "../console/session";
import { errorFields, log } from "../core/log";

const securityHeaders = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

/** A cross-site POST from a browser carries a foreign Origin; refuse it before anything else. */
function sameOrigin(url: string, origin: string | undefined): boolean {
  if (!origin || origin === "null") return !origin;
  try {
    return new URL(origin).host === new URL(url).host;
  } catch {
    return false;
  }
}

const asset = (body: string, type: string) => () =>
  new Response(body, { headers: { "content-type": type, "cache-control": "public, max-age=300", "x-content-type-options": "nosniff" } });

/** The console's paths; its middleware never runs for `/api/v1`, `/feed/v1` or `/healthz`. */
const consolePaths = ["/", "/login", "/logout", "/ui/*"];

export const consoleRoutes = new Hono<ConsoleEnv>();

for (const p of consolePaths) {
  consoleRoutes.use(p, async (c, next) => {
    if (c.req.method === "POST" && !sameOrigin(c.req.url, c.req.header("origin"))) {
      return c.html(errorPage("Refused", "This form was posted from another site."), 403);
    }
    await next();
    for (const [k, v] of Object.entries(securityHeaders)) c.header(k, v);
    if (!c.req.path.startsWith("/ui/assets/")) c.header("Cache-Control", "no-store");
  });
}
consoleRoutes.get("/ui/assets/console.css", asset(consoleCss, "text/css; charset=utf-8"));
consoleRoutes.get("/ui/assets/console.js", asset(consoleJs, "text/javascript; charset=utf-8"));
consoleRoutes.get("/favicon.ico", asset(faviconSvg, "image/svg+xml"));
consoleRoutes.route("/", authRoutes);

/** Session and CSRF for everything else the console serves. */
const guard = createMiddleware<ConsoleEnv>(async (c, next) => {
  const session = await currentSession(c);
  if (!session) {
    if (c.req.method === "GET") return c.redirect("/login", 303);
    return c.html(errorPage("Signed out", "Your session has ended; sign in again."), 403);
  }
  c.set("session", session);
  c.set("actor", session.actor);
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    const body = await c.req.parseBody();
    if (!csrfMatches(session.csrf, body._csrf)) {
      return c.html(errorPage("Refused", "This form is missing its security token (CSRF) or the token is stale; reload the page and try again."), 403);
    }
  }
  await next();
});

const guarded = new Hono<ConsoleEnv>();
guarded.use("/ui/*", guard);
guarded.use("/logout", guard);
guarded.use("/ui/bizs/:biz/*", async (c, next) => {
  const biz = IdParam.safeParse(c.req.param("biz"));
  if (!biz.success) throw new DomainError("not_found", `biz ${c.req.param("biz")} not found`);
  await requireBiz(c.var.deps.db, biz.data);
  await next();
});
guarded.route("/", logoutRoute);
guarded.route("/", bizRoutes);
guarded.route("/", scriptRoutes);
guarded.route("/", scriptVersionRoutes);
guarded.route("/", fileRoutes);
guarded.route("/", kvRoutes);
guarded.route("/", clientRoutes);
guarded.route("/", overviewRoutes);
guarded.route("/", publishRoutes);
guarded.route("/", rolloutRoutes);
guarded.route("/", webhookRoutes);
guarded.route("/", groupRoutes);
guarded.route("/", serviceRoutes);
guarded.route("/", credentialRoutes);
guarded.route("/", auditRoutes);

guarded.onError((err, c) => {
  if (err instanceof DomainError && err.code === "not_found") return c.html(errorPage("Not found", err.message), 404);
  if (err instanceof DomainError) return c.html(errorPage("Refused", err.message), 422);
  if (invalidInputCode(err)) return c.html(errorPage("Refused", "A value in this request is out of range or holds characters that cannot be stored."), 400);
  log("ERROR", "console error", { path: c.req.path, ...errorFields(err) });
  return c.html(errorPage("Something went wrong", "The server could not show this page; the error is in the server log."), 500);
});
consoleRoutes.route("/", guarded);
