import { Hono } from "hono";
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
  return c.text(lines.join("\n") + "\n", 200, { "Content-Type": "text/plain; version=0.0.4" });
});
