/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { z } from "zod";
import { listGroups } from "../core/groups";
import { currentPublishes, listPublishes, publish } from "../core/publishes";
import { diffReleases, getRelease } from "../core/releases";
import type { ServiceRow } from "../core/services";
import { bizOf, commonProps, done, idParam, submit, type CC, type ConsoleEnv } from "./env";
import { Csrf, Empty, FormError, Layout, when, type FormErrors } from "./layout";
import { appOf, ReleaseDiffView, serviceUrl } from "./services";
import { ValidationPassed } from "./validators";

const audience = (g: { name: string; selector: string; percent: number | null }[]) =>
  g.length ? g.map((x) => `${x.name} (${x.selector || "all"}${x.percent != null ? `, ${x.percent}%` : ""})`).join(", ") : "all clients";

/** Publish form (on a version's page) and publish history (on both pages). */
export async function PublishSection(p: { c: CC; service: ServiceRow; release?: { id: number; name: string }; errors?: FormErrors }) {
  const { c, service, release } = p;
  const [history, groups] = await Promise.all([
    listPublishes(c.var.deps.db, service.bizId, service.name, { limit: 50, offset: 0 }).then((r) => r.items),
    release ? listGroups(c.var.deps.db, service.bizId, { limit: 500, offset: 0 }).then((r) => r.items) : [],
  ]);
  const base = `/ui/bizs/${service.bizId}/services/${encodeURIComponent(service.name)}`;
  return (
    <section>
      {release ? (
        <>
          <h2 id="publish">Publish {release.name}</h2>
          <form method="get" action={`${base}/versions/${release.id}/publish`} class="card">
            <FormError errors={p.errors} />
            <label><input type="radio" name="to" value="all" checked /> to all clients</label>
            <label><input type="radio" name="to" value="groups" /> to these groups only:</label>
            {groups.length ? (
              groups.map((g) => (
                <label class="small" style="font-weight:400">
                  <input type="checkbox" name="group" value={String(g.id)} /> {g.name} <code>{g.selector || "(every client)"}</code>{g.percent != null ? ` · ${g.percent}% of uids` : ""}
                </label>
              ))
            ) : (
              <p class="small muted">No group in this biz yet (<a href={`/ui/bizs/${service.bizId}/groups`}>create one</a>).</p>
            )}
            <div class="actions"><button type="submit">Review and publish…</button></div>
          </form>
        </>
      ) : null}
      <h2 id="history">Publish history</h2>
      {history.length ? (
        <div class="scroll">
          <table>
            <thead><tr><th>when</th><th>version</th><th>to</th><th>who</th><th></th></tr></thead>
            <tbody>
              {history.map((h, i) => (
                <tr data-publish={h.version.name}>
                  <td class="small">{when(h.createdAt)}</td>
                  <td><a href={`${base}/versions/${h.version.id}`}>{h.version.name}</a>{h.rollback ? " (rollback)" : ""}</td>
                  <td class="small">{audience(h.groups)}</td>
                  <td>{h.createdBy}</td>
                  <td class="small">{i > 0 ? <a href={`${base}/versions/${h.version.id}/publish?to=${h.groups.length ? "groups" : "all"}${h.groups.map((g) => `&group=${g.id}`).join("")}`}>roll back to this…</a> : "latest"}</td>
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

/** Groups chosen on the publish form (`to=groups&group=1&group=2`); none means all clients. */
function chosenGroups(c: CC): number[] {
  if (c.req.query("to") !== "groups") return [];
  return (c.req.queries("group") ?? []).map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

async function confirmPage(c: CC, groupIds: number[], errors?: FormErrors, status: 200 | 400 | 404 | 409 | 413 | 422 = 200) {
  const biz = bizOf(c);
  const app = appOf(c);
  const rid = (idParam(c, "rid") ?? 0);
  const { db, blobs } = c.var.deps;
  const [r, current, groups] = await Promise.all([getRelease(db, biz, app, rid), currentPublishes(db, biz, app), listGroups(db, biz, { limit: 500, offset: 0 })]);
  const chosen = groups.items.filter((g) => groupIds.includes(g.id));
  const online = current.base?.version ?? null;
  const diff = online && online.id !== r.id ? await diffReleases(db, blobs, biz, app, online.id, r.id) : null;
  const toGroups = c.req.query("to") === "groups" || groupIds.length > 0;
  return c.html(
    <Layout title={`Publish ${r.name}`} nav="services" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={`${serviceUrl(c)}/versions/${r.id}`}>← {app} {r.name}</a></p>
      <h1>Publish {app} {r.name} to {chosen.length ? audience(chosen) : "all clients"}?</h1>
      <FormError errors={errors} />
      {toGroups && !chosen.length ? <p class="flash error" role="alert">groups: choose at least one group, or publish to all clients.</p> : null}
      <p>Clients pick it up at once (long-poll); each runs the pre-script, applies the files, then the post-script.</p>
      <ValidationPassed validation={r.validation} />
      <h2>Changes against {online ? `${online.name}, published to all clients` : "nothing (first publish)"}</h2>
      {diff ? <ReleaseDiffView d={diff} /> : online ? <p class="muted">{r.name} is already the version published to all clients.</p> : <p class="muted">No version has been published to all clients yet.</p>}
      {!toGroups || chosen.length ? <PublishConfirmForm c={c} action={`${serviceUrl(c)}/versions/${r.id}/publish`} groupIds={chosen.map((g) => g.id)} label={`Publish ${r.name}`} /> : null}
    </Layout>,
    status,
  );
}

export const publishRoutes = new Hono<ConsoleEnv>()
  .get("/ui/bizs/:biz/services/:app/versions/:rid/publish", (c) => confirmPage(c, chosenGroups(c)))
  .post("/ui/bizs/:biz/services/:app/versions/:rid/publish", async (c) => {
    const groups = ((await c.req.parseBody({ all: true })).group ?? []) as string | string[];
    const ids = (Array.isArray(groups) ? groups : [groups]).map(Number).filter((n) => Number.isInteger(n) && n > 0);
    return submit(
      c,
      z.object({}),
      () => publish(c.var.deps.db, c.var.deps.notifier, c.var.session.actor, bizOf(c), appOf(c), { versionId: (idParam(c, "rid") ?? 0), groups: ids }, c.var.deps.clock()),
      (_v, errors, status) => confirmPage(c, ids, errors, status),
      (p) => done(c, `${serviceUrl(c)}#history`, `Published ${p.version.name} to ${p.toAll ? "all clients" : audience(p.groups)}.`),
    );
  });

export const PublishConfirmForm = (p: { c: CC; action: string; groupIds: number[]; label: string }) => (
  <form method="post" action={p.action} class="actions">
    <Csrf token={p.c.var.session.csrf} />
    {p.groupIds.map((g) => <input type="hidden" name="group" value={String(g)} />)}
    <button type="submit">{p.label}</button>
  </form>
);
