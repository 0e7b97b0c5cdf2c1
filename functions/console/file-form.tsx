/** @jsxImportSource hono/jsx */
import type { CC } from "./env";
import { Csrf, FieldError, FormError, TextField, type FormErrors, type FormValues } from "./layout";

/** A file's owner and mode fields, on the add form and the edit page. */
export const Permission = (p: { values?: FormValues; errors?: FormErrors }) => (
  <div class="row">
    <TextField name="user" label="User" values={p.values} errors={p.errors} />
    <TextField name="group" label="Group" values={p.values} errors={p.errors} />
    <TextField name="privilege" label="Privilege" hint="e.g. 644" values={p.values} errors={p.errors} />
  </div>
);

/** Add a file: upload one, or type its text. The path and name are checked by the same rules as the API. */
export const FileForm = (p: { c: CC; action: string; values?: FormValues; errors?: FormErrors }) => (
  <form method="post" action={p.action} enctype="multipart/form-data" class="card">
    <Csrf token={p.c.var.session.csrf} />
    <FormError errors={p.errors} known={["path", "name", "user", "group", "privilege", "memo", "content", "body"]} />
    <div class="row">
      <TextField name="path" label="Directory" hint="absolute, e.g. /etc/nginx" values={p.values} errors={p.errors} required />
      <TextField name="name" label="File name" hint="empty: the uploaded file's name" values={p.values} errors={p.errors} />
    </div>
    <Permission values={p.values} errors={p.errors} />
    <TextField name="memo" label="Description" values={p.values} errors={p.errors} />
    <label for="upload">Upload</label>
    <input type="file" id="upload" name="upload" />
    <FieldError errors={p.errors} name="body" />
    <label for="content">…or type the text <span class="hint">used when no file is chosen</span></label>
    <textarea id="content" name="content" spellcheck={false} class="short">{"\n" + (p.values?.content ?? "")}</textarea>
    <FieldError errors={p.errors} name="content" />
    <div class="actions"><button type="submit">Save file</button></div>
  </form>
);
