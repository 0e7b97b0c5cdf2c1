/** @jsxImportSource hono/jsx */
/**
 * The key-value section of a kv service's draft screen and the inputs the edit page shares (no
 * page imports: the routes live in ./kvs.tsx). No inline script or style (the console's CSP).
 */
import { KV_TYPES, MASK, type KvType } from "../core/kv-values";
import type { listKvs } from "../core/kvs";
import type { CC } from "./env";
import { preview } from "./kv-views";
import { Badge, ConfirmButton, Csrf, Empty, FieldError, FormError, TextField, type FormErrors, type FormValues } from "./layout";
import { serviceUrl } from "./service-common";

export type Items = Awaited<ReturnType<typeof listKvs>>;

export const TYPE_HINTS: Record<KvType, string> = {
  string: "one line",
  number: "a finite decimal number, e.g. 5432 or 0.25",
  text: "any text, several lines",
  json: "must parse as JSON",
  yaml: "must parse as YAML",
  xml: "must be well-formed XML",
  secret: "stored encrypted, shown as ****** (one line)",
};

export const kvUrl = (c: CC, key?: string) => `${serviceUrl(c)}/kvs${key ? `/${encodeURIComponent(key)}` : ""}`;

export const TypeSelect = (p: { values?: FormValues; errors?: FormErrors }) => (
  <div>
    <label for="kv-type">Type</label>
    <select id="kv-type" name="type">
      {KV_TYPES.map((t) => <option value={t} selected={(p.values?.type ?? "string") === t}>{t} — {TYPE_HINTS[t]}</option>)}
    </select>
    <FieldError errors={p.errors} name="type" />
  </div>
);

/** The input for a value of `type`: one line, a number, a masked field, or a text area. */
export const ValueInput = (p: { type: KvType; value: string; errors?: FormErrors }) => {
  const cls = p.errors?.value ? "invalid" : "";
  if (p.type === "secret") return <input type="password" id="kv-value" name="value" value="" autocomplete="new-password" placeholder="leave empty to keep the stored secret" class={cls} />;
  if (p.type === "string") return <input type="text" id="kv-value" name="value" value={p.value} class={cls} />;
  if (p.type === "number") return <input type="text" id="kv-value" name="value" value={p.value} inputmode="decimal" class={cls} />;
  return <textarea id="kv-value" name="value" spellcheck={false} class={cls}>{"\n" + p.value}</textarea>;
};

/** The section of the service page for a kv service (replaces "Config files"). */
export const KvSection = (p: { c: CC; items: Items; errors?: FormErrors; values?: FormValues; importErrors?: FormErrors }) => {
  const { c } = p;
  const base = kvUrl(c);
  return (
    <div data-testid="kv-items">
      <div class="scroll">
        <table>
          <thead><tr><th>key</th><th>type</th><th>value</th><th>description</th><th></th></tr></thead>
          <tbody>
            {p.items.items.map((k) => (
              <tr data-key={k.key}>
                <td><a href={kvUrl(c, k.key)}><code>{k.key}</code></a></td>
                <td><Badge kind="type" label={k.type} /></td>
                <td><code>{preview(k.value)}</code></td>
                <td class="small">{k.memo}</td>
                <td><ConfirmButton action={`${kvUrl(c, k.key)}/delete`} csrf={c.var.session.csrf} label="Delete" confirm={`Delete ${k.key} from the draft?`} detail="Versions already created keep their copy; the next version will not have it." /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {p.items.items.length === 0 ? <Empty>No key-value item in the draft yet.</Empty> : null}
      <details open>
        <summary>Add an item</summary>
        <form method="post" action={base} class="card">
          <Csrf token={c.var.session.csrf} />
          <FormError errors={p.errors} known={["key", "type", "value", "memo"]} />
          <div class="row">
            <TextField name="key" id="kv-key" label="Key" hint="letters, digits, _ . -" values={p.values} errors={p.errors} required />
            <TypeSelect values={p.values} errors={p.errors} />
          </div>
          <label for="kv-new-value">Value <span class="hint">checked against the type</span></label>
          <textarea id="kv-new-value" name="value" spellcheck={false} class={p.errors?.value ? "invalid" : ""}>{"\n" + (p.values?.type === "secret" ? "" : (p.values?.value ?? ""))}</textarea>
          <FieldError errors={p.errors} name="value" />
          <TextField name="memo" id="kv-memo" label="Description" values={p.values} errors={p.errors} />
          <div class="actions"><button type="submit">Add item</button></div>
        </form>
      </details>
      <details>
        <summary>Import or export (JSON or YAML)</summary>
        <p class="small muted">
          Export: <a href={`${serviceUrl(c)}/kv-export?format=json`} download>items.json</a> · <a href={`${serviceUrl(c)}/kv-export?format=yaml`} download>items.yaml</a> — <code>{"{key: {type, value}}"}</code>, secrets as <code>{MASK}</code> (importing <code>{MASK}</code> keeps the stored secret).
        </p>
        <form method="post" action={`${serviceUrl(c)}/kv-import`} enctype="multipart/form-data" class="card">
          <Csrf token={c.var.session.csrf} />
          <FormError errors={p.importErrors} known={["items"]} />
          <label for="kv-upload">Upload a .json or .yaml file</label>
          <input type="file" id="kv-upload" name="upload" accept=".json,.yaml,.yml,application/json,text/yaml" />
          <label for="kv-import-text">…or paste it</label>
          <textarea id="kv-import-text" name="text" spellcheck={false}>{"\n"}</textarea>
          <FieldError errors={p.importErrors} name="items" />
          <label><input type="checkbox" name="prune" value="true" /> also delete the keys not in the import</label>
          <div class="actions"><button type="submit">Import (all or nothing)</button></div>
        </form>
      </details>
    </div>
  );
};

