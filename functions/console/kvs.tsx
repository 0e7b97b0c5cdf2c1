/** @jsxImportSource hono/jsx */
/**
 * The key-value editor of a kv service's page: the items (secrets masked), an add form, an edit
 * page whose input fits the item's type, an audited reveal, and import/export as JSON or YAML.
 * No inline script or style (the console's CSP forbids them).
 */
import { Hono } from "hono";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { DomainError, invalid } from "../core/errors";
import { checkKvKey, KV_TYPES, MASK, type KvType } from "../core/kv-values";
import type { diffKvs, MaskedKv } from "../core/kv-versions";
import { createKv, deleteKv, exportKvs, getKv, importKvs, putKv, type KvImport, type listKvs } from "../core/kvs";
import { bizOf, commonProps, done, formFile, formValues, type CC, type ConsoleEnv } from "./env";
import { Badge, Csrf, errorsOf, Empty, FieldError, FormError, Layout, PostButton, TextField, type FormErrors, type FormValues } from "./layout";
import { appOf, servicePage, serviceUrl } from "./services";

type Items = Awaited<ReturnType<typeof listKvs>>;

const TYPE_HINTS: Record<KvType, string> = {
  string: "one line",
  number: "a finite decimal number, e.g. 5432 or 0.25",
  text: "any text, several lines",
  json: "must parse as JSON",
  yaml: "must parse as YAML",
  xml: "must be well-formed XML",
  secret: "stored encrypted, shown as ****** (one line)",
};

const preview = (v: string) => (v.length > 80 ? `${v.slice(0, 80)}…` : v);
const kvUrl = (c: CC, key?: string) => `${serviceUrl(c)}/kvs${key ? `/${encodeURIComponent(key)}` : ""}`;

const TypeSelect = (p: { values?: FormValues; errors?: FormErrors }) => (
  <div>
    <label for="kv-type">Type</label>
    <select id="kv-type" name="type">
      {KV_TYPES.map((t) => <option value={t} selected={(p.values?.type ?? "string") === t}>{t} — {TYPE_HINTS[t]}</option>)}
    </select>
    <FieldError errors={p.errors} name="type" />
  </div>
);

/** The input for a value of `type`: one line, a number, a masked field, or a text area. */
const ValueInput = (p: { type: KvType; value: string; errors?: FormErrors }) => {
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
                <td><PostButton action={`${kvUrl(c, k.key)}/delete`} csrf={c.var.session.csrf} label="Delete" /></td>
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

/** A version's items (secrets masked by the core). */
export const KvVersionTable = (p: { items: MaskedKv[] }) => (
  <>
    <h2>Key-value items</h2>
    <div class="scroll">
      <table data-testid="version-kvs">
        <thead><tr><th>key</th><th>type</th><th>value</th></tr></thead>
        <tbody>{p.items.map((k) => <tr><td><code>{k.key}</code></td><td>{k.type}</td><td><code>{preview(k.value)}</code></td></tr>)}</tbody>
      </table>
    </div>
  </>
);

/** Keys added, removed and changed between two versions (secrets masked by the core). */
export const KvDiffView = ({ d }: { d: Awaited<ReturnType<typeof diffKvs>> }) =>
  d.added.length || d.removed.length || d.changed.length ? (
    <div data-testid="kv-diff">
      {d.added.length ? <p>Keys added: {d.added.map((k) => <code>{k.key} </code>)}</p> : null}
      {d.removed.length ? <p>Keys removed: {d.removed.map((k) => <code>{k.key} </code>)}</p> : null}
      {d.changed.map((k) => (
        <p>Key changed <code>{k.key}</code>: <code>{preview(k.from.value)}</code> → <code>{preview(k.to.value)}</code>{k.from.type !== k.to.type ? ` (type ${k.from.type} → ${k.to.type})` : ""}{k.valueChanged ? "" : " (description only)"}</p>
      ))}
      {d.unchanged ? <p class="small muted">{d.unchanged} key(s) unchanged.</p> : null}
    </div>
  ) : null;

async function editPage(c: CC, opts: { values?: FormValues; errors?: FormErrors; revealed?: string; status?: 200 | 400 | 404 | 409 | 413 | 422 } = {}) {
  const key = c.req.param("key") ?? "";
  const item = await getKv(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), key);
  const type = (opts.values?.type as KvType | undefined) ?? item.type;
  const value = opts.values?.value ?? (item.type === "secret" ? "" : item.value);
  return c.html(
    <Layout title={`${appOf(c)}: ${key}`} nav="services" biz={bizOf(c)} {...commonProps(c)}>
      <p class="small"><a href={`${serviceUrl(c)}#files`}>← {appOf(c)}</a></p>
      <h1><code>{key}</code> <Badge kind="type" label={item.type} /></h1>
      {item.type === "secret" ? (
        opts.revealed !== undefined ? (
          <p class="secret" data-testid="revealed">{opts.revealed}</p>
        ) : (
          <div class="card">
            <p>The value is stored encrypted and shown as <code>{MASK}</code>. Revealing it is recorded in the audit log.</p>
            <PostButton action={`${kvUrl(c, key)}/reveal`} csrf={c.var.session.csrf} label="Reveal" />
          </div>
        )
      ) : null}
      <form method="post" action={kvUrl(c, key)} class="card">
        <Csrf token={c.var.session.csrf} />
        <FormError errors={opts.errors} known={["type", "value", "memo"]} />
        <TypeSelect values={{ type }} errors={opts.errors} />
        <label for="kv-value">Value <span class="hint">{TYPE_HINTS[type]}</span></label>
        <ValueInput type={type} value={value} errors={opts.errors} />
        <FieldError errors={opts.errors} name="value" />
        <TextField name="memo" id="kv-memo" label="Description" values={opts.values ?? { memo: item.memo }} errors={opts.errors} />
        <div class="actions"><button type="submit">Save</button></div>
      </form>
    </Layout>,
    opts.status ?? 200,
  );
}

