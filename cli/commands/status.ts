import { COMMON_HELP, EXIT, EXIT_HELP, required, type Command } from "../context.js";
import { allClients, failureReason, type Publish } from "../resources.js";

const HELP = `Usage: edgeconf status --app APP [--json]

The service's clients by current version and last status (online: a heartbeat or poll within
150 s), what is published, and every client whose last apply failed, with the reason.

  --app APP   the service (required)
  --json      print {published, clients} as JSON (the API's client objects)

Examples:
  edgeconf status --app nginx
  edgeconf status --app nginx --json | jq '.clients[] | select(.lastStatus=="FAILED") | .uid'

${COMMON_HELP}

${EXIT_HELP}`;

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join("  ").trimEnd());
}

export const status: Command = {
  name: "status",
  summary: "clients by version and status",
  help: HELP,
  options: { app: { type: "string" }, json: { type: "boolean" } },
  async run(ctx, values) {
    const app = required(values, "app");
    const api = ctx.api();
    const [clients, current] = await Promise.all([allClients(api, app), api.json<{ base: Publish | null; overrides: Publish[] }>("GET", api.appPath(app, "/publishes/current"))]);
    if (values.json) {
      ctx.io.out(JSON.stringify({ published: current, clients }, null, 2));
      return EXIT.OK;
    }
    const online = clients.filter((c) => c.online).length;
    ctx.io.out(`service ${app} (biz ${api.biz}): ${clients.length} clients, ${online} online`);
    const published = [...(current.base ? [current.base] : []), ...current.overrides];
    if (!published.length) ctx.io.out("published: nothing yet");
    for (const p of published) ctx.io.out(`published: ${p.version.name} to ${p.toAll ? "every client" : `groups ${p.groups.map((g) => g.name).join(", ")}`} (publish ${p.id}, ${p.createdAt})`);
    if (!clients.length) return EXIT.OK;
    const buckets = new Map<string, { version: string; status: string; online: number; offline: number }>();
    for (const c of clients) {
      const version = c.currentRelease?.name ?? "(none)";
      const st = c.lastStatus ?? "-";
      const key = `${version}\u0000${st}`;
      const b = buckets.get(key) ?? { version, status: st, online: 0, offline: 0 };
      if (c.online) b.online++;
      else b.offline++;
      buckets.set(key, b);
    }
    const rows = [...buckets.values()].sort((a, b) => b.online + b.offline - (a.online + a.offline) || a.version.localeCompare(b.version));
    ctx.io.out("");
    for (const line of table([["VERSION", "LAST STATUS", "ONLINE", "OFFLINE"], ...rows.map((r) => [r.version, r.status, String(r.online), String(r.offline)])])) ctx.io.out(line);
    const failing = clients.filter((c) => c.lastStatus === "FAILED");
    if (failing.length) {
      ctx.io.out("\nlast apply failed:");
      for (const c of failing) ctx.io.out(`  ${c.uid}${c.online ? "" : " (offline)"}: ${c.lastEvent?.release?.name ?? "?"}: ${failureReason(c.lastEvent)}`);
    }
    return EXIT.OK;
  },
};
