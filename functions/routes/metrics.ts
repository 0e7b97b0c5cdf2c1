import { Hono } from "hono";
import { tokenCacheFor } from "../core/token-cache";
import { requireAdmin } from "../http/auth";
import type { AppEnv } from "../env";

/** Prometheus text for scrapers (admin bearer token): what this process holds right now. */
export const metricsRoutes = new Hono<AppEnv>().get("/metrics", requireAdmin, (c) => {
  const lines: string[] = [];
  const waiting = c.var.deps.notifier.waiting?.();
  if (waiting !== undefined) {
    lines.push("# HELP edgeconf_feed_waiting Long-polls held by this process, waiting for a publish.");
    lines.push("# TYPE edgeconf_feed_waiting gauge");
    lines.push(`edgeconf_feed_waiting ${waiting}`);
  }
  const { throttle } = tokenCacheFor(c.var.deps);
  lines.push("# HELP edgeconf_auth_failures_total Requests and sign-ins with an unknown or revoked token, since start.");
  lines.push("# TYPE edgeconf_auth_failures_total counter");
  lines.push(`edgeconf_auth_failures_total ${throttle.failures}`);
  lines.push("# HELP edgeconf_auth_throttled_total Requests refused with 429 because their address failed too often, since start.");
  lines.push("# TYPE edgeconf_auth_throttled_total counter");
  lines.push(`edgeconf_auth_throttled_total ${throttle.throttled}`);
  return c.text(lines.join("\n") + "\n", 200, { "Content-Type": "text/plain; version=0.0.4" });
});
