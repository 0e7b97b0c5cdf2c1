/** @jsxImportSource hono/jsx */
/**
 * A service's rollouts: the list, and one rollout's page with a bar per wave (succeeded / failed /
 * pending / offline, inline SVG coloured by the stylesheet: no style attribute, no script), the
 * failing hosts with their reason and hook output tail, and the controls (pause, resume, advance,
 * abort, abort with rollback). Each control answers with a message saying what it did.
 */
import { Hono } from "hono";
import { z } from "zod";
import { controlRollout, getRollout, listRollouts, type Control } from "../core/rollouts";
import { loadService } from "../core/services";
import { bizOf, commonProps, done, idParam, submit, type CC, type ConsoleEnv } from "./env";
import { ConfirmButton, Csrf, Empty, FormError, Layout, when, type FormErrors } from "./layout";
import { OPEN_ROLLOUT_STATES, RolloutState, rolloutsUrl, settingsLine } from "./rollout-common";
import { appOf, ServiceHeader, serviceUrl } from "./service-common";

type Detail = Awaited<ReturnType<typeof getRollout>>;
type Wave = Detail["progress"][number];
type Status = 200 | 400 | 404 | 409 | 413 | 422;

const PARTS = [
  ["succeeded", "state-applied"],
  ["failed", "state-failed"],
  ["pending", "state-pending"],
  ["offline", "state-offline"],
] as const;

/** One wave's bar: its clients split by outcome, widths in percent of the wave's targeted clients. */
const WaveBar = ({ w }: { w: Wave }) => {
  let x = 0;
  return (
    <svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label={PARTS.map(([k]) => `${k} ${w[k]}`).join(", ")}>
      <rect x="0" y="0" width="100" height="10" class="track" />
      {PARTS.map(([k, cls]) => {
        const width = w.targeted ? (w[k] / w.targeted) * 100 : 0;
        const rect = width ? <rect x={String(x)} y="0" width={String(width)} height="10" class={cls} /> : null;
        x += width;
        return rect;
      })}
    </svg>
  );
};

const WaveBars = ({ r }: { r: Detail }) => (
  <table class="bars waves" data-chart="waves">
    <tbody>
      {r.progress.map((w) => (
        <tr data-wave={String(w.index + 1)} data-released={String(w.released)} class={w.index === r.currentWave && OPEN_ROLLOUT_STATES.includes(r.state) ? "current" : ""}>
          <th scope="row">
            Wave {w.index + 1} · {w.percent}%
            <div class="small muted">{w.released ? `released ${when(w.releasedAt)}` : "not released yet"}</div>
          </th>
          <td class="bar-cell"><WaveBar w={w} /></td>
          <td class="num small" data-counts>
            <span data-count="succeeded">{w.succeeded}</span> ok · <span data-count="failed">{w.failed}</span> failed · <span data-count="pending">{w.pending}</span> pending{w.offline ? ` · ${w.offline} offline` : ""} <span class="muted">of <span data-count="targeted">{w.targeted}</span></span>
          </td>
        </tr>
      ))}
    </tbody>
  </table>
);

/** Failing hosts over every wave, each once (waves overlap: a host of wave 1 is in wave 2). */
function failingOf(r: Detail) {
  const seen = new Map<string, Wave["failing"][number]>();
  for (const w of r.progress) for (const f of w.failing) if (!seen.has(f.uid)) seen.set(f.uid, f);
  return [...seen.values()];
}

const HookCell = ({ kind, run }: { kind: string; run: { exitCode: number | null; outputTail: string } | null }) =>
  run ? (
    <div>
      <span class="small">{kind}-script exit {run.exitCode ?? "—"}</span>
      {run.outputTail ? <pre class="tail">{run.outputTail}</pre> : null}
    </div>
  ) : null;

/** The controls the rollout's state allows; abort and advance behind a confirm step. */
const Controls = ({ c, r }: { c: CC; r: Detail }) => {
  const base = `${rolloutsUrl(c)}/${r.id}`;
  const csrf = c.var.session.csrf;
  if (!OPEN_ROLLOUT_STATES.includes(r.state)) return <p class="muted">This rollout is over ({r.state.replace("_", " ")}): nothing left to control.</p>;
  const next = r.waves[r.currentWave + 1];
  return (
    <div class="actions" data-testid="rollout-controls">
      {r.state === "running" ? (
        <form method="post" action={`${base}/pause`}><Csrf token={csrf} /><button type="submit" class="secondary">Pause</button></form>
      ) : (
        <form method="post" action={`${base}/resume`}><Csrf token={csrf} /><button type="submit">Resume</button></form>
      )}
      <ConfirmButton
        id="advance"
        action={`${base}/advance`}
        csrf={csrf}
        label={next ? `Advance to wave ${r.currentWave + 2}` : "Complete"}
        confirm={next ? `Release wave ${r.currentWave + 2} (${next}% of the clients) now?` : `Complete the rollout now?`}
        detail="Without waiting for the current wave's reports, bake time or failure threshold."
      />
      <ConfirmButton id="abort" action={`${base}/abort`} csrf={csrf} label="Abort" confirm={`Abort rollout ${r.id}?`} detail={`No further wave starts; hosts already released keep ${r.version.name}.`} />
      <ConfirmButton id="abort-rollback" action={`${base}/rollback`} csrf={csrf} label="Abort and roll back" confirm={`Abort rollout ${r.id} and roll back?`} detail="The released waves' hosts get back the version they had before the rollout." />
    </div>
  );
};

