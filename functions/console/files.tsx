/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { deleteFile, fileContent, getFile, putFileContent } from "../core/files";
import { checkDir, checkName } from "../core/paths";
import { bizOf, commonProps, done, formFile, formValues, idParam, type CC, type ConsoleEnv } from "./env";
import { Permission } from "./file-form";
import { Csrf, errorsOf, FieldError, FormError, Layout, TextField, type FormErrors, type FormValues } from "./layout";
import { appOf, fullPath, serviceUrl } from "./service-common";
import { servicePage } from "./service-page";

/** Text files up to this size are edited in the browser; larger or binary ones are replaced by upload. */
const EDITABLE_BYTES = 512 * 1024;

const trimDir = (d: string) => (d.length > 1 ? d.replace(/\/+$/, "") : d);
const meta = (v: FormValues) => ({ user: v.user || undefined, group: v.group || undefined, privilege: v.privilege || undefined, memo: v.memo ?? undefined });

async function editPage(c: CC, opts: { values?: FormValues; errors?: FormErrors; status?: 200 | 400 | 404 | 409 | 413 | 422 } = {}) {
  const biz = bizOf(c);
  const app = appOf(c);
  const fid = (idParam(c, "fid") ?? 0);
  const f = await getFile(c.var.deps.db, biz, app, fid);
  const editable = f.fileType === "text" && f.size <= EDITABLE_BYTES;
  let values = opts.values;
  if (!values) {
    values = { user: f.user, group: f.group, privilege: f.privilege, memo: f.memo };
    if (editable) {
      const got = await fileContent(c.var.deps.db, c.var.deps.blobs, biz, app, fid);
      values.content = await new Response(got.body).text();
    }
  }
  const where = fullPath(f);
  return c.html(
    <Layout title={where} nav="services" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={serviceUrl(c)}>← {app}</a></p>
      <h1><code>{where}</code></h1>
      <form method="post" action={`${serviceUrl(c)}/files/${fid}`} enctype="multipart/form-data" class="card">
        <Csrf token={c.var.session.csrf} />
        <FormError errors={opts.errors} known={["user", "group", "privilege", "memo", "content", "body"]} />
        <Permission values={values} errors={opts.errors} />
        <TextField name="memo" label="Description" values={values} errors={opts.errors} />
        {editable ? (
          <>
            <label for="content">Content</label>
            <textarea id="content" name="content" spellcheck={false}>{"\n" + (values.content ?? "")}</textarea>
            <FieldError errors={opts.errors} name="content" />
          </>
        ) : (
          <p class="muted">This file is {f.fileType === "binary" ? "binary" : "too large to edit here"}: upload a replacement below.</p>
        )}
        <label for="upload">Replace by upload <span class="hint">optional</span></label>
        <input type="file" id="upload" name="upload" />
        <FieldError errors={opts.errors} name="body" />
        <div class="actions"><button type="submit">Save</button></div>
      </form>
    </Layout>,
    opts.status ?? 200,
  );
}

export const fileRoutes = new Hono<ConsoleEnv>()
  .post("/ui/bizs/:biz/services/:app/files/content", async (c) => {
    const v = await formValues(c);
    const upload = await formFile(c, "upload");
    v.path = trimDir((v.path ?? "").trim());
    v.name = (v.name ?? "").trim() || upload?.name || "";
    try {
      checkDir(v.path);
      checkName(v.name);
      const bytes = upload ? new Uint8Array(await upload.arrayBuffer()) : new TextEncoder().encode((v.content ?? "").replace(/\r\n/g, "\n"));
      const r = await putFileContent(c.var.deps.db, c.var.deps.blobs, c.var.session.actor, bizOf(c), appOf(c), { path: v.path, name: v.name, bytes, ...meta(v) }, { now: c.var.deps.clock(), maxBytes: c.var.deps.limits.maxFileBytes });
      return done(c, `${serviceUrl(c)}#files`, `${r.created ? "Added" : "Replaced"} ${r.file.path === "/" ? "" : r.file.path}/${r.file.name}.`);
    } catch (e) {
      return servicePage(c, { values: v, errors: errorsOf(e), section: "file", status: 400 });
    }
  })
  .get("/ui/bizs/:biz/services/:app/files/:fid", (c) => editPage(c))
  .post("/ui/bizs/:biz/services/:app/files/:fid", async (c) => {
    const v = await formValues(c);
    const upload = await formFile(c, "upload");
    try {
      const f = await getFile(c.var.deps.db, bizOf(c), appOf(c), (idParam(c, "fid") ?? 0));
      const bytes = upload ? new Uint8Array(await upload.arrayBuffer()) : v.content !== undefined ? new TextEncoder().encode(v.content.replace(/\r\n/g, "\n")) : null;
      if (!bytes) throw new Error("no content");
      await putFileContent(c.var.deps.db, c.var.deps.blobs, c.var.session.actor, bizOf(c), appOf(c), { path: f.path, name: f.name, bytes, ...meta(v) }, { now: c.var.deps.clock(), maxBytes: c.var.deps.limits.maxFileBytes });
    } catch (e) {
      if (e instanceof Error && e.message === "no content") return editPage(c, { values: v, errors: { body: "body: choose a file to upload" }, status: 400 });
      return editPage(c, { values: v, errors: errorsOf(e), status: 400 });
    }
    return done(c, `${serviceUrl(c)}#files`, "File saved.");
  })
  .post("/ui/bizs/:biz/services/:app/files/:fid/delete", async (c) => {
    try {
      await deleteFile(c.var.deps.db, c.var.session.actor, bizOf(c), appOf(c), (idParam(c, "fid") ?? 0));
    } catch (e) {
      return servicePage(c, { errors: errorsOf(e), section: "file", status: 404 });
    }
    return done(c, `${serviceUrl(c)}#files`, "File deleted.");
  });
