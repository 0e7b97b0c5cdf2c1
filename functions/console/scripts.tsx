/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { z } from "zod";
import * as scripts from "../core/scripts";
import { SafeName } from "../http/openapi";
import { bizOf, commonProps, done, idParam, idQuery, submit, type CC, type ConsoleEnv } from "./env";
import { Badge, Csrf, DiffView, Empty, errorsOf, FieldError, FormError, Layout, TextField, when, type FormErrors, type FormValues } from "./layout";

/** The seed's built-in variables, each with a one-line meaning; a click inserts it into the content. */
export const builtInVariables: [string, string][] = [
  ["bk_bscp_temp_dir", "configuration root on the client (temp_dir, default /data/bscp)"],
  ["bk_bscp_biz", "the biz id, e.g. 10"],
  ["bk_bscp_app", "the service name, e.g. service_demo"],
  ["bk_bscp_app_temp_dir", "the service's folder: {temp_dir}/{biz}/{app} (files/ and hooks/ inside)"],
  ["bk_bscp_current_version_name", "name of the version being applied, e.g. V4"],
  ["bk_bscp_release_id", "id of that version"],
];

const Tags = z
  .string()
  .transform((s) => s.split(",").map((t) => t.trim()).filter(Boolean))
  .pipe(z.array(z.string().max(64).regex(/^[^\u0000-\u001f,]+$/, "no control characters")).max(20, "at most 20 tags"));
const Memo = z.string().max(4096);
const optionalName = z.string().transform((s) => s.trim() || undefined).pipe(SafeName.optional());

const CreateForm = z.object({
  name: z.string().trim().pipe(SafeName),
  type: z.enum(["shell", "python"], "choose shell or python"),
  tags: Tags,
  memo: Memo,
  versionName: optionalName,
  content: z.string(),
});
const VersionForm = z.object({ name: optionalName, memo: Memo, content: z.string() });

/** Browsers post every textarea line break as CRLF, whatever was typed; scripts run on Unix. Made LF here, so the console never reports a normalization the user did not cause. */
const lf = (s: string | undefined) => (s ?? "").replace(/\r\n/g, "\n");

const VariablesPanel = () => (
  <aside class="card">
    <strong>Built-in variables</strong>
    <p class="small muted">Click one to insert it at the cursor.</p>
    <ul class="vars">
      {builtInVariables.map(([name, meaning]) => (
        <li>
          <button type="button" data-insert={"${" + name + "}"} data-target="content">{"${" + name + "}"}</button>
          <div class="small muted">{meaning}</div>
        </li>
      ))}
    </ul>
  </aside>
);

const ContentEditor = (p: { values: FormValues; errors?: FormErrors }) => (
  <div>
    <label for="content">Content <span class="hint" data-testid="line-endings">saved with LF line endings: Windows (CRLF) endings are made LF, as the API does and reports</span></label>
    <textarea id="content" name="content" spellcheck={false} class={p.errors?.content ? "invalid" : ""}>{"\n" + (p.values.content ?? "")}</textarea>
    <FieldError errors={p.errors} name="content" />
  </div>
);

const base = (c: CC) => `/ui/bizs/${bizOf(c)}/scripts`;

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
      <div class="actions" style="margin:0 0 1rem">
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
      <div class="actions" style="margin:0 0 .6rem">
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

      <h2>Delete</h2>
      <form method="post" action={`${sbase}/delete`} class="card">
        <Csrf token={c.var.session.csrf} />
        {refs.drafts.length ? (
          <>
            <p data-testid="delete-reason">This script cannot simply be deleted: the draft of {refs.drafts.map((d) => d.serviceName).join(", ")} binds it. Unbind it there, or delete with force, which unbinds it from those drafts (versions keep their copy).</p>
            <label><input type="checkbox" name="force" value="true" /> force: unbind it from those drafts</label>
          </>
        ) : (
          <p>Deletes the script and all its versions. Service versions already created keep their copy.</p>
        )}
        <FieldError errors={errors} name="scriptId" />
        <div class="actions"><button type="submit" class="danger">Delete script</button></div>
      </form>
    </Layout>,
    opts.status ?? 200,
  );
}

/** Why a version cannot change, in words (the verbs refuse the same cases). */
const lockedReason = (state: string) =>
  state === "deployed"
    ? "This version is online, and an online version is immutable. Make a new version (prefilled from this one) to change the script."
    : "This version has been shut down; only a not-deployed version can be edited or deleted. Roll back to it, or make a new version.";

