/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { z } from "zod";
import { listFiles } from "../core/files";
import { getHooks, setHooks, type HookKind } from "../core/hooks";
import { listKvs } from "../core/kvs";
import { KvDiffView, KvSection, KvVersionTable } from "./kvs";
import { createRelease, diffReleases, getRelease, listReleases } from "../core/releases";
import { listScripts, defaultVersionName } from "../core/scripts";
import { createService, listServices, loadService, requireFileService, SERVICE_NAME } from "../core/services";
import { SafeName } from "../http/openapi";
import { bizOf, commonProps, done, idParam, idQuery, submit, type CC, type ConsoleEnv } from "./env";
import { FileForm } from "./files";
import { Badge, Csrf, DiffView, Empty, FieldError, FormError, Layout, TextField, when, type FormErrors, type FormValues, PostButton } from "./layout";
import { PublishSection } from "./publish";

type Status = 200 | 400 | 404 | 409 | 413 | 422;
const svcBase = (c: CC) => `/ui/bizs/${bizOf(c)}/services`;
export const appOf = (c: CC) => c.req.param("app") ?? "";
export const serviceUrl = (c: CC) => `${svcBase(c)}/${encodeURIComponent(appOf(c))}`;
const sizeOf = (n: number) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
const full = (f: { path: string; name: string }) => (f.path === "/" ? `/${f.name}` : `${f.path}/${f.name}`);

