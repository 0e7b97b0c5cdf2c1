/** @jsxImportSource hono/jsx */
/**
 * Pieces every service screen shares (URLs, the service's tab bar, sizes and paths, the version
 * diff). The service pages, files, publish, clients, webhooks and overview all import from here, so
 * none of them imports another page.
 */
import type { diffReleases } from "../core/releases";
import { bizOf, type CC } from "./env";
import type { MaskedKv } from "../core/kv-versions";
import { KvDiffView, KvVersionTable } from "./kv-views";
import { Badge, DiffView } from "./layout";

export const appOf = (c: CC) => c.req.param("app") ?? "";
/** `/ui/bizs/{biz}/services`. */
export const servicesUrl = (c: CC) => `/ui/bizs/${bizOf(c)}/services`;
/** `/ui/bizs/{biz}/services/{app}` of the service in the path. */
export const serviceUrl = (c: CC) => `${servicesUrl(c)}/${encodeURIComponent(appOf(c))}`;

/** Bytes as B / KiB / MiB with one decimal. */
export const sizeOf = (n: number) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
/** A file's full path on the hosts. */
export const fullPath = (f: { path: string; name: string }) => (f.path === "/" ? `/${f.name}` : `${f.path}/${f.name}`);

export type ServiceTab = "overview" | "draft" | "clients" | "rollouts" | "webhooks";

/** The service's name, type and tabs, at the top of each of its screens. */
export const ServiceHeader = (p: { c: CC; name: string; configType: string; memo?: string; tab: ServiceTab }) => {
  const base = serviceUrl(p.c);
  const tabs: [ServiceTab, string, string][] = [
    ["overview", "Overview", `${base}/overview`],
    ["draft", "Files, scripts, versions", base],
    ["clients", "Clients", `${base}/clients`],
    ["rollouts", "Rollouts", `${base}/rollouts`],
    ["webhooks", "Webhooks", `${base}/webhooks`],
  ];
  return (
    <>
      <p class="small"><a href={servicesUrl(p.c)}>← Services</a></p>
      <h1>{p.name} <Badge kind="type" label={p.configType} /></h1>
      {p.memo ? <p class="muted">{p.memo}</p> : null}
      <nav class="tabs" aria-label="service">
        {tabs.map(([t, label, href]) => (
          <a href={href} class={t === p.tab ? "on" : ""} aria-current={t === p.tab ? "page" : undefined}>{label}</a>
        ))}
      </nav>
    </>
  );
};

type ReleaseDiff = Awaited<ReturnType<typeof diffReleases>>;

/** Files added, removed, changed (with text diffs) and script changes between two versions. */
export const ReleaseDiffView = ({ d }: { d: ReleaseDiff }) => (
  <div data-testid="release-diff">
    {d.identical ? <p class="muted">{d.from.name} and {d.to.name} are identical.</p> : null}
    {d.files.added.length ? <p>Added: {d.files.added.map((f) => <code>{fullPath(f)} </code>)}</p> : null}
    {d.files.removed.length ? <p>Removed: {d.files.removed.map((f) => <code>{fullPath(f)} </code>)}</p> : null}
    {d.files.changed.map((f) => (
      <div>
        <p>Changed <code>{fullPath(f)}</code>{f.permissionChanged ? ` — permission ${f.from.user}:${f.from.group} ${f.from.privilege} → ${f.to.user}:${f.to.group} ${f.to.privilege}` : ""}{f.diffSkipped ? ` — no text diff (${f.diffSkipped})` : ""}</p>
        {f.diff ? <DiffView diff={f.diff} /> : null}
      </div>
    ))}
    {(["pre", "post", "validate"] as const).map((k) => {
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

/** What a version sends out: its files and its scripts (the first-publish review and the version page). */
export const VersionContents = (p: { files: { path: string; name: string; size: number; user: string; group: string; privilege: string; sha256: string }[]; hooks: Record<"pre" | "post" | "validate", { scriptName: string; versionName: string; type: string; content?: string } | null>; kvs?: MaskedKv[]; showContent?: boolean }) => (
  <div data-testid="version-contents">
    {p.kvs?.length ? <KvVersionTable items={p.kvs} /> : null}
    <div class="scroll">
      <table>
        <thead><tr><th>file</th><th>size</th><th>permission</th><th>sha256</th></tr></thead>
        <tbody>
          {p.files.map((f) => (
            <tr data-file={fullPath(f)}><td><code>{fullPath(f)}</code></td><td class="small">{sizeOf(f.size)}</td><td><code>{f.user}:{f.group} {f.privilege}</code></td><td class="small"><code>{f.sha256.slice(0, 12)}…</code></td></tr>
          ))}
        </tbody>
      </table>
    </div>
    {p.files.length === 0 ? <p class="muted">No file.</p> : null}
    {(["pre", "post", "validate"] as const).map((k) => {
      const h = p.hooks[k];
      return (
        <div data-hook={k}>
          <p><strong>{k}-script:</strong> {h ? `${h.scriptName} @ ${h.versionName} (${h.type})` : <span class="muted">none</span>}</p>
          {h && p.showContent && h.content !== undefined ? <pre>{h.content}</pre> : null}
        </div>
      );
    })}
  </div>
);
