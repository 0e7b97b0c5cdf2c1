/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { clientState, listClients, type ClientState, type ClientStatus } from "../core/clients";
import { loadService } from "../core/services";
import { bizOf, commonProps, type ConsoleEnv } from "./env";
import { Empty, Layout, when } from "./layout";
import { appOf, ServiceHeader, serviceUrl } from "./service-common";

type HookRun = { exitCode: number | null; durationMs: number; outputTail: string } | null;

const Hook = ({ kind, run }: { kind: string; run: HookRun }) =>
  run ? (
    <div class="small" data-hook={kind}>
      {kind}: exit <strong data-exit={kind}>{run.exitCode ?? "killed"}</strong> · {run.durationMs} ms
      {run.outputTail ? <pre class="tail">{run.outputTail}</pre> : null}
    </div>
  ) : (
    <div class="small muted">{kind}: not run</div>
  );

/** `k=v,k2=v2` into an object; malformed pairs are ignored (this is a filter box). */
function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (s ?? "").split(",")) {
    const [k, ...v] = pair.split("=");
    if (k?.trim() && v.length) out[k.trim()] = v.join("=").trim();
  }
  return out;
}

/** What each state means, shown as the badge's tooltip and in the legend. */
export const stateMeaning: Record<ClientState, string> = {
  applied: "runs the version published to it",
  failed: "its last attempt at the version published to it failed",
  pending: "has not applied the version published to it yet",
  offline: "no poll or heartbeat for 150 s",
};

/** The one status a client shows (see `clientState`): the same word and colour everywhere. */
export const StateBadge = ({ state }: { state: ClientState }) => (
  <span class={`badge state-${state}`} data-state={state} title={stateMeaning[state]}>{state}</span>
);

const statuses: ClientStatus[] = ["SUCCESS", "FAILED", "PROCESSING"];

export const clientRoutes = new Hono<ConsoleEnv>().get("/ui/bizs/:biz/services/:app/clients", async (c) => {
  const biz = bizOf(c);
  const app = appOf(c);
  const s = await loadService(c.var.deps.db, biz, app);
  const q = c.req.query();
  const status = statuses.find((x) => x === q.status);
  const online = q.online === "yes" ? true : q.online === "no" ? false : undefined;
  const labels = parseLabels(q.label);
  const list = await listClients(c.var.deps, s, { status, labels, online, limit: 200, offset: 0 }, c.var.deps.clock());
  return c.html(
    <Layout title={`${app} clients`} nav="services" biz={biz} refresh={10} {...commonProps(c)}>
      <ServiceHeader c={c} name={s.name} configType={s.configType} tab="clients" />
      <form method="get" action={`${serviceUrl(c)}/clients`} class="filters">
        <div>
          <label for="status">Last status</label>
          <select id="status" name="status">
            <option value="">any</option>
            {statuses.map((x) => <option value={x} selected={x === status}>{x}</option>)}
          </select>
        </div>
        <div>
          <label for="online">Online</label>
          <select id="online" name="online">
            <option value="">any</option>
            <option value="yes" selected={online === true}>online</option>
            <option value="no" selected={online === false}>offline</option>
          </select>
        </div>
        <div><label for="label">Labels</label><input type="text" id="label" name="label" value={q.label ?? ""} placeholder="env=prod,zone=a" /></div>
        <div><button type="submit" class="secondary">Filter</button></div>
      </form>
      <p class="small muted">{list.total} client(s); this page refreshes itself every 10 seconds.</p>
      <div class="scroll">
        <table>
          <thead><tr><th>client</th><th>current → target</th><th>status</th><th>last event</th><th>scripts</th></tr></thead>
          <tbody>
            {list.items.map((k) => (
              <tr data-client={k.uid}>
                <td>
                  <strong>{k.uid}</strong>
                  <div class="small muted">{Object.entries(k.labels).map(([a, b]) => `${a}=${b}`).join(", ")}</div>
                  <div class="small muted">{k.mode} · agent {k.agentVersion} {k.ip}</div>
                </td>
                <td>
                  {k.currentRelease?.name ?? "none"} → {k.targetRelease?.name ?? "none"}
                </td>
                <td>
                  <StateBadge state={clientState(k)} />
                  <div class="small muted">{k.online ? "online" : "offline"} · seen {when(k.lastHeartbeatAt)}</div>
                </td>
                <td>
                  {k.lastEvent ? (
                    <>
                      <span class="small" data-event-status>{k.lastEvent.status}</span> {k.lastEvent.release?.name ?? ""}
                      <div class="small muted">{when(k.lastEvent.createdAt)} · {k.lastEvent.timings.totalMs ?? "?"} ms · {k.lastEvent.filesCount} files</div>
                      {k.lastEvent.message ? <div class="small field-error">{k.lastEvent.message}</div> : null}
                    </>
                  ) : (
                    <span class="muted">no event yet</span>
                  )}
                </td>
                <td>
                  {k.lastEvent ? (
                    <>
                      <Hook kind="pre" run={k.lastEvent.preHook} />
                      <Hook kind="post" run={k.lastEvent.postHook} />
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.items.length === 0 ? <Empty>No client matches. Agents appear here when they first ask for their version.</Empty> : null}
    </Layout>,
  );
});
