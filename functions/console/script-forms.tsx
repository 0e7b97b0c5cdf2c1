/** @jsxImportSource hono/jsx */
/** What the script screens share: the form schemas, the content editor and the built-in variables. */
import { z } from "zod";
import { SafeName } from "../http/openapi";
import { bizOf, type CC } from "./env";
import { FieldError, type FormErrors, type FormValues } from "./layout";

export type Status = 200 | 400 | 404 | 409 | 413 | 422;

/** The seed's built-in variables, each with a one-line meaning; a click inserts it into the content. */
export const builtInVariables: [string, string][] = [
  ["bk_bscp_temp_dir", "configuration root on the client (temp_dir, default /data/bscp)"],
  ["bk_bscp_biz", "the biz id, e.g. 10"],
  ["bk_bscp_app", "the service name, e.g. service_demo"],
  ["bk_bscp_app_temp_dir", "the service's folder: {temp_dir}/{biz}/{app} (files/ and hooks/ inside)"],
  ["bk_bscp_current_version_name", "name of the version being applied, e.g. V4"],
  ["bk_bscp_release_id", "id of that version"],
];

export const Tags = z
  .string()
  .transform((s) => s.split(",").map((t) => t.trim()).filter(Boolean))
  .pipe(z.array(z.string().max(64).regex(/^[^\u0000-\u001f,]+$/, "no control characters")).max(20, "at most 20 tags"));
export const Memo = z.string().max(4096);
const optionalName = z.string().transform((s) => s.trim() || undefined).pipe(SafeName.optional());

export const CreateForm = z.object({
  name: z.string().trim().pipe(SafeName),
  type: z.enum(["shell", "python"], "choose shell or python"),
  tags: Tags,
  memo: Memo,
  versionName: optionalName,
  content: z.string(),
});
export const VersionForm = z.object({ name: optionalName, memo: Memo, content: z.string() });

/** Browsers post every textarea line break as CRLF, whatever was typed; scripts run on Unix. Made LF here, so the console never reports a normalization the user did not cause. */
export const lf = (s: string | undefined) => (s ?? "").replace(/\r\n/g, "\n");

export const VariablesPanel = () => (
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

export const ContentEditor = (p: { values: FormValues; errors?: FormErrors }) => (
  <div>
    <label for="content">Content <span class="hint" data-testid="line-endings">saved with LF line endings: Windows (CRLF) endings are made LF, as the API does and reports</span></label>
    <textarea id="content" name="content" spellcheck={false} class={p.errors?.content ? "invalid" : ""}>{"\n" + (p.values.content ?? "")}</textarea>
    <FieldError errors={p.errors} name="content" />
  </div>
);


export const scriptsUrl = (c: CC) => `/ui/bizs/${bizOf(c)}/scripts`;
export const scriptOpts = (c: CC) => ({ now: c.var.deps.clock(), maxBytes: c.var.deps.limits.maxScriptBytes });
export const toLf = (v: FormValues) => void (v.content = lf(v.content));
