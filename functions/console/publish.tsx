/** @jsxImportSource hono/jsx */
/**
 * Publishing a version: the form on a version's page, the review page (what goes out, to whom,
 * how — at once or as a progressive rollout — against what is published now), and the publish history.
 */
import { Hono } from "hono";
import { z } from "zod";
import { listGroups } from "../core/groups";
import { currentPublishes, listPublishes, publish } from "../core/publishes";
import { createRollout } from "../core/rollouts";
import { diffReleases, getRelease } from "../core/releases";
import type { ServiceRow } from "../core/services";
import { bizOf, commonProps, done, idParam, submit, type CC, type ConsoleEnv } from "./env";
import { Csrf, Empty, FieldError, FormError, Layout, when, type FormErrors } from "./layout";
import { appOf, ReleaseDiffView, serviceUrl, VersionContents } from "./service-common";
import { ValidationPassed } from "./validators";
import { RolloutFields, rolloutSettingsOf, rolloutsUrl, settingsLine, SettingsHidden, wantsRollout } from "./rollout-common";

type Group = { id: number; name: string; selector: string; percent: number | null };

export const audience = (g: Group[]) => (g.length ? g.map((x) => `${x.name} (${x.selector || "all"}${x.percent != null ? `, ${x.percent}%` : ""})`).join(", ") : "all clients");

const serviceBase = (s: ServiceRow) => `/ui/bizs/${s.bizId}/services/${encodeURIComponent(s.name)}`;

/**
 * The publish form: one set of checkboxes named `to` is the whole target, "all clients" or groups,
 * nothing ticked beforehand. The review page refuses none or both, so a canary never goes to
 * everyone because a default was left on.
 */
export async function PublishForm(p: { c: CC; service: ServiceRow; release: { id: number; name: string }; errors?: FormErrors }) {
  const { c, service, release } = p;
  const groups = (await listGroups(c.var.deps.db, service.bizId, { limit: 500, offset: 0 })).items;
  return (
    <section>
      <h2 id="publish">Publish {release.name}</h2>
      <form method="get" action={`${serviceBase(service)}/versions/${release.id}/publish`} class="card">
        <FormError errors={p.errors} />
        <fieldset class="target">
          <legend>To whom <span class="hint">tick all clients, or one or more groups</span></legend>
          <label class="choice"><input type="checkbox" name="to" value="all" /> all clients</label>
          {groups.map((g) => (
            <label class="choice">
              <input type="checkbox" name="to" value={`group:${g.id}`} /> group {g.name} <code>{g.selector || "(every client)"}</code>{g.percent != null ? ` · ${g.percent}% of uids` : ""}
            </label>
          ))}
          {groups.length ? null : <p class="small muted">No group in this biz yet (<a href={`/ui/bizs/${service.bizId}/groups`}>create one</a> for a gradual release).</p>}
        </fieldset>
        <RolloutFields />
        <div class="actions"><button type="submit">Review and publish…</button></div>
      </form>
    </section>
  );
}

