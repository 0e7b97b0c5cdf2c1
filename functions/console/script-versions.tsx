/** @jsxImportSource hono/jsx */
/** A script's versions: view or edit one, make a new one, publish or roll back after a diff. */
import { Hono } from "hono";
import { z } from "zod";
import * as scripts from "../core/scripts";
import { bizOf, commonProps, done, idParam, idQuery, submit, type CC, type ConsoleEnv } from "./env";
import { Badge, ConfirmButton, Csrf, DiffView, Empty, FormError, Layout, TextField, type FormErrors, type FormValues } from "./layout";
import { ContentEditor, scriptOpts, scriptsUrl as base, toLf, VariablesPanel, VersionForm, type Status } from "./script-forms";

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
                {/* Saves what was typed first: a link would leave the page and lose unsaved edits. */}
                <button type="submit" name="next" value="publish" class="secondary">Save and publish…</button>
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
        <div class="actions">
          <ConfirmButton action={`${sbase}/versions/${vid}/delete`} csrf={c.var.session.csrf} label="Delete this version" confirm={`Delete version ${v.name} of ${s.name}?`} detail="It has never been online; its content is lost." />
        </div>
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

export const scriptVersionRoutes = new Hono<ConsoleEnv>()
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
      async () => {
        const next = (await c.req.parseBody()).next;
        return next === "publish" ? done(c, `${c.req.path}/publish`, "Saved; review the change and publish.") : done(c, c.req.path, "Saved.");
      },
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