async function listPage(c: CC, values: FormValues = { configType: "file" }, errors?: FormErrors, status: Status = 200) {
  const biz = bizOf(c);
  const list = await listServices(c.var.deps.db, biz, { limit: 500, offset: 0 });
  return c.html(
    <Layout title="Services" nav="services" biz={biz} {...commonProps(c)}>
      <h1>Services</h1>
      <div class="scroll">
        <table>
          <thead><tr><th>name</th><th>type</th><th>description</th><th>created</th></tr></thead>
          <tbody>
            {list.items.map((s) => (
              <tr>
                <td><a href={`${svcBase(c)}/${encodeURIComponent(s.name)}`}>{s.name}</a></td>
                <td><Badge kind="type" label={s.configType} /></td>
                <td class="small">{s.memo}</td>
                <td class="small">{when(s.createdAt)}</td>
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

/** One select per hook kind; each script shows its online version (scripts without one cannot be bound). */
const HookSelect = (p: { kind: HookKind; current: { scriptId: number; followsOnline: boolean; version: { name: string } | null } | null; scripts: { id: number; name: string; type: string; onlineVersion: { name: string } | null }[]; errors?: FormErrors }) => (
  <div>
    <label for={p.kind}>{p.kind === "pre" ? "Pre-script" : "Post-script"} <span class="hint">{p.kind === "pre" ? "runs before the files land" : "runs after the files land"}</span></label>
    <select id={p.kind} name={p.kind}>
      <option value="">— none —</option>
      {p.scripts.map((s) => (
        <option value={String(s.id)} selected={p.current?.scriptId === s.id} disabled={!s.onlineVersion}>
          {s.name} ({s.type}) — {s.onlineVersion ? `online ${s.onlineVersion.name}` : "no online version"}
        </option>
      ))}
    </select>
    {p.current ? <p class="small muted">Draft uses {p.current.version?.name ?? "no version"}{p.current.followsOnline ? " (follows the online version)" : " (pinned)"}.</p> : null}
    <FieldError errors={p.errors} name={p.kind} />
    <FieldError errors={p.errors} name={`${p.kind}.scriptId`} />
    <FieldError errors={p.errors} name={`${p.kind}.versionId`} />
  </div>
);

export type ServicePageOpts = { errors?: FormErrors; values?: FormValues; section?: string; status?: Status; diff?: Awaited<ReturnType<typeof diffReleases>> };

export async function servicePage(c: CC, opts: ServicePageOpts = {}) {
  const biz = bizOf(c);
  const app = appOf(c);
  const { db } = c.var.deps;
  const s = await loadService(db, biz, app);
  const isFile = s.configType === "file";
  let scriptsUnavailable: string | null = null;
  try {
    requireFileService(s, "scripts");
  } catch (e) {
    scriptsUnavailable = (e as Error).message;
  }
  const [files, hooks, scriptList, versions, kvItems] = await Promise.all([
    isFile ? listFiles(db, biz, app, { limit: 500, offset: 0 }) : null,
    getHooks(db, biz, app),
    isFile ? listScripts(db, biz, { limit: 500, offset: 0 }) : null,
    listReleases(db, biz, app, { limit: 100, offset: 0 }),
    isFile ? null : listKvs(db, biz, app, { limit: 5000, offset: 0 }),
  ]);
  const { errors, section } = opts;
  const err = (name: string) => (section === name ? errors : undefined);
  const vals = (name: string) => (section === name ? opts.values : undefined);
  const base = serviceUrl(c);
  return c.html(
    <Layout title={s.name} nav="services" biz={biz} {...commonProps(c)}>
      <p class="small"><a href={svcBase(c)}>← Services</a></p>
      <h1>{s.name} <Badge kind="type" label={s.configType} /></h1>
      <p class="muted">{s.memo}</p>
      <p><a class="button secondary" href={`${base}/clients`}>Clients</a> <a class="button secondary" href={`${base}/webhooks`}>Webhooks</a></p>

      <h2 id="files">{isFile ? "Config files" : "Key-value items"}</h2>
      {isFile && files ? (
        <>
          <div class="scroll">
            <table>
              <thead><tr><th>file</th><th>size</th><th>type</th><th>permission</th><th>description</th><th>updated</th><th></th></tr></thead>
              <tbody>
                {files.items.map((f) => (
                  <tr data-file={full(f)}>
                    <td><a href={`${base}/files/${f.id}`}><code>{full(f)}</code></a></td>
                    <td class="small">{sizeOf(f.size)}</td>
                    <td>{f.fileType}</td>
                    <td><code>{f.user}:{f.group} {f.privilege}</code></td>
                    <td class="small">{f.memo}</td>
                    <td class="small">{when(f.updatedAt)}</td>
                    <td>
                      <PostButton action={`${base}/files/${f.id}/delete`} csrf={c.var.session.csrf} label="Delete" kind="secondary" />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {files.items.length === 0 ? <Empty>No config file in the draft yet.</Empty> : null}
          <details open>
            <summary>Add a config file (upload or type it)</summary>
            <FileForm c={c} action={`${base}/files/content`} values={vals("file") ?? { path: "/etc/", user: "root", group: "root", privilege: "644" }} errors={err("file")} />
          </details>
        </>
      ) : (
        <>
          <p class="small muted" data-testid="kv-files">This is a kv service: its configuration is key-value items, not files.</p>
          <KvSection c={c} items={kvItems!} errors={err("kv")} values={vals("kv")} importErrors={err("kv-import")} />
        </>
      )}

      <h2 id="scripts">Pre/post scripts</h2>
      {scriptsUnavailable ? (
        <p class="flash" data-testid="scripts-unavailable">Scripts are unavailable here: {scriptsUnavailable}.</p>
      ) : (
        <form method="post" action={`${base}/hooks`} class="card">
          <Csrf token={c.var.session.csrf} />
          <FormError errors={err("hooks")} known={["pre", "post", "pre.scriptId", "post.scriptId", "pre.versionId", "post.versionId"]} />
          <div class="row">
            <HookSelect kind="pre" current={hooks.pre} scripts={scriptList?.items ?? []} errors={err("hooks")} />
            <HookSelect kind="post" current={hooks.post} scripts={scriptList?.items ?? []} errors={err("hooks")} />
          </div>
          <p class="small muted">A bound script follows its online version in the draft; creating a version copies the script's content into it.</p>
          <div class="actions"><button type="submit">Save scripts</button> <a href={`/ui/bizs/${biz}/scripts`}>Manage scripts</a></div>
        </form>
      )}

      <h2 id="versions">Versions</h2>
      <form method="post" action={`${base}/versions`} class="card">
        <Csrf token={c.var.session.csrf} />
        <FormError errors={err("version")} known={["name", "memo"]} />
        <div class="row">
          <TextField name="name" id="version-name" label="Version name" hint="e.g. V4; leave empty for the default" placeholder={defaultVersionName(c.var.deps.clock())} values={vals("version")} errors={err("version")} />
          <TextField name="memo" id="version-memo" label="Description" values={vals("version")} errors={err("version")} />
        </div>
        <div class="actions"><button type="submit">Create version from the draft</button></div>
      </form>
      <div class="scroll">
        <table>
          <thead><tr><th>version</th><th>files</th><th>published</th><th>description</th><th>created</th><th></th></tr></thead>
          <tbody>
            {versions.items.map((r) => (
              <tr data-release={r.name}>
                <td><a href={`${base}/versions/${r.id}`}>{r.name}</a></td>
                <td>{r.fileCount}</td>
                <td>{r.publishCount ? `${r.publishCount}×` : <span class="muted">never</span>}</td>
                <td class="small">{r.memo}</td>
                <td class="small">{when(r.createdAt)} by {r.createdBy}</td>
                <td><a href={`${base}/versions/${r.id}#publish`}>publish…</a></td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {versions.items.length >= 2 ? (
        <form method="get" action={`${base}/versions/diff`} class="filters" style="margin-top:.8rem">
          <div>
            <label for="from">From</label>
            <select id="from" name="from">{versions.items.map((r, i) => <option value={String(r.id)} selected={i === 1}>{r.name}</option>)}</select>
          </div>
          <div>
            <label for="to">To</label>
            <select id="to" name="to">{versions.items.map((r, i) => <option value={String(r.id)} selected={i === 0}>{r.name}</option>)}</select>
          </div>
          <div><button type="submit" class="secondary">Compare versions</button></div>
        </form>
      ) : null}
      {versions.items.length === 0 ? <Empty>No version yet: add files or scripts, then create one.</Empty> : null}

      <PublishSection c={c} service={s} errors={err("publish")} />
    </Layout>,
    opts.status ?? 200,
  );
}

type ReleaseDiff = Awaited<ReturnType<typeof diffReleases>>;

/** Files added, removed, changed (with text diffs) and script changes between two versions. */
export const ReleaseDiffView = ({ d }: { d: ReleaseDiff }) => (
  <div data-testid="release-diff">
    {d.identical ? <p class="muted">{d.from.name} and {d.to.name} are identical.</p> : null}
    {d.files.added.length ? <p>Added: {d.files.added.map((f) => <code>{full(f)} </code>)}</p> : null}
    {d.files.removed.length ? <p>Removed: {d.files.removed.map((f) => <code>{full(f)} </code>)}</p> : null}
    {d.files.changed.map((f) => (
      <div>
        <p>Changed <code>{full(f)}</code>{f.permissionChanged ? ` — permission ${f.from.user}:${f.from.group} ${f.from.privilege} → ${f.to.user}:${f.to.group} ${f.to.privilege}` : ""}{f.diffSkipped ? ` — no text diff (${f.diffSkipped})` : ""}</p>
        {f.diff ? <DiffView diff={f.diff} /> : null}
      </div>
    ))}
    {(["pre", "post"] as const).map((k) => {
      const h = d.hooks[k];
      return h && h.status !== "unchanged" ? (
        <div>
          <p>{k}-script {h.status}: {h.from ? `${h.from.scriptName}@${h.from.versionName}` : "none"} → {h.to ? `${h.to.scriptName}@${h.to.versionName}` : "none"}</p>
          {h.diff ? <DiffView diff={h.diff} /> : null}
        </div>
      ) : null;
    })}
    {d.files.unchanged ? <p class="small muted">{d.files.unchanged} file(s) unchanged.</p> : null}
    <KvDiffView d={d.kvs} />
  </div>
);

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
      <h2>Files</h2>
      <div class="scroll">
        <table>
          <thead><tr><th>file</th><th>size</th><th>permission</th><th>sha256</th></tr></thead>
          <tbody>
            {r.files.map((f) => (
              <tr><td><code>{full(f)}</code></td><td class="small">{sizeOf(f.size)}</td><td><code>{f.user}:{f.group} {f.privilege}</code></td><td class="small"><code>{f.sha256.slice(0, 12)}…</code></td></tr>
            ))}
          </tbody>
        </table>
      </div>
      {r.kvs.length ? <KvVersionTable items={r.kvs} /> : null}
      <h2>Scripts in this version</h2>
      {(["pre", "post"] as const).map((k) => {
        const h = r.hooks[k];
        return (
          <div>
            <p><strong>{k}-script:</strong> {h ? `${h.scriptName} @ ${h.versionName} (${h.type})` : <span class="muted">none</span>}</p>
            {h ? <pre>{h.content}</pre> : null}
          </div>
        );
      })}
      <PublishSection c={c} service={s} release={{ id: r.id, name: r.name }} errors={opts.errors} />
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
  .post("/ui/bizs/:biz/services/:app/versions", (c) =>
    submit(
      c,
      CreateVersion,
      (d) => createRelease(c.var.deps.db, c.var.session.actor, bizOf(c), appOf(c), d, c.var.deps.clock()),
      (values, errors, status) => servicePage(c, { values, errors, status, section: "version" }),
      (r) => done(c, `${serviceUrl(c)}/versions/${r.id}`, `Version ${r.name} created from the draft.`),
    ),
  )
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