const statusOf = (e: unknown) => (e instanceof DomainError && e.code === "already_exists" ? 409 : e instanceof DomainError && e.code === "not_found" ? 404 : e instanceof DomainError && e.code === "failed_precondition" ? 422 : 400);
const typeOf = (v: string | undefined): KvType => {
  if (!(KV_TYPES as readonly string[]).includes(v ?? "")) throw invalid("type", `one of ${KV_TYPES.join(", ")}`);
  return v as KvType;
};
/** Forms send CRLF; one-line types (typed in a text area on the add form) lose trailing line breaks. */
function valueFromForm(type: KvType, raw: string | undefined): string {
  const v = (raw ?? "").replace(/\r\n/g, "\n");
  return type === "string" || type === "number" || type === "secret" ? v.replace(/\n+$/, "") : v;
}

/** `{key: {type, value, memo?}}` from JSON or YAML text (YAML reads JSON too). */
function parseImport(text: string): KvImport {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw invalid("items", `neither JSON nor YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw invalid("items", "expected a map {key: {type, value}}");
  const out: KvImport = {};
  for (const [key, it] of Object.entries(doc as Record<string, unknown>)) {
    checkKvKey(key, `items.${key}`);
    const item = it as { type?: string; value?: unknown; memo?: unknown } | null;
    if (!item || typeof item !== "object") throw invalid(`items.${key}`, "expected {type, value}");
    out[key] = { type: typeOf(item.type), value: typeof item.value === "number" ? item.value : typeof item.value === "string" ? item.value : JSON.stringify(item.value ?? ""), ...(typeof item.memo === "string" ? { memo: item.memo } : {}) };
  }
  return out;
}

export const kvRoutes = new Hono<ConsoleEnv>()
  .post("/ui/bizs/:biz/services/:app/kvs", async (c) => {
    const v = await formValues(c);
    try {
      const type = typeOf(v.type);
      const it = await createKv(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), { key: (v.key ?? "").trim(), type, value: valueFromForm(type, v.value), memo: v.memo });
      return done(c, `${serviceUrl(c)}#files`, `Added ${it.key}.`);
    } catch (e) {
      return servicePage(c, { values: v, errors: errorsOf(e), section: "kv", status: statusOf(e) });
    }
  })
  .get("/ui/bizs/:biz/services/:app/kv-export", async (c) => {
    const items = await exportKvs(c.var.deps, c.var.session.actor, bizOf(c), appOf(c));
    const yaml = c.req.query("format") === "yaml";
    const body = yaml ? toYaml(items) : JSON.stringify(items, null, 2) + "\n";
    return c.body(body, 200, { "content-type": yaml ? "text/yaml; charset=utf-8" : "application/json; charset=utf-8", "content-disposition": `attachment; filename="${appOf(c)}.${yaml ? "yaml" : "json"}"` });
  })
  .post("/ui/bizs/:biz/services/:app/kv-import", async (c) => {
    const v = await formValues(c);
    const upload = await formFile(c, "upload");
    try {
      const text = upload ? await upload.text() : (v.text ?? "");
      if (!text.trim()) throw invalid("items", "choose a file or paste the items");
      const r = await importKvs(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), parseImport(text), { prune: v.prune === "true" });
      return done(c, `${serviceUrl(c)}#files`, `Imported: ${r.added.length} added, ${r.changed.length} changed, ${r.removed.length} removed, ${r.unchanged.length} unchanged.`);
    } catch (e) {
      const errors = errorsOf(e, "items");
      return servicePage(c, { errors: Object.fromEntries(Object.values(errors).map((m) => ["items", m])), section: "kv-import", status: statusOf(e) });
    }
  })
  .get("/ui/bizs/:biz/services/:app/kvs/:key", (c) => editPage(c))
  .post("/ui/bizs/:biz/services/:app/kvs/:key/reveal", async (c) => {
    const it = await getKv(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), c.req.param("key"), true);
    return editPage(c, { revealed: it.value });
  })
  .post("/ui/bizs/:biz/services/:app/kvs/:key/delete", async (c) => {
    await deleteKv(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), c.req.param("key"));
    return done(c, `${serviceUrl(c)}#files`, `Deleted ${c.req.param("key")}.`);
  })
  .post("/ui/bizs/:biz/services/:app/kvs/:key", async (c) => {
    const v = await formValues(c);
    try {
      const type = typeOf(v.type);
      const value = valueFromForm(type, v.value);
      // An empty secret field keeps the stored value (it is never sent to the browser).
      await putKv(c.var.deps, c.var.session.actor, bizOf(c), appOf(c), c.req.param("key"), { type, value: type === "secret" && value === "" ? undefined : value, memo: v.memo });
    } catch (e) {
      return editPage(c, { values: v, errors: errorsOf(e), status: statusOf(e) });
    }
    return done(c, `${serviceUrl(c)}#files`, "Item saved.");
  });
