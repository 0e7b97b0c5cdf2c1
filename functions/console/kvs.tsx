/** @jsxImportSource hono/jsx */
/**
 * The key-value editor's routes: add, an edit page whose input fits the item's type, an audited
 * reveal, delete, and import/export as JSON or YAML (the list and forms: ./kv-section.tsx).
 */
import { Hono } from "hono";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { DomainError, invalid } from "../core/errors";
import { checkKvKey, KV_TYPES, MASK, type KvType } from "../core/kv-values";
import { createKv, deleteKv, exportKvs, getKv, importKvs, putKv, type KvImport } from "../core/kvs";
import { bizOf, commonProps, done, formFile, formValues, type CC, type ConsoleEnv } from "./env";
import { kvUrl, TYPE_HINTS, TypeSelect, ValueInput } from "./kv-section";
import { Badge, Csrf, errorsOf, FieldError, FormError, Layout, TextField, type FormErrors, type FormValues } from "./layout";
import { servicePage } from "./service-page";
import { appOf, serviceUrl } from "./service-common";

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
            <form method="post" action={`${kvUrl(c, key)}/reveal`}>
              <Csrf token={c.var.session.csrf} />
              <button type="submit" class="secondary">Reveal</button>
            </form>
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
