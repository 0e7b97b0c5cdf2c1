import { readArchive, type ArchivedHook } from "../archive.js";
import { COMMON_HELP, EXIT, EXIT_HELP, UsageError, required, type Command, type Context } from "../context.js";
import type { Api } from "../api.js";
import { fullPath } from "../resources.js";
import { syncDraft, type WantedFile } from "../sync.js";

const HELP = `Usage: edgeconf import ARCHIVE --app APP [--prune] [--dry-run] [--skip-scripts]

Puts a version exported with 'edgeconf export' into the service's draft: its files with their
permission (user, group, privilege), and its pre/post scripts. Prints files as added, changed,
removed like 'push'; then 'edgeconf release' makes a version of it.

Refused before anything changes: links, devices, FIFOs, absolute or '..' entry paths, entries
manifest.json does not name, bytes that do not match their sha256, a script that exists in the
biz under the same name with other content or type.

  --app APP        the service (required)
  --prune          remove draft files (and unbind draft scripts) the archive does not have;
                   without it they are kept and listed as "kept"
  --dry-run        print what would change; change nothing
  --skip-scripts   import the files only; leave the draft's scripts as they are

Scripts: a script of the same name whose version holds the same content is bound, pinned to
that version; a script the biz lacks is created (online at once, its version named as in the
archive) and bound.

Examples:
  edgeconf import v3.tar.gz --app nginx-staging --dry-run
  edgeconf import v3.tar.gz --app nginx-staging --prune && edgeconf release --app nginx-staging

${COMMON_HELP}

${EXIT_HELP}`;

type ScriptRow = { id: number; name: string; type: string };
type ScriptVersionRow = { id: number; name: string; state: string; content?: string };
/** What to do for one hook kind: bind an existing version, create the script, or unbind. */
type HookStep = { kind: "pre" | "post"; say: string; apply: (api: Api) => Promise<{ scriptId: number; versionId: number } | null> };

async function planHook(api: Api, kind: "pre" | "post", h: NonNullable<ArchivedHook>, content: string): Promise<HookStep> {
  const script = (await api.all<ScriptRow>(api.bizPath(`/scripts?search=${encodeURIComponent(h.scriptName)}`))).find((s) => s.name === h.scriptName);
  if (!script) {
    return {
      kind,
      say: `create script ${h.scriptName} (${h.type}, version ${h.versionName}) and bind it as the ${kind}-script`,
      apply: async () => {
        const made = await api.json<{ id: number; version: { id: number } }>("POST", api.bizPath("/scripts"), { name: h.scriptName, type: h.type, content, versionName: h.versionName });
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
    return { kind, say: `bind script ${h.scriptName} version ${v.name} (same content) as the ${kind}-script`, apply: async () => ({ scriptId: script.id, versionId: v.id }) };
  }
  throw conflict("with other content");
}

async function planHooks(ctx: Context, api: Api, app: string, hooks: { pre: ArchivedHook; post: ArchivedHook }, entries: Map<string, { bytes: Buffer }>, prune: boolean): Promise<HookStep[]> {
  const draft = await api.json<Record<"pre" | "post", { scriptName: string } | null>>("GET", api.appPath(app, "/hooks"));
  const steps: HookStep[] = [];
  for (const kind of ["pre", "post"] as const) {
    const h = hooks[kind];
    if (h) steps.push(await planHook(api, kind, h, entries.get(h.entry)!.bytes.toString("utf8")));
    else if (draft[kind] && prune) steps.push({ kind, say: `unbind the ${kind}-script ${draft[kind]!.scriptName}`, apply: async () => null });
    else if (draft[kind]) ctx.io.out(`kept     ${kind}-script ${draft[kind]!.scriptName} (the archive has none; --prune unbinds it)`);
  }
  return steps;
}

export const importCommand: Command = {
  name: "import",
  summary: "put an exported version into the draft",
  help: HELP,
  positionals: ["ARCHIVE"],
  options: { app: { type: "string" }, prune: { type: "boolean" }, "dry-run": { type: "boolean" }, "skip-scripts": { type: "boolean" } },
  async run(ctx, values, positionals) {
    const file = positionals[0];
    if (!file) throw new UsageError("missing ARCHIVE");
    const app = required(values, "app");
    const prune = values.prune === true;
    const dryRun = values["dry-run"] === true;
    const { manifest, entries } = await readArchive(file);
    for (const f of manifest.files) {
      if (f.entry !== `files${fullPath(f)}`) throw new UsageError(`archive: manifest file ${fullPath(f)} is stored as "${f.entry}"; refused`);
    }
    const api = ctx.api();
    const steps = values["skip-scripts"] ? [] : await planHooks(ctx, api, app, manifest.hooks ?? { pre: null, post: null }, entries, prune);
    const wanted: WantedFile[] = manifest.files.map((f) => ({
      fullPath: fullPath(f),
      sha256: f.sha256,
      size: f.size,
      privilege: withoutSpecialBits(ctx, fullPath(f), f.privilege),
      user: f.user,
      group: f.group,
      bytes: async () => entries.get(f.entry)!.bytes,
    }));
    ctx.io.out(`importing ${manifest.app} ${manifest.version.name} (biz ${manifest.biz}) into the draft of ${app}`);
    await syncDraft(api, ctx.io, app, wanted, { prune, dryRun });
    for (const step of steps) {
      ctx.io.out(`${dryRun ? "would " : ""}${step.say}`);
      if (dryRun) continue;
      const binding = await step.apply(api);
      await api.json("PUT", api.appPath(app, "/hooks"), { [step.kind]: binding });
    }
    return EXIT.OK;
  },
};

/** Like `push`: setuid/setgid/sticky bits in an archive are dropped, with a warning naming the file. */
function withoutSpecialBits(ctx: { io: { err(line: string): void } }, path: string, privilege: string): string {
  const mode = Number.parseInt(privilege, 8);
  if (!Number.isInteger(mode) || !(mode & 0o7000)) return privilege;
  ctx.io.err(`warning: ${path}: setuid/setgid/sticky bits dropped (mode ${privilege})`);
  return (mode & 0o777).toString(8).padStart(3, "0");
}
