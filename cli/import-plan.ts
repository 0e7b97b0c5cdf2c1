/**
 * What `edgeconf import` does besides files, planned before anything changes and applied with an
 * undo for each step (see journal.ts): the pre/post/validate script bindings (creating a script the
 * biz lacks), the service's validators, and a kv service's items.
 */
import type { Api } from "./api.js";
import { HOOK_KINDS, type ArchivedHook, type ArchivedValidator, type HookKind, type KvValue } from "./archive.js";
import { UsageError, type Output } from "./context.js";
import type { Journal } from "./journal.js";

type ScriptRow = { id: number; name: string; type: string };
type ScriptVersionRow = { id: number; name: string; state: string; content?: string };
type Binding = { scriptId: number; versionId: number | null } | null;
type DraftHook = { scriptId: number; scriptName: string; followsOnline: boolean; version: { id: number } | null } | null;

/** One hook kind: bind an existing version, create the script and bind it, or unbind. */
type HookStep = { kind: HookKind; say: string; binding: (api: Api, journal: Journal) => Promise<Binding> };

async function planHook(api: Api, kind: HookKind, h: NonNullable<ArchivedHook>, content: string): Promise<HookStep> {
  const script = (await api.all<ScriptRow>(api.bizPath(`/scripts?search=${encodeURIComponent(h.scriptName)}`))).find((s) => s.name === h.scriptName);
  if (!script) {
    return {
      kind,
      say: `create script ${h.scriptName} (${h.type}, version ${h.versionName}) and bind it as the ${kind}-script`,
      binding: async (api, journal) => {
        const made = await api.json<{ id: number; version: { id: number } }>("POST", api.bizPath("/scripts"), { name: h.scriptName, type: h.type, content, versionName: h.versionName });
        journal.done(`creation of script ${h.scriptName}`, () => api.json("DELETE", api.bizPath(`/scripts/${made.id}?force=true`)));
        return { scriptId: made.id, versionId: made.version.id };
      },
    };
  }
  const conflict = (why: string) => new UsageError(`${kind}-script: script '${h.scriptName}' exists in biz ${api.biz} ${why}; bind a script by hand, or import with --skip-scripts`);
  if (script.type !== h.type) throw conflict(`as type ${script.type}, the archive's is ${h.type}`);
  const versions = await api.all<ScriptVersionRow>(api.bizPath(`/scripts/${script.id}/versions`));
  versions.sort((a, b) => Number(b.name === h.versionName) - Number(a.name === h.versionName));
  for (const v of versions) {
    const full = await api.json<ScriptVersionRow>("GET", api.bizPath(`/scripts/${script.id}/versions/${v.id}`));
    if (full.content !== content) continue;
    if (full.state === "not_deployed") throw conflict(`with this content only in version '${v.name}', which is not deployed yet`);
    return { kind, say: `bind script ${h.scriptName} version ${v.name} (same content) as the ${kind}-script`, binding: async () => ({ scriptId: script.id, versionId: v.id }) };
  }
  throw conflict("with other content");
}

export type HooksPlan = { steps: HookStep[]; apply(journal: Journal): Promise<void> };

/** The bindings to make; a conflicting script stops the import here, before anything changed. */
export async function planHooks(io: Output, api: Api, app: string, hooks: Record<HookKind, ArchivedHook>, entries: Map<string, { bytes: Buffer }>, prune: boolean): Promise<HooksPlan> {
  const draft = await api.json<Record<HookKind, DraftHook>>("GET", api.appPath(app, "/hooks"));
  const steps: HookStep[] = [];
  for (const kind of HOOK_KINDS) {
    const h = hooks[kind];
    const have = draft[kind] ?? null;
    if (h) steps.push(await planHook(api, kind, h, entries.get(h.entry)!.bytes.toString("utf8")));
    else if (have && prune) steps.push({ kind, say: `unbind the ${kind}-script ${have.scriptName}`, binding: async () => null });
    else if (have) io.out(`kept     ${kind}-script ${have.scriptName} (the archive has none; --prune unbinds it)`);
  }
  const before = Object.fromEntries(HOOK_KINDS.map((k) => [k, draft[k] ? { scriptId: draft[k]!.scriptId, versionId: draft[k]!.followsOnline ? null : (draft[k]!.version?.id ?? null) } : null]));
  return {
    steps,
    async apply(journal) {
      if (!steps.length) return;
      const body: Partial<Record<HookKind, Binding>> = {};
      for (const step of steps) body[step.kind] = await step.binding(api, journal);
      // One request binds every kind (the server does it in one transaction).
      await api.json("PUT", api.appPath(app, "/hooks"), body);
      journal.done("script bindings", () => api.json("PUT", api.appPath(app, "/hooks"), Object.fromEntries(steps.map((s) => [s.kind, before[s.kind]]))));
    },
  };
}

