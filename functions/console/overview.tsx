/** @jsxImportSource hono/jsx */
/**
 * A service's fleet at a glance: clients by status, by current version, failure reasons, agent
 * versions, and the publish history as a timeline. Server-rendered; bars are inline SVG (their
 * geometry is SVG attributes, their colours come from the stylesheet), so the page runs under the
 * console's CSP with no script and no style attribute, and reflows on a narrow screen.
 */
import { Hono } from "hono";
import { clientState, listClients, type ClientState } from "../core/clients";
import { listPublishes } from "../core/publishes";
import { loadService } from "../core/services";
import { bizOf, commonProps, type ConsoleEnv } from "./env";
import { Empty, Layout, when } from "./layout";
import { audience } from "./publish";
import { appOf, ServiceHeader, serviceUrl } from "./service-common";
import { StateBadge, stateMeaning } from "./clients";
import { OpenRolloutBanner } from "./rollout-common";

/** At most this many clients are counted; the page says so when a fleet is larger. */
const MAX_CLIENTS = 5000;
const STATES: ClientState[] = ["applied", "failed", "pending", "offline"];

type Row = { label: string; count: number; cls?: string; note?: string };

/** Counts by key, largest first (ties by label), the rest folded into "other" past `top`. */
function tally(keys: string[], top = 8): Row[] {
  const m = new Map<string, number>();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  const rows = [...m].map(([label, count]) => ({ label, count })).sort((a, b) => b.count - a.count || a.label.localeCompare(b.label));
  if (rows.length <= top) return rows;
  const rest = rows.slice(top - 1).reduce((n, r) => n + r.count, 0);
  return [...rows.slice(0, top - 1), { label: `${rows.length - top + 1} others`, count: rest }];
}

/** A horizontal bar chart: one labelled row per entry, the bar's length its share of `max`. */
const Bars = (p: { rows: Row[]; max: number; testid: string }) => (
  <table class="bars" data-chart={p.testid}>
    <tbody>
      {p.rows.map((r) => (
        <tr data-label={r.label}>
          <th scope="row">{r.label}{r.note ? <span class="small muted"> {r.note}</span> : null}</th>
          <td class="bar-cell">
            <svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label={`${r.label}: ${r.count}`}>
              <rect x="0" y="0" width="100" height="10" class="track" />
              <rect x="0" y="0" width={String(p.max ? Math.max((r.count / p.max) * 100, r.count ? 1 : 0) : 0)} height="10" class={r.cls ?? "fill"} />
            </svg>
          </td>
          <td class="num" data-count>{r.count}</td>
        </tr>
      ))}
    </tbody>
  </table>
);

/** One bar split by state: the fleet's shape in one line. */
const StateStrip = ({ counts, total }: { counts: Record<ClientState, number>; total: number }) => {
  let x = 0;
  return (
    <svg class="strip" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label={STATES.map((s) => `${s} ${counts[s]}`).join(", ")}>
      {STATES.map((s) => {
        const w = total ? (counts[s] / total) * 100 : 0;
        const rect = <rect x={String(x)} y="0" width={String(w)} height="6" class={`state-${s}`} />;
        x += w;
        return rect;
      })}
    </svg>
  );
};

export const overviewRoutes = new Hono<ConsoleEnv>().get("/ui/bizs/:biz/services/:app/overview", async (c) => {
  const biz = bizOf(c);
  const app = appOf(c);
  const s = await loadService(c.var.deps.db, biz, app);
  const [clients, history] = await Promise.all([
    listClients(c.var.deps, s, { limit: MAX_CLIENTS, offset: 0 }, c.var.deps.clock()),
    listPublishes(c.var.deps.db, biz, app, { limit: 30, offset: 0 }),
  ]);
  const items = clients.items.map((k) => ({ ...k, state: clientState(k) }));
  const counts = Object.fromEntries(STATES.map((st) => [st, items.filter((k) => k.state === st).length])) as Record<ClientState, number>;
  const total = items.length;
  const byVersion = tally(items.map((k) => k.currentRelease?.name ?? "none yet"));
  const failures = tally(items.filter((k) => k.state === "failed").map((k) => (k.lastEvent?.message || "no reason given").slice(0, 160)), 6);
  const agents = tally(items.map((k) => (k.agentVersion ? `${k.agentVersion}${k.mode ? ` (${k.mode})` : ""}` : "unknown")));
  const latestToAll = history.items.find((h) => h.toAll);
  const base = serviceUrl(c);
  return c.html(
    <Layout title={`${app} overview`} nav="services" biz={biz} {...commonProps(c)}>
      <ServiceHeader c={c} name={s.name} configType={s.configType} memo={s.memo} tab="overview" />
      <OpenRolloutBanner c={c} biz={biz} app={app} />
      {clients.total > total ? <p class="flash">Counting the first {total} of {clients.total} clients.</p> : null}
      <section class="card" aria-labelledby="fleet">
        <h2 id="fleet">Fleet: {total} client{total === 1 ? "" : "s"}</h2>
        {total ? (
          <>
            <StateStrip counts={counts} total={total} />
            <ul class="legend">
              {STATES.map((st) => (
                <li data-state-count={st}>
                  <StateBadge state={st} /> <strong>{counts[st]}</strong> <span class="small muted">{stateMeaning[st]}</span>
                </li>
              ))}
            </ul>
            {counts.failed ? <p><a href={`${base}/clients?status=FAILED`}>See the failing clients →</a></p> : null}
          </>
        ) : (
          <Empty>No client yet: agents appear here when they first ask for their version.</Empty>
        )}
      </section>
      <div class="charts">
        <section class="card">
          <h2>Clients by current version</h2>
          {total ? <Bars testid="versions" max={Math.max(...byVersion.map((r) => r.count))} rows={byVersion.map((r) => ({ ...r, note: latestToAll && r.label === latestToAll.version.name ? "· published to all" : undefined }))} /> : <Empty>—</Empty>}
        </section>
        <section class="card">
          <h2>Clients by status</h2>
          {total ? <Bars testid="states" max={total} rows={STATES.map((st) => ({ label: st, count: counts[st], cls: `state-${st}` }))} /> : <Empty>—</Empty>}
        </section>
        <section class="card">
          <h2>Failure reasons</h2>
          {failures.length ? <Bars testid="failures" max={Math.max(...failures.map((r) => r.count))} rows={failures.map((r) => ({ ...r, cls: "state-failed" }))} /> : <Empty>No client is failing.</Empty>}
        </section>
        <section class="card">
          <h2>Agent versions</h2>
          {total ? <Bars testid="agents" max={Math.max(...agents.map((r) => r.count))} rows={agents} /> : <Empty>—</Empty>}
        </section>
      </div>
      <section class="card">
        <h2 id="timeline">Publish history</h2>
        {history.items.length ? (
          <ol class="timeline" data-chart="timeline">
            {history.items.map((h) => (
              <li class={h.rollback ? "rollback" : h.toAll ? "all" : "groups"} data-publish={h.version.name}>
                <time datetime={h.createdAt}>{when(h.createdAt)}</time>
                <div>
                  <a href={`${base}/versions/${h.version.id}`}><strong>{h.version.name}</strong></a> to {audience(h.groups)}
                  {h.rollback ? <span class="badge state-pending">rollback</span> : null}
                  <div class="small muted">by {h.createdBy}{h.memo ? ` · ${h.memo}` : ""}</div>
                </div>
              </li>
            ))}
          </ol>
        ) : (
          <Empty>Never published.</Empty>
        )}
      </section>
    </Layout>,
  );
});
