/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { createBiz, listBizs } from "../core/bizs";
import { commonProps, done, formValues, type CC, type ConsoleEnv } from "./env";
import { Csrf, errorsOf, FormError, Layout, TextField, when, type FormErrors, type FormValues } from "./layout";

async function page(c: CC, values: FormValues = {}, errors?: FormErrors, status: 200 | 400 | 409 | 422 = 200) {
  const bizs = await listBizs(c.var.deps.db);
  return c.html(
    <Layout title="Bizs" nav="bizs" {...commonProps(c)}>
      <h1>Bizs</h1>
      <div class="scroll">
        <table>
          <thead><tr><th>id</th><th>name</th><th>created</th><th></th></tr></thead>
          <tbody>
            {bizs.map((b) => (
              <tr>
                <td>{b.id}</td>
                <td><a href={`/ui/bizs/${b.id}/services`}>{b.name}</a></td>
                <td>{when(b.createdAt)}</td>
                <td class="small"><a href={`/ui/bizs/${b.id}/scripts`}>scripts</a> · <a href={`/ui/bizs/${b.id}/services`}>services</a> · <a href={`/ui/bizs/${b.id}/groups`}>groups</a></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {bizs.length === 0 ? <p class="muted">No biz yet: create the first one (the seed's manifests use biz 10).</p> : null}
      <h2>New biz</h2>
      <form method="post" action="/ui/bizs" class="card">
        <Csrf token={c.var.session.csrf} />
        <FormError errors={errors} known={["id", "name"]} />
        <div class="row">
          <TextField name="id" label="Id" hint="a positive number, e.g. 10" type="number" values={values} errors={errors} required />
          <TextField name="name" label="Name" values={values} errors={errors} required />
        </div>
        <div class="actions"><button type="submit">Create biz</button></div>
      </form>
    </Layout>,
    status,
  );
}

export const bizRoutes = new Hono<ConsoleEnv>()
  .get("/ui", (c) => page(c))
  .post("/ui/bizs", async (c) => {
    const v = await formValues(c);
    const id = Number(v.id);
    if (!Number.isInteger(id) || id <= 0) return page(c, v, { id: "id: must be a positive whole number" }, 400);
    const name = (v.name ?? "").trim();
    if (!name || name.length > 128) return page(c, v, { name: "name: 1 to 128 characters" }, 400);
    try {
      await createBiz(c.var.deps.db, c.var.session.actor, { id, name });
    } catch (e) {
      return page(c, v, errorsOf(e), 409);
    }
    return done(c, `/ui/bizs/${id}/services`, `Biz ${id} created.`);
  });
