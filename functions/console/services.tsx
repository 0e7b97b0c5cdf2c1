/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { z } from "zod";
import { setHooks } from "../core/hooks";
import { createRelease, diffReleases, getRelease } from "../core/releases";
import { createService, listServices, loadService, SERVICE_NAME } from "../core/services";
import { SafeName } from "../http/openapi";
import { bizOf, commonProps, done, idParam, idQuery, submit, type CC, type ConsoleEnv } from "./env";
import { Badge, Csrf, Empty, FieldError, FormError, Layout, TextField, when, type FormErrors, type FormValues } from "./layout";
import { PublishForm } from "./publish";
import { appOf, ReleaseDiffView, servicesUrl as svcBase, serviceUrl, VersionContents } from "./service-common";
import { servicePage } from "./service-page";
import { validatorConsoleRoutes, ValidationPassed } from "./validators";
import { ValidationError, type ValidationFailure } from "../core/validators";

type Status = 200 | 400 | 404 | 409 | 413 | 422;

async function listPage(c: CC, values: FormValues = { configType: "file" }, errors?: FormErrors, status: Status = 200) {
  const biz = bizOf(c);
  const list = await listServices(c.var.deps.db, biz, { limit: 500, offset: 0 });
  return c.html(
    <Layout title="Services" nav="services" biz={biz} {...commonProps(c)}>
      <h1>Services</h1>
      <div class="scroll">
        <table>
          <thead><tr><th>name</th><th>type</th><th>description</th><th>created</th><th></th></tr></thead>
          <tbody>
            {list.items.map((s) => (
              <tr>
                <td><a href={`${svcBase(c)}/${encodeURIComponent(s.name)}`}>{s.name}</a></td>
                <td><Badge kind="type" label={s.configType} /></td>
                <td class="small">{s.memo}</td>
                <td class="small">{when(s.createdAt)}</td>
                <td class="small"><a href={`${svcBase(c)}/${encodeURIComponent(s.name)}/overview`}>overview</a> · <a href={`${svcBase(c)}/${encodeURIComponent(s.name)}/clients`}>clients</a></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.items.length === 0 ? <Empty>No service yet.</Empty> : null}
      <h2>New service</h2>
      <form method="post" action={svcBase(c)} class="card">
        <Csrf token={c.var.session.csrf} />
        <FormError errors={errors} known={["name", "configType", "memo"]} />
        <div class="row">
          <TextField name="name" label="Name" hint="the agent's app, e.g. service_demo" values={values} errors={errors} required />
          <div>
            <label for="configType">Type</label>
            <select id="configType" name="configType">
              <option value="file" selected={values.configType !== "kv"}>file — config files, pre/post scripts</option>
              <option value="kv" selected={values.configType === "kv"}>kv — key-value</option>
            </select>
            <FieldError errors={errors} name="configType" />
          </div>
        </div>
        <TextField name="memo" label="Description" values={values} errors={errors} />
        <div class="actions"><button type="submit">Create service</button></div>
      </form>
    </Layout>,
    status,
  );
}

/** A version: what it holds (files, scripts with their content) and the publish form. */
async function releasePage(c: CC, opts: { errors?: FormErrors; status?: Status } = {}) {
  const biz = bizOf(c);
  const app = appOf(c);
  const rid = (idParam(c, "rid") ?? 0);
  const s = await loadService(c.var.deps.db, biz, app);
  const r = await getRelease(c.var.deps.db, biz, app, rid);
  const base = serviceUrl(c);
  return c.html(
    <Layout title={`${app} ${r.name}`} nav="services" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={base}>← {app}</a></p>
      <h1>{app} · version {r.name}</h1>
      <p class="small muted">{r.memo} — created {when(r.createdAt)} by {r.createdBy}</p>
      <ValidationPassed validation={r.validation} />
      <h2>Files and scripts in this version</h2>
      <VersionContents files={r.files} hooks={r.hooks} kvs={r.kvs} showContent />
      <PublishForm c={c} service={s} release={{ id: r.id, name: r.name }} errors={opts.errors} />
    </Layout>,
    opts.status ?? 200,
  );
}

const CreateService = z.object({ name: z.string().trim().regex(SERVICE_NAME, "letters, digits, '_', '.', '-'; starts with a letter or digit; at most 128"), configType: z.enum(["file", "kv"], "choose file or kv"), memo: z.string().max(4096) });
const CreateVersion = z.object({ name: z.string().transform((s) => s.trim() || undefined).pipe(SafeName.optional()), memo: z.string().max(4096) });
const Hooks = z.object({ pre: z.string().optional(), post: z.string().optional() });
const binding = (v: string | undefined) => (v ? { scriptId: Number(v) } : null);

export const serviceRoutes = new Hono<ConsoleEnv>()
  .get("/ui/bizs/:biz/services", (c) => listPage(c))
  .post("/ui/bizs/:biz/services", (c) =>
    submit(
      c,
      CreateService,
      (d) => createService(c.var.deps.db, c.var.session.actor, bizOf(c), d, c.var.deps.clock()),
      (v, e, st) => listPage(c, v, e, st),
      (r) => done(c, `${svcBase(c)}/${encodeURIComponent(r.name)}`, `Service ${r.name} created.`),
    ),
  )
  .get("/ui/bizs/:biz/services/:app", (c) => servicePage(c))
  .post("/ui/bizs/:biz/services/:app/hooks", (c) =>
    submit(
      c,
      Hooks,
      (d) => setHooks(c.var.deps.db, c.var.session.actor, bizOf(c), appOf(c), { pre: binding(d.pre), post: binding(d.post) }, c.var.deps.clock()),
      (values, errors, status) => servicePage(c, { values, errors, status, section: "hooks" }),
      () => done(c, `${serviceUrl(c)}#scripts`, "Scripts saved in the draft."),
      { fallbackField: "_form" },
    ),
  )
  .route("/", validatorConsoleRoutes((c, values, errors, status) => servicePage(c, { values, errors, status, section: "validator" })))
  .post("/ui/bizs/:biz/services/:app/versions", (c) => {
    // A version refused by the validators shows each failure beside its file.
    let failures: ValidationFailure[] | undefined;
    const create = async (d: z.output<typeof CreateVersion>) => {
      try {
        return await createRelease(c.var.deps.db, c.var.deps.blobs, c.var.session.actor, bizOf(c), appOf(c), d, c.var.deps.clock());
      } catch (e) {
        if (e instanceof ValidationError) failures = e.failures;
        throw e;
      }
    };
    return submit(
      c,
      CreateVersion,
      create,
      (values, errors, status) => servicePage(c, { values, errors, status, section: "version", failures }),
      (r) => done(c, `${serviceUrl(c)}/versions/${r.id}`, `Version ${r.name} created from the draft.`),
    );
  })
  .get("/ui/bizs/:biz/services/:app/versions/diff", async (c) => {
    const from = (idQuery(c, "from") ?? 0);
    const to = (idQuery(c, "to") ?? 0);
    const d = await diffReleases(c.var.deps.db, c.var.deps.blobs, bizOf(c), appOf(c), from, to);
    return c.html(
      <Layout title={`${appOf(c)}: ${d.from.name} → ${d.to.name}`} nav="services" biz={bizOf(c)} {...commonProps(c)}>
        <p class="small"><a href={serviceUrl(c)}>← {appOf(c)}</a></p>
        <h1>{appOf(c)}: {d.from.name} → {d.to.name}</h1>
        <ReleaseDiffView d={d} />
      </Layout>,
    );
  })
  .get("/ui/bizs/:biz/services/:app/versions/:rid", (c) => releasePage(c));
