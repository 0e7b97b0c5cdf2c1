/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { z } from "zod";
import { createGroup, deleteGroup, listGroups } from "../core/groups";
import { bizOf, commonProps, done, idParam, submit, type CC, type ConsoleEnv } from "./env";
import { Csrf, Empty, FormError, Layout, TextField, when, type FormErrors, type FormValues, ConfirmButton } from "./layout";
import { SafeName } from "../http/openapi";

type Status = 200 | 400 | 404 | 409 | 413 | 422;

async function page(c: CC, values: FormValues = {}, errors?: FormErrors, status: Status = 200) {
  const biz = bizOf(c);
  const list = await listGroups(c.var.deps.db, biz, { limit: 500, offset: 0 });
  return c.html(
    <Layout title="Groups" nav="groups" biz={biz} {...commonProps(c)}>
      <h1>Groups</h1>
      <p class="muted">A group picks clients by their labels, optionally a stable share of their uids; publish a version to groups for a gradual release.</p>
      <FormError errors={errors} known={["name", "selector", "percent", "memo"]} />
      <div class="scroll">
        <table>
          <thead><tr><th>name</th><th>selector</th><th>share</th><th>description</th><th>created</th><th></th></tr></thead>
          <tbody>
            {list.items.map((g) => (
              <tr>
                <td>{g.name}</td>
                <td><code>{g.selector || "(every client)"}</code></td>
                <td>{g.percent != null ? `${g.percent}%` : "all"}</td>
                <td class="small">{g.memo}</td>
                <td class="small">{when(g.createdAt)}</td>
                <td>
                  <ConfirmButton action={`/ui/bizs/${biz}/groups/${g.id}/delete`} csrf={c.var.session.csrf} label="Delete" confirm={`Delete group ${g.name}?`} detail="Publishes keep their snapshot of it; later publishes can no longer choose it." />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.items.length === 0 ? <Empty>No group yet.</Empty> : null}
      <h2>New group</h2>
      <form method="post" action={`/ui/bizs/${biz}/groups`} class="card">
        <Csrf token={c.var.session.csrf} />
        <div class="row">
          <TextField name="name" label="Name" values={values} errors={errors} required />
          <TextField name="selector" label="Label selector" hint="e.g. env=prod,zone in (a,b)" values={values} errors={errors} />
          <TextField name="percent" label="Share of clients, %" hint="empty: all that match" type="number" values={values} errors={errors} />
        </div>
        <TextField name="memo" label="Description" values={values} errors={errors} />
        <div class="actions"><button type="submit">Create group</button></div>
      </form>
    </Layout>,
    status,
  );
}

const GroupForm = z.object({
  name: z.string().trim().pipe(SafeName),
  selector: z.string().max(1024),
  percent: z.string().transform((s) => (s.trim() === "" ? null : Number(s))).pipe(z.number().int("must be a whole number").min(0).max(100).nullable()),
  memo: z.string().max(4096),
});

export const groupRoutes = new Hono<ConsoleEnv>()
  .get("/ui/bizs/:biz/groups", (c) => page(c))
  .post("/ui/bizs/:biz/groups", (c) =>
    submit(
      c,
      GroupForm,
      (d) => createGroup(c.var.deps.db, c.var.session.actor, bizOf(c), d, c.var.deps.clock()),
      (v, e, s) => page(c, v, e, s),
      (g) => done(c, `/ui/bizs/${bizOf(c)}/groups`, `Group ${g.name} created.`),
      { fallbackField: "selector" },
    ),
  )
  .post("/ui/bizs/:biz/groups/:id/delete", (c) =>
    submit(
      c,
      z.object({}),
      () => deleteGroup(c.var.deps.db, c.var.session.actor, bizOf(c), (idParam(c, "id") ?? 0)),
      (_v, e, s) => page(c, {}, e, s),
      () => done(c, `/ui/bizs/${bizOf(c)}/groups`, "Group deleted."),
    ),
  );
