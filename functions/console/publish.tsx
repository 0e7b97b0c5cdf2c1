/** @jsxImportSource hono/jsx */
import { and, asc, desc, eq } from "drizzle-orm";
import { groups as groupsTable, publishes, releases } from "../../db/schema/index";
import type { ServiceRow } from "../core/services";
import type { CC } from "./env";
import { Csrf, Empty, FormError, when, type FormErrors } from "./layout";

/** Pure listings (history and groups) for the publish screens; publishing itself is a core verb. */
export async function publishHistory(c: CC, serviceId: number) {
  return c.var.deps.db
    .select({ id: publishes.id, releaseId: publishes.releaseId, releaseName: releases.name, groups: publishes.groups, memo: publishes.memo, createdBy: publishes.createdBy, createdAt: publishes.createdAt })
    .from(publishes)
    .innerJoin(releases, eq(releases.id, publishes.releaseId))
    .where(eq(publishes.serviceId, serviceId))
    .orderBy(desc(publishes.id))
    .limit(50);
}

export async function bizGroups(c: CC, bizId: number) {
  return c.var.deps.db.select().from(groupsTable).where(and(eq(groupsTable.bizId, bizId))).orderBy(asc(groupsTable.name));
}

const audience = (g: { name: string; selector: string; percent: number | null }[]) =>
  g.length ? g.map((x) => `${x.name} (${x.selector || "all"}${x.percent != null ? `, ${x.percent}%` : ""})`).join(", ") : "all clients";

/** Publish form (on a version's page) and publish history (on both pages). */
export async function PublishSection(p: { c: CC; service: ServiceRow; release?: { id: number; name: string }; errors?: FormErrors }) {
  const { c, service, release } = p;
  const [history, groups] = await Promise.all([publishHistory(c, service.id), release ? bizGroups(c, service.bizId) : []]);
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
                <tr data-publish={h.releaseName}>
                  <td class="small">{when(h.createdAt)}</td>
                  <td><a href={`${base}/versions/${h.releaseId}`}>{h.releaseName}</a></td>
                  <td class="small">{audience(h.groups)}</td>
                  <td>{h.createdBy}</td>
                  <td class="small">{i > 0 ? <a href={`${base}/versions/${h.releaseId}/publish?to=${h.groups.length ? "groups" : "all"}${h.groups.map((g) => `&group=${g.id}`).join("")}`}>roll back to this…</a> : "latest"}</td>
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

export const PublishConfirmForm = (p: { c: CC; action: string; groupIds: number[]; label: string }) => (
  <form method="post" action={p.action} class="actions">
    <Csrf token={p.c.var.session.csrf} />
    {p.groupIds.map((g) => <input type="hidden" name="group" value={String(g)} />)}
    <button type="submit">{p.label}</button>
  </form>
);
