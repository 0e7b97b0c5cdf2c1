/** @jsxImportSource hono/jsx */
/** A service's draft screen: config files, pre/post scripts, versions, publish history. */
import { listFiles } from "../core/files";
import { getHooks, type HookKind } from "../core/hooks";
import { listKvs } from "../core/kvs";
import { listReleases, type diffReleases } from "../core/releases";
import { defaultVersionName, listScripts } from "../core/scripts";
import { loadService, requireFileService } from "../core/services";
import { bizOf, commonProps, type CC } from "./env";
import { FileForm } from "./file-form";
import { KvSection } from "./kv-section";
import { ConfirmButton, Csrf, Empty, FieldError, FormError, Layout, TextField, when, type FormErrors, type FormValues } from "./layout";
import { PublishHistory } from "./publish";
import { OpenRolloutBanner } from "./rollout-common";
import { appOf, fullPath, ServiceHeader, serviceUrl, sizeOf } from "./service-common";
import { failuresByFile, FileFailures, ValidatorsSection } from "./validators";
import type { ValidationFailure } from "../core/validators";

type Status = 200 | 400 | 404 | 409 | 413 | 422;

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

export type ServicePageOpts = { errors?: FormErrors; values?: FormValues; section?: string; status?: Status; diff?: Awaited<ReturnType<typeof diffReleases>>; failures?: ValidationFailure[] };

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
  const failed = failuresByFile(opts.failures);
  return c.html(
    <Layout title={s.name} nav="services" biz={biz} {...commonProps(c)}>
      <ServiceHeader c={c} name={s.name} configType={s.configType} memo={s.memo} tab="draft" />
      <OpenRolloutBanner c={c} biz={biz} app={app} />

      <h2 id="files">{isFile ? "Config files" : "Key-value items"}</h2>
      {isFile && files ? (
        <>
          <div class="scroll">
            <table>
              <thead><tr><th>file</th><th>size</th><th>type</th><th>permission</th><th>description</th><th>updated</th><th></th></tr></thead>
              <tbody>
                {files.items.map((f) => (
                  <tr data-file={fullPath(f)}>
                    <td><a href={`${base}/files/${f.id}`}><code>{fullPath(f)}</code></a><FileFailures failures={failed.get(fullPath(f))} /></td>
                    <td class="small">{sizeOf(f.size)}</td>
                    <td>{f.fileType}</td>
                    <td><code>{f.user}:{f.group} {f.privilege}</code></td>
                    <td class="small">{f.memo}</td>
                    <td class="small">{when(f.updatedAt)}</td>
                    <td>
                      <ConfirmButton action={`${base}/files/${f.id}/delete`} csrf={c.var.session.csrf} label="Delete" confirm={`Delete ${fullPath(f)} from the draft?`} detail="Versions already created keep their copy; the next version will not have it." />
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

      {isFile ? <ValidatorsSection c={c} errors={err("validator")} values={vals("validator")} /> : null}

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
        <form method="get" action={`${base}/versions/diff`} class="filters spaced">
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

      <PublishHistory c={c} service={s} />
    </Layout>,
    opts.status ?? 200,
  );
}