async function versionPage(c: CC, opts: { values?: FormValues; errors?: FormErrors; status?: Status } = {}) {
  const biz = bizOf(c);
  const id = idParam(c, "id") ?? 0;
  const vid = idParam(c, "vid") ?? 0;
  const { db } = c.var.deps;
  const [s, v, refs] = await Promise.all([scripts.getScript(db, biz, id), scripts.getVersion(db, biz, id, vid), scripts.references(db, biz, id, vid)]);
  const values = opts.values ?? { name: v.name, memo: v.memo, content: v.content ?? "" };
  const errors = opts.errors;
  const sbase = `${base(c)}/${id}`;
  const editable = v.state === "not_deployed";
  return c.html(
    <Layout title={`${s.name} ${v.name}`} nav="scripts" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={sbase}>← {s.name}</a></p>
      <h1>{s.name} · {v.name} <Badge kind={v.state} /></h1>
      <FormError errors={errors} known={["name", "memo", "content"]} />
      {editable ? (
        <form method="post" action={`${sbase}/versions/${vid}`}>
          <Csrf token={c.var.session.csrf} />
          <div class="editor">
            <div class="card">
              <div class="row">
                <TextField name="name" label="Version number" values={values} errors={errors} />
                <TextField name="memo" label="Description" values={values} errors={errors} />
              </div>
              <ContentEditor values={values} errors={errors} />
              <div class="actions">
                <button type="submit">Save</button>
                <a class="button secondary" href={`${sbase}/versions/${vid}/publish`}>Publish…</a>
              </div>
            </div>
            <VariablesPanel />
          </div>
        </form>
      ) : (
        <>
          <p class="flash" data-testid="locked-reason">{lockedReason(v.state)}</p>
          <p class="small muted">{v.memo}</p>
          <pre>{v.content}</pre>
          <div class="actions">
            {v.state === "shutdown" ? <a class="button" href={`${sbase}/versions/${vid}/publish`}>Roll back to this version…</a> : null}
            <a class="button secondary" href={`${sbase}/versions/new?from=${vid}`}>New version from this one</a>
          </div>
        </>
      )}
      {editable ? (
        <form method="post" action={`${sbase}/versions/${vid}/delete`} class="actions">
          <Csrf token={c.var.session.csrf} />
          <button type="submit" class="danger">Delete this version</button>
        </form>
      ) : null}
      <h2>References</h2>
      {refs.drafts.length + refs.versions.length === 0 ? <Empty>No service uses this version.</Empty> : (
        <ul>
          {refs.drafts.map((d) => <li>draft of {d.serviceName} ({d.kind})</li>)}
          {refs.versions.map((r) => <li>version {r.releaseName} of {r.serviceName} ({r.kind})</li>)}
        </ul>
      )}
    </Layout>,
    opts.status ?? 200,
  );
}

async function newVersionPage(c: CC, values?: FormValues, errors?: FormErrors, status: Status = 200) {
  const biz = bizOf(c);
  const id = idParam(c, "id") ?? 0;
  const { db } = c.var.deps;
  const s = await scripts.getScript(db, biz, id);
  if (!values) {
    const fromId = idQuery(c, "from") || s.onlineVersion?.id;
    const from = fromId ? await scripts.getVersion(db, biz, id, fromId) : null;
    values = { content: from?.content ?? "", memo: "" };
  }
  return c.html(
    <Layout title={`New version of ${s.name}`} nav="scripts" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={`${base(c)}/${id}`}>← {s.name}</a></p>
      <h1>New version of {s.name}</h1>
      <p class="small muted">Prefilled from {c.req.query("from") ? "the chosen version" : s.onlineVersion ? `the online version ${s.onlineVersion.name}` : "nothing"}; it starts as not deployed.</p>
      <form method="post" action={`${base(c)}/${id}/versions/new`}>
        <Csrf token={c.var.session.csrf} />
        <FormError errors={errors} known={["name", "memo", "content"]} />
        <div class="editor">
          <div class="card">
            <div class="row">
              <TextField name="name" label="Version number" hint="leave empty for the default" placeholder={scripts.defaultVersionName(c.var.deps.clock())} values={values} errors={errors} />
              <TextField name="memo" label="Description" values={values} errors={errors} />
            </div>
            <ContentEditor values={values} errors={errors} />
            <div class="actions"><button type="submit">Create version</button></div>
          </div>
          <VariablesPanel />
        </div>
      </form>
    </Layout>,
    status,
  );
}

