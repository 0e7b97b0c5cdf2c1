/** @jsxImportSource hono/jsx */
/** Scripts: the list, a new script, a script's page (labels, versions, references, delete). */
import { Hono } from "hono";
import { z } from "zod";
import * as scripts from "../core/scripts";
import { bizOf, commonProps, done, idParam, submit, type CC, type ConsoleEnv } from "./env";
import { Badge, Csrf, Empty, FieldError, FormError, Layout, TextField, when, type FormErrors, type FormValues } from "./layout";
import { ContentEditor, CreateForm, Memo, scriptOpts, scriptsUrl as base, Tags, toLf, VariablesPanel, type Status } from "./script-forms";

async function listPage(c: CC) {
  const biz = bizOf(c);
  const tag = c.req.query("tag") || undefined;
  const search = c.req.query("search")?.slice(0, 128) || undefined;
  const [list, tags] = await Promise.all([
    scripts.listScripts(c.var.deps.db, biz, { tag, search, limit: 200, offset: 0 }),
    scripts.listTags(c.var.deps.db, biz),
  ]);
  return c.html(
    <Layout title="Scripts" nav="scripts" biz={biz} {...commonProps(c)}>
      <h1>Pre/post scripts</h1>
      <div class="actions toolbar">
        <a class="button" href={`${base(c)}/new`}>New script</a>
      </div>
      <form method="get" action={base(c)} class="filters">
        <div>
          <label for="tag">Category</label>
          <select id="tag" name="tag">
            <option value="">all ({list.total})</option>
            {tags.items.map((t) => (
              <option value={t.tag} selected={t.tag === tag}>{t.tag} ({t.count})</option>
            ))}
          </select>
        </div>
        <div>
          <label for="search">Search</label>
          <input type="search" id="search" name="search" value={search ?? ""} placeholder="name or description" />
        </div>
        <div><button type="submit" class="secondary">Filter</button></div>
      </form>
      <div class="scroll">
        <table>
          <thead><tr><th>name</th><th>type</th><th>category</th><th>online version</th><th>used by</th><th>description</th><th>updated</th></tr></thead>
          <tbody>
            {list.items.map((s) => (
              <tr>
                <td><a href={`${base(c)}/${s.id}`}>{s.name}</a></td>
                <td>{s.type}</td>
                <td>{s.tags.map((t) => <Badge kind="tag" label={t} />)}</td>
                <td>{s.onlineVersion ? <Badge kind="deployed" label={s.onlineVersion.name} /> : <span class="muted">none</span>}</td>
                <td>{s.usageCount} service{s.usageCount === 1 ? "" : "s"}</td>
                <td class="small">{s.memo}</td>
                <td class="small">{when(s.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.items.length === 0 ? <Empty>No script matches.</Empty> : null}
    </Layout>,
  );
}

function createPage(c: CC, values: FormValues, errors?: FormErrors, status: Status = 200) {
  const biz = bizOf(c);
  return c.html(
    <Layout title="New script" nav="scripts" biz={biz} {...commonProps(c)}>
      <h1>New script</h1>
      <form method="post" action={`${base(c)}/new`}>
        <Csrf token={c.var.session.csrf} />
        <FormError errors={errors} known={["name", "type", "tags", "memo", "versionName", "content"]} />
        <div class="editor">
          <div class="card">
            <div class="row">
              <TextField name="name" label="Script name" hint="unique in the biz; fixed once created" values={values} errors={errors} required />
              <div>
                <label for="type">Type</label>
                <select id="type" name="type">
                  <option value="shell" selected={values.type !== "python"}>shell (bash)</option>
                  <option value="python" selected={values.type === "python"}>python (python3)</option>
                </select>
                <FieldError errors={errors} name="type" />
              </div>
            </div>
            <TextField name="tags" label="Category labels" hint="comma-separated, e.g. tag, cleanup" values={values} errors={errors} />
            <TextField name="memo" label="Description" values={values} errors={errors} />
            <TextField name="versionName" label="Version number" hint="leave empty for the default" placeholder={scripts.defaultVersionName(c.var.deps.clock())} values={values} errors={errors} />
            <ContentEditor values={values} errors={errors} />
            <div class="actions"><button type="submit">Create script</button><a href={base(c)}>Cancel</a></div>
          </div>
          <VariablesPanel />
        </div>
      </form>
    </Layout>,
    status,
  );
}

async function scriptPage(c: CC, opts: { errors?: FormErrors; values?: FormValues; status?: Status } = {}) {
  const biz = bizOf(c);
  const id = idParam(c, "id") ?? 0;
  const { db } = c.var.deps;
  const s = await scripts.getScript(db, biz, id);
  const [versions, refs] = await Promise.all([scripts.listVersions(db, biz, id, { limit: 200, offset: 0 }), scripts.references(db, biz, id)]);
  const pending = versions.items.find((v) => v.state === "not_deployed");
  const values = opts.values ?? { tags: s.tags.join(", "), memo: s.memo };
  const errors = opts.errors;
  const sbase = `${base(c)}/${id}`;
  return c.html(
    <Layout title={s.name} nav="scripts" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={base(c)}>← Scripts</a></p>
      <h1>{s.name} <Badge kind="type" label={s.type} /></h1>
      <FormError errors={errors} known={["tags", "memo"]} />
      <p>Online version: {s.onlineVersion ? <Badge kind="deployed" label={s.onlineVersion.name} /> : <span class="muted">none</span>} · used by {s.usageCount} service(s)</p>
      <form method="post" action={`${sbase}/edit`} class="card">
        <Csrf token={c.var.session.csrf} />
        <div class="row">
          <TextField name="tags" label="Category labels" hint="comma-separated" values={values} errors={errors} />
          <TextField name="memo" label="Description" values={values} errors={errors} />
        </div>
        <div class="actions"><button type="submit" class="secondary">Save labels and description</button></div>
      </form>

      <h2>Versions</h2>
      <div class="actions toolbar">
        {pending ? (
          <span class="muted small">A new version can be made once the not-deployed version “{pending.name}” is published or deleted.</span>
        ) : (
          <a class="button" href={`${sbase}/versions/new`}>New version</a>
        )}
      </div>
      <div class="scroll">
        <table>
          <thead><tr><th>version</th><th>state</th><th>description</th><th>created</th><th>published</th><th></th></tr></thead>
          <tbody>
            {versions.items.map((v) => (
              <tr data-version={v.name}>
                <td><a href={`${sbase}/versions/${v.id}`}>{v.name}</a></td>
                <td><Badge kind={v.state} label={v.state === "deployed" ? "online" : v.state === "not_deployed" ? "not deployed" : "shut down"} /></td>
                <td class="small">{v.memo}</td>
                <td class="small">{when(v.createdAt)} by {v.createdBy}</td>
                <td class="small">{when(v.publishedAt)}</td>
                <td class="small">
                  {v.state === "not_deployed" ? <a href={`${sbase}/versions/${v.id}`}>edit</a> : null}
                  {v.state === "not_deployed" ? <> · <a href={`${sbase}/versions/${v.id}/publish`}>publish</a></> : null}
                  {v.state === "shutdown" ? <a href={`${sbase}/versions/${v.id}/publish`}>roll back to this</a> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h2>References</h2>
      {refs.drafts.length === 0 && refs.versions.length === 0 ? <Empty>No service uses this script.</Empty> : null}
      {refs.drafts.length ? (
        <ul>
          {refs.drafts.map((d) => (
            <li>draft of <a href={`/ui/bizs/${biz}/services/${encodeURIComponent(d.serviceName)}`}>{d.serviceName}</a> as {d.kind}-script {d.followsOnline ? "(follows the online version)" : `(pinned to version ${d.pinnedVersionId})`}</li>
          ))}
        </ul>
      ) : null}
      {refs.versions.length ? (
        <ul>
          {refs.versions.map((r) => (
            <li>version {r.releaseName} of <a href={`/ui/bizs/${biz}/services/${encodeURIComponent(r.serviceName)}`}>{r.serviceName}</a> pins {r.kind}-script version {r.scriptVersionName}</li>
          ))}
        </ul>
      ) : null}

      <h2 id="delete">Delete</h2>
      <details class="confirm" open={!!errors?.scriptId}>
        <summary class="button danger">Delete script…</summary>
        <form method="post" action={`${sbase}/delete`} class="confirm-box">
          <Csrf token={c.var.session.csrf} />
          {refs.drafts.length ? (
            <>
              <p data-testid="delete-reason">This script cannot simply be deleted: the draft of {refs.drafts.map((d) => d.serviceName).join(", ")} binds it. Unbind it there, or delete with force, which unbinds it from those drafts (versions keep their copy).</p>
              <label><input type="checkbox" name="force" value="true" /> force: unbind it from those drafts</label>
            </>
          ) : (
            <p><strong>Delete {s.name} and all its versions?</strong> Service versions already created keep their copy.</p>
          )}
          <FieldError errors={errors} name="scriptId" />
          <div class="actions"><button type="submit" class="danger">Yes, delete {s.name}</button></div>
        </form>
      </details>
    </Layout>,
    opts.status ?? 200,
  );
}

export const scriptRoutes = new Hono<ConsoleEnv>()
  .get("/ui/bizs/:biz/scripts", (c) => listPage(c))
  .get("/ui/bizs/:biz/scripts/new", (c) => createPage(c, { type: "shell", content: "#!/bin/bash\n" }))
  .post("/ui/bizs/:biz/scripts/new", (c) =>
    submit(
      c,
      CreateForm,
      (d) => scripts.createScript(c.var.deps.db, c.var.session.actor, bizOf(c), d, scriptOpts(c)),
      (v, e, s) => createPage(c, v, e, s),
      (r) => done(c, `${base(c)}/${r.id}`, `Script ${r.name} created; version ${r.version.name} is online.`),
      { fallbackField: "content", prepare: toLf },
    ),
  )
  .get("/ui/bizs/:biz/scripts/:id", (c) => scriptPage(c))
  .post("/ui/bizs/:biz/scripts/:id/edit", (c) =>
    submit(
      c,
      z.object({ tags: Tags, memo: Memo }),
      (d) => scripts.updateScript(c.var.deps.db, c.var.session.actor, bizOf(c), idParam(c, "id") ?? 0, d, c.var.deps.clock()),
      (values, errors, status) => scriptPage(c, { values, errors, status }),
      () => done(c, `${base(c)}/${c.req.param("id")}`, "Saved."),
    ),
  )
  .post("/ui/bizs/:biz/scripts/:id/delete", (c) =>
    submit(
      c,
      z.object({ force: z.string().optional() }),
      (d) => scripts.deleteScript(c.var.deps.db, c.var.session.actor, bizOf(c), idParam(c, "id") ?? 0, d.force === "true"),
      (_v, errors, status) => scriptPage(c, { errors, status }),
      () => done(c, base(c), "Script deleted."),
      { fallbackField: "scriptId" },
    ),
  );
