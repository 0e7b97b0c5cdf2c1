/** @jsxImportSource hono/jsx */
import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import { Hono } from "hono";
import { auditLog } from "../../db/schema/index";
import { commonProps, type ConsoleEnv } from "./env";
import { Layout, when } from "./layout";

const PAGE = 50;
const short = (v: unknown) => {
  if (v === null || v === undefined) return "";
  const s = JSON.stringify(v);
  return s.length > 240 ? s.slice(0, 240) + "…" : s;
};

/** A pure listing, read as the API's audit route reads it. */
export const auditRoutes = new Hono<ConsoleEnv>().get("/ui/audit", async (c) => {
  const q = c.req.query();
  const biz = q.biz && /^\d+$/.test(q.biz) ? Number(q.biz) : undefined;
  const before = q.before && /^\d+$/.test(q.before) ? Number(q.before) : undefined;
  const where: SQL[] = [];
  if (biz !== undefined) where.push(eq(auditLog.bizId, biz));
  if (q.actor) where.push(eq(auditLog.actor, q.actor.slice(0, 128)));
  if (q.action) where.push(eq(auditLog.action, q.action.slice(0, 128)));
  if (before !== undefined) where.push(lt(auditLog.id, before));
  const rows = await c.var.deps.db.select().from(auditLog).where(where.length ? and(...where) : undefined).orderBy(desc(auditLog.id)).limit(PAGE);
  const next = rows.length === PAGE ? new URLSearchParams({ ...(biz ? { biz: String(biz) } : {}), ...(q.actor ? { actor: q.actor } : {}), ...(q.action ? { action: q.action } : {}), before: String(rows[rows.length - 1].id) }) : null;
  return c.html(
    <Layout title="Audit log" nav="audit" biz={biz} {...commonProps(c)}>
      <h1>Audit log</h1>
      <form method="get" action="/ui/audit" class="filters">
        <div><label for="biz">Biz</label><input type="number" id="biz" name="biz" value={biz ? String(biz) : ""} /></div>
        <div><label for="actor">Who</label><input type="text" id="actor" name="actor" value={q.actor ?? ""} /></div>
        <div><label for="action">Action</label><input type="text" id="action" name="action" value={q.action ?? ""} placeholder="script.create" /></div>
        <div><button type="submit" class="secondary">Filter</button></div>
      </form>
      <div class="scroll">
        <table>
          <thead><tr><th>when</th><th>who</th><th>action</th><th>resource</th><th>biz</th><th>before → after</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr>
                <td class="small">{when(r.createdAt)}</td>
                <td>{r.actor}</td>
                <td><code>{r.action}</code></td>
                <td class="small">{r.resourceType} {r.resourceId}</td>
                <td>{r.bizId ?? "—"}</td>
                <td class="small"><code>{short(r.before)}</code>{r.before !== null && r.after !== null ? " → " : ""}<code>{short(r.after)}</code></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rows.length === 0 ? <p class="muted">Nothing recorded for this filter.</p> : null}
      {next ? <p><a href={`/ui/audit?${next}`}>Older entries →</a></p> : null}
    </Layout>,
  );
});