async function publishPage(c: CC, errors?: FormErrors, status: Status = 200) {
  const biz = bizOf(c);
  const id = idParam(c, "id") ?? 0;
  const vid = idParam(c, "vid") ?? 0;
  const { db } = c.var.deps;
  const [s, v] = await Promise.all([scripts.getScript(db, biz, id), scripts.getVersion(db, biz, id, vid)]);
  const diff = s.onlineVersion && s.onlineVersion.id !== v.id ? await scripts.diffVersions(db, biz, id, s.onlineVersion.id, v.id) : null;
  const rollback = v.state === "shutdown";
  return c.html(
    <Layout title={`Publish ${v.name}`} nav="scripts" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={`${base(c)}/${id}`}>← {s.name}</a></p>
      <h1>{rollback ? "Roll back" : "Publish"} {s.name} to {v.name}?</h1>
      <FormError errors={errors} />
      {v.state === "deployed" ? <p class="flash">{v.name} is already the online version.</p> : null}
      <p>
        {s.onlineVersion ? <>The online version {s.onlineVersion.name} will be shut down. </> : null}
        Service drafts that bind {s.name} follow the online version; service versions already created keep their copy.
      </p>
      <h2>Changes against the online version {s.onlineVersion?.name ?? ""}</h2>
      {diff ? (diff.identical ? <p class="muted">The content is identical.</p> : <DiffView diff={diff.diff} />) : <p class="muted">No online version to compare with.</p>}
      <form method="post" action={`${base(c)}/${id}/versions/${vid}/publish`} class="actions">
        <Csrf token={c.var.session.csrf} />
        <button type="submit">{rollback ? "Roll back" : "Publish"} {v.name}</button>
        <a href={`${base(c)}/${id}`}>Cancel</a>
      </form>
    </Layout>,
    status,
  );
}

const scriptOpts = (c: CC) => ({ now: c.var.deps.clock(), maxBytes: c.var.deps.limits.maxScriptBytes });
const toLf = (v: FormValues) => void (v.content = lf(v.content));
type Status = 200 | 400 | 404 | 409 | 413 | 422;

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
  )
  .get("/ui/bizs/:biz/scripts/:id/versions/new", (c) => newVersionPage(c))
  .post("/ui/bizs/:biz/scripts/:id/versions/new", (c) =>
    submit(
      c,
      VersionForm,
      (d) => scripts.createVersion(c.var.deps.db, c.var.session.actor, bizOf(c), idParam(c, "id") ?? 0, d, scriptOpts(c)),
      (v, e, s) => newVersionPage(c, v, e, s),
      (r) => done(c, `${base(c)}/${c.req.param("id")}/versions/${r.id}`, `Version ${r.name} created (not deployed).`),
      { fallbackField: "content", prepare: toLf },
    ),
  )
  .get("/ui/bizs/:biz/scripts/:id/versions/:vid", (c) => versionPage(c))
  .post("/ui/bizs/:biz/scripts/:id/versions/:vid", (c) =>
    submit(
      c,
      VersionForm,
      (d) => scripts.updateVersion(c.var.deps.db, c.var.session.actor, bizOf(c), idParam(c, "id") ?? 0, idParam(c, "vid") ?? 0, d, scriptOpts(c)),
      (values, errors, status) => versionPage(c, { values, errors, status }),
      () => done(c, c.req.path, "Saved."),
      { fallbackField: "content", prepare: toLf },
    ),
  )
  .post("/ui/bizs/:biz/scripts/:id/versions/:vid/delete", (c) =>
    submit(
      c,
      z.object({}),
      () => scripts.deleteVersion(c.var.deps.db, c.var.session.actor, bizOf(c), idParam(c, "id") ?? 0, idParam(c, "vid") ?? 0),
      (_v, errors, status) => versionPage(c, { errors, status }),
      () => done(c, `${base(c)}/${c.req.param("id")}`, "Version deleted."),
    ),
  )
  .get("/ui/bizs/:biz/scripts/:id/versions/:vid/publish", (c) => publishPage(c))
  .post("/ui/bizs/:biz/scripts/:id/versions/:vid/publish", (c) =>
    submit(
      c,
      z.object({}),
      () => scripts.publishVersion(c.var.deps.db, c.var.session.actor, bizOf(c), idParam(c, "id") ?? 0, idParam(c, "vid") ?? 0, c.var.deps.clock()),
      (_v, errors, status) => publishPage(c, errors, status),
      (r) => done(c, `${base(c)}/${c.req.param("id")}`, `Version ${r.name} is online${r.previousOnline ? `; ${r.previousOnline.name} was shut down` : ""}.`),
    ),
  );