/** The service's publish history, newest first, each older entry with a way back to it. */
export async function PublishHistory(p: { c: CC; service: ServiceRow }) {
  const history = (await listPublishes(p.c.var.deps.db, p.service.bizId, p.service.name, { limit: 50, offset: 0 })).items;
  const base = serviceBase(p.service);
  return (
    <section>
      <h2 id="history">Publish history</h2>
      {history.length ? (
        <div class="scroll">
          <table>
            <thead><tr><th>when</th><th>version</th><th>to</th><th>who</th><th></th></tr></thead>
            <tbody>
              {history.map((h, i) => (
                <tr data-publish={h.version.name}>
                  <td class="small">{when(h.createdAt)}</td>
                  <td>
                    <a href={`${base}/versions/${h.version.id}`}>{h.version.name}</a>{h.rollback ? " (rollback)" : ""}
                    {h.rollout ? <span class="small"> · <a href={`${base}/rollouts/${h.rollout.id}`}>rollout {h.rollout.id}</a> ({h.rollout.percent}% released)</span> : null}
                  </td>
                  <td class="small">{audience(h.groups)}</td>
                  <td>{h.createdBy}</td>
                  <td class="small">{i > 0 ? <a href={`${base}/versions/${h.version.id}/publish?${h.groups.length ? h.groups.map((g) => `to=group:${g.id}`).join("&") : "to=all"}`}>roll back to this…</a> : "latest"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty>Never published.</Empty>
      )}
    </section>
  );
}

/** The target ticked on the form: `to=all`, or `to=group:<id>` once per group. */
type Target = { all: boolean; groupIds: number[] };
function targetOf(values: string[]): Target {
  const groupIds = values.map((v) => /^group:(\d+)$/.exec(v)?.[1]).filter((x): x is string => !!x).map(Number);
  return { all: values.includes("all"), groupIds };
}
/** Why a target cannot be published, or null. */
function targetProblem(t: Target): string | null {
  if (t.all && t.groupIds.length) return "to: all clients already includes every group; tick either all clients or groups";
  if (!t.all && !t.groupIds.length) return "to: tick all clients, or at least one group";
  return null;
}

/** A field of the publish form: from the review page's query, or the posted confirmation. */
type Field = (name: string) => string | undefined;

async function confirmPage(c: CC, target: Target, field: Field, errors?: FormErrors, status: 200 | 400 | 404 | 409 | 413 | 422 = 200) {
  const biz = bizOf(c);
  const app = appOf(c);
  const rid = (idParam(c, "rid") ?? 0);
  const { db, blobs } = c.var.deps;
  const [r, current, groups] = await Promise.all([getRelease(db, biz, app, rid), currentPublishes(db, biz, app), listGroups(db, biz, { limit: 500, offset: 0 })]);
  const chosen = groups.items.filter((g) => target.groupIds.includes(g.id));
  const missing = target.groupIds.length !== chosen.length;
  const problem = targetProblem(target) ?? (missing ? "to: a chosen group no longer exists" : null);
  const rollout = wantsRollout(field) ? rolloutSettingsOf(field) : null;
  const settingsErrors = rollout && "errors" in rollout ? rollout.errors : null;
  const settings = rollout && "settings" in rollout ? rollout.settings : null;
  const to = target.all ? "all clients" : audience(chosen);
  const online = current.base?.version ?? null;
  const diff = online && online.id !== r.id ? await diffReleases(db, blobs, biz, app, online.id, r.id) : null;
  const back = `${serviceUrl(c)}/versions/${r.id}`;
  return c.html(
    <Layout title={`Publish ${r.name}`} nav="services" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={back}>← {app} {r.name}</a></p>
      {problem ? (
        <>
          <h1>Publish {app} {r.name}: to whom?</h1>
          <FieldError errors={{ to: problem }} name="to" />
          <p><a class="button secondary" href={`${back}#publish`}>Back to the publish form</a></p>
        </>
      ) : settingsErrors ? (
        <>
          <h1>Roll out {app} {r.name}: check the rollout settings</h1>
          {Object.keys(settingsErrors).map((k) => <FieldError errors={settingsErrors} name={k} />)}
          <p><a class="button secondary" href={`${back}#publish`}>Back to the publish form</a></p>
        </>
      ) : (
        <>
          <h1>{settings ? `Roll out ${app} ${r.name} to ${to} in waves?` : `Publish ${app} ${r.name} to ${to}?`}</h1>
          <FormError errors={errors} />
          {settings ? (
            <p data-testid="rollout-settings">Wave by wave: {settingsLine(settings)}. Each wave's hosts pick it up at once; the next wave starts when they have all reported, failures are within the threshold and the bake time has passed.</p>
          ) : (
            <p>Clients pick it up at once (long-poll); each runs the pre-script, applies the files, then the post-script.</p>
          )}
          <ValidationPassed validation={r.validation} />
          <h2>Changes against {online ? `${online.name}, published to all clients` : "nothing (first publish)"}</h2>
          {diff ? <ReleaseDiffView d={diff} /> : online ? <p class="muted">{r.name} is already the version published to all clients.</p> : <p class="muted">No version has been published to all clients yet: everything below goes out.</p>}
          <h2>What {r.name} sends</h2>
          <VersionContents files={r.files} hooks={r.hooks} kvs={r.kvs} />
          <form method="post" action={`${serviceUrl(c)}/versions/${r.id}/publish`} class="actions">
            <Csrf token={c.var.session.csrf} />
            {target.all ? <input type="hidden" name="to" value="all" /> : chosen.map((g) => <input type="hidden" name="to" value={`group:${g.id}`} />)}
            {settings ? <SettingsHidden s={settings} /> : null}
            <button type="submit">{settings ? "Start the rollout of" : "Publish"} {r.name} to {target.all ? "all clients" : chosen.map((g) => g.name).join(", ")}</button>
            <a href={back}>Cancel</a>
          </form>
        </>
      )}
    </Layout>,
    problem || settingsErrors ? 400 : status,
  );
}

export const publishRoutes = new Hono<ConsoleEnv>()
  .get("/ui/bizs/:biz/services/:app/versions/:rid/publish", (c) => confirmPage(c, targetOf(c.req.queries("to") ?? []), (n) => c.req.query(n)))
  .post("/ui/bizs/:biz/services/:app/versions/:rid/publish", async (c) => {
    const body = await c.req.parseBody({ all: true });
    const to = body.to ?? [];
    const target = targetOf((Array.isArray(to) ? to : [to]).filter((v): v is string => typeof v === "string"));
    const field: Field = (n) => (typeof body[n] === "string" ? (body[n] as string) : undefined);
    if (targetProblem(target)) return confirmPage(c, target, field);
    if (wantsRollout(field)) {
      const parsed = rolloutSettingsOf(field);
      if ("errors" in parsed) return confirmPage(c, target, field);
      return submit(
        c,
        z.object({}),
        () => createRollout(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), { versionId: idParam(c, "rid") ?? 0, groups: target.groupIds, ...parsed.settings }),
        (_v, errors, status) => confirmPage(c, target, field, errors, status),
        (r) => done(c, `${rolloutsUrl(c)}/${r.id}`, `Started rollout ${r.id} of ${r.version.name}: wave 1 of ${r.waves.length} (${r.waves[0]}% of the targeted clients) released.`),
      );
    }
    return submit(
      c,
      z.object({}),
      () => publish(c.var.deps.db, c.var.deps.notifier, c.var.session.actor, bizOf(c), appOf(c), { versionId: (idParam(c, "rid") ?? 0), groups: target.groupIds }, c.var.deps.clock()),
      (_v, errors, status) => confirmPage(c, target, field, errors, status),
      (p) => done(c, `${serviceUrl(c)}#history`, `Published ${p.version.name} to ${p.toAll ? "all clients" : audience(p.groups)}.`),
    );
  });
