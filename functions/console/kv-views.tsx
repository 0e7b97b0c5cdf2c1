/** @jsxImportSource hono/jsx */
/** Read-only views of kv items shared by the version page, the publish review and the diff (no page imports). */
import type { diffKvs, MaskedKv } from "../core/kv-versions";

export const preview = (v: string) => (v.length > 80 ? `${v.slice(0, 80)}…` : v);

/** A version's items (secrets masked by the core). */
export const KvVersionTable = (p: { items: MaskedKv[] }) => (
  <>
    <p><strong>Key-value items</strong></p>
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