type ValidatorRow = ArchivedValidator & { id: number };
const sameCheck = (a: ArchivedValidator, b: ArchivedValidator) => a.pathGlob === b.pathGlob && a.kind === b.kind && JSON.stringify(a.schema ?? null) === JSON.stringify(b.schema ?? null);

/** Validators the archive has and the service lacks are added; with `prune`, the service's others are removed. */
export async function planValidators(api: Api, app: string, wanted: ArchivedValidator[], prune: boolean) {
  const have = (await api.json<{ items: ValidatorRow[] }>("GET", api.appPath(app, "/validators"))).items;
  const add = wanted.filter((w) => !have.some((h) => sameCheck(h, w)));
  const remove = prune ? have.filter((h) => !wanted.some((w) => sameCheck(h, w))) : [];
  const kept = prune ? [] : have.filter((h) => !wanted.some((w) => sameCheck(h, w)));
  const body = (v: ArchivedValidator) => ({ pathGlob: v.pathGlob, kind: v.kind, ...(v.schema != null && { schema: v.schema }), memo: v.memo });
  return {
    lines: [...add.map((v) => `add validator ${v.kind} ${v.pathGlob}`), ...remove.map((v) => `remove validator ${v.kind} ${v.pathGlob}`), ...kept.map((v) => `kept     validator ${v.kind} ${v.pathGlob} (not in the archive; --prune removes it)`)],
    async add(journal: Journal) {
      for (const v of add) {
        const made = await api.json<{ id: number }>("POST", api.appPath(app, "/validators"), body(v));
        journal.done(`addition of validator ${v.kind} ${v.pathGlob}`, () => api.json("DELETE", api.appPath(app, `/validators/${made.id}`)));
      }
    },
    async remove(journal: Journal) {
      for (const v of remove) {
        await api.json("DELETE", api.appPath(app, `/validators/${v.id}`));
        journal.done(`removal of validator ${v.kind} ${v.pathGlob}`, () => api.json("POST", api.appPath(app, "/validators"), body(v)));
      }
    },
  };
}

/**
 * A kv service's items: one all-or-nothing request (`PUT .../kvs {items, prune}`). A secret the
 * export skipped is sent as the mask when the service already has that key as a secret (the
 * server then keeps its value); otherwise it cannot be imported, and the import stops here.
 */
export async function planKvs(api: Api, app: string, items: Record<string, KvValue>, skippedSecrets: string[], prune: boolean) {
  const have = await api.json<Record<string, { type: string; value: string }>>("GET", api.appPath(app, "/kvs?format=map"));
  const missing = skippedSecrets.filter((k) => have[k]?.type !== "secret");
  if (missing.length) {
    throw new UsageError(`the archive was exported with --skip-secrets and service '${app}' has no secret ${missing.join(", ")} to keep; set them first (PUT .../kvs/KEY) or export with --reveal-secrets`);
  }
  const send: Record<string, { type: string; value: string; memo?: string }> = { ...items };
  for (const k of skippedSecrets) send[k] = { type: "secret", value: "******" };
  const lines: string[] = [];
  for (const [key, it] of Object.entries(send)) {
    const old = have[key];
    if (!old) lines.push(`added    kv ${key} (${it.type})`);
    else if (skippedSecrets.includes(key)) lines.push(`kept     kv ${key} (secret not in the archive; its value here is kept)`);
    else if (old.type !== it.type || it.type === "secret" || old.value !== it.value) lines.push(`set      kv ${key} (${it.type})`);
  }
  for (const key of Object.keys(have)) if (!(key in send)) lines.push(prune ? `removed  kv ${key}` : `kept     kv ${key} (not in the archive; --prune removes it)`);
  return { lines, apply: () => api.json("PUT", api.appPath(app, "/kvs"), { items: send, prune }) };
}