async function rolloutPage(c: CC, errors?: FormErrors, status: Status = 200) {
  const biz = bizOf(c);
  const app = appOf(c);
  const s = await loadService(c.var.deps.db, biz, app);
  const r = await getRollout(c.var.deps, biz, app, idParam(c, "id") ?? 0);
  const failing = failingOf(r);
  const open = OPEN_ROLLOUT_STATES.includes(r.state);
  return c.html(
    <Layout title={`${app} rollout ${r.id}`} nav="services" biz={biz} {...commonProps(c)} refresh={open ? 5 : undefined}>
      <ServiceHeader c={c} name={s.name} configType={s.configType} memo={s.memo} tab="rollouts" />
      <p class="small"><a href={rolloutsUrl(c)}>← Rollouts</a></p>
      <h2 id="rollout" data-rollout-state={r.state}>
        Rollout {r.id} of <a href={`${serviceUrl(c)}/versions/${r.version.id}`}>{r.version.name}</a> <RolloutState state={r.state} />
      </h2>
      {r.reason ? <p data-testid="rollout-reason">{r.reason}</p> : null}
      <p class="small muted">{settingsLine(r)} · started {when(r.createdAt)} by {r.createdBy}{r.memo ? ` · ${r.memo}` : ""}{r.finishedAt ? ` · ended ${when(r.finishedAt)}` : ""}</p>
      <FormError errors={errors} />
      <section class="card">
        <h2>Waves</h2>
        <WaveBars r={r} />
        <ul class="legend small">
          <li><span class="badge state-applied">succeeded</span> reported SUCCESS</li>
          <li><span class="badge state-failed">failed</span> reported FAILED, or silent past {r.reportTimeoutSeconds} s</li>
          <li><span class="badge state-pending">pending</span> online, no report yet</li>
          <li><span class="badge state-offline">offline</span> not waited for</li>
        </ul>
        <Controls c={c} r={r} />
      </section>
      <section class="card">
        <h2 id="failing">Failing hosts</h2>
        {failing.length ? (
          <div class="scroll">
            <table data-testid="failing-hosts">
              <thead><tr><th>host</th><th>wave</th><th>reason</th><th>hooks</th><th>reported</th></tr></thead>
              <tbody>
                {failing.map((f) => (
                  <tr data-failing={f.uid}>
                    <td><code>{f.uid}</code></td>
                    <td>{f.wave + 1}</td>
                    <td>{f.reason}</td>
                    <td><HookCell kind="pre" run={f.preHook} /><HookCell kind="post" run={f.postHook} /></td>
                    <td class="small">{when(f.reportedAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty>No host has failed.</Empty>
        )}
      </section>
    </Layout>,
    status,
  );
}

const SAID: Record<string, (r: { id: number; state: string; currentWave: number; waves: number[]; version: { name: string } }) => string> = {
  pause: (r) => `Paused rollout ${r.id}: no further wave starts; hosts already released keep ${r.version.name}.`,
  resume: (r) => `Resumed rollout ${r.id}: ${r.state === "running" ? `running again at wave ${r.currentWave + 1} (${r.waves[r.currentWave]}%)` : `judged again and ${r.state.replace("_", " ")}`}.`,
  advance: (r) => (r.state === "completed" ? `Advanced rollout ${r.id}: completed, every wave released.` : `Advanced rollout ${r.id}: wave ${r.currentWave + 1} (${r.waves[r.currentWave]}%) released.`),
  abort: (r) => `Aborted rollout ${r.id}: hosts already released keep ${r.version.name}.`,
  rollback: (r) => `Aborted rollout ${r.id} and rolled back: the released hosts get their previous version again.`,
};

export const rolloutRoutes = new Hono<ConsoleEnv>()
  .get("/ui/bizs/:biz/services/:app/rollouts", async (c) => {
    const biz = bizOf(c);
    const app = appOf(c);
    const s = await loadService(c.var.deps.db, biz, app);
    const list = await listRollouts(c.var.deps.db, biz, app, { limit: 100, offset: 0 });
    return c.html(
      <Layout title={`${app} rollouts`} nav="services" biz={biz} {...commonProps(c)}>
        <ServiceHeader c={c} name={s.name} configType={s.configType} memo={s.memo} tab="rollouts" />
        <p class="muted">A rollout publishes a version wave by wave, each gated on what its hosts report. Start one from a version's page (publish form, “progressive rollout”).</p>
        {list.items.length ? (
          <div class="scroll">
            <table>
              <thead><tr><th>rollout</th><th>version</th><th>state</th><th>wave</th><th>started</th></tr></thead>
              <tbody>
                {list.items.map((r) => (
                  <tr data-rollout={String(r.id)}>
                    <td><a href={`${rolloutsUrl(c)}/${r.id}`}>rollout {r.id}</a></td>
                    <td>{r.version.name}</td>
                    <td><RolloutState state={r.state} /></td>
                    <td class="small">{r.currentWave + 1} of {r.waves.length} ({r.waves.map((w) => `${w}%`).join(", ")})</td>
                    <td class="small">{when(r.createdAt)} by {r.createdBy}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <Empty>No rollout yet.</Empty>
        )}
      </Layout>,
    );
  })
  .get("/ui/bizs/:biz/services/:app/rollouts/:id", (c) => rolloutPage(c))
  .post("/ui/bizs/:biz/services/:app/rollouts/:id/:control{pause|resume|advance|abort|rollback}", (c) => {
    const control = c.req.param("control");
    const id = idParam(c, "id") ?? 0;
    return submit(
      c,
      z.object({}),
      () => controlRollout(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), id, (control === "rollback" ? "abort" : control) as Control, { rollback: control === "rollback" }),
      (_v, errors, status) => rolloutPage(c, errors, status),
      (r) => done(c, `${rolloutsUrl(c)}/${id}`, SAID[control](r)),
    );
  });
