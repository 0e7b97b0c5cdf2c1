import { archivedKvs, readArchive } from "../archive.js";
import { checkDraftFile, checkKvKey } from "../checks.js";
import { COMMON_HELP, EXIT, EXIT_HELP, UsageError, required, type Command } from "../context.js";
import { planHooks, planKvs, planValidators } from "../import-plan.js";
import { Journal } from "../journal.js";
import { draftFiles, fullPath, getService } from "../resources.js";
import { applyPlan, planSync, printPlan, type WantedFile } from "../sync.js";

const HELP = `Usage: edgeconf import ARCHIVE --app APP [--prune] [--dry-run] [--skip-scripts]

Puts a version exported with 'edgeconf export' into the service's draft: its files with their
permission (user, group, privilege) and memo, its pre/post/validate scripts, the validators the
exported service had, or a kv service's items. Prints what is added, changed, removed like
'push'; then 'edgeconf release' makes a version of it.

Whole or nothing. Refused before anything changes: links, devices, FIFOs, absolute or '..' entry
paths, entries manifest.json does not name, bytes that do not match their sha256, a path, mode,
owner or kv key the server would refuse, an archive of a file service into a kv service (or the
reverse), a script that exists in the biz under the same name with other content or type, a secret
the archive left out (--skip-secrets) that the service does not have. When the server refuses a
step part-way, every change made before it is undone (exit 3, the server's reason printed).

  --app APP        the service (required)
  --prune          remove draft files, validators and kv items (and unbind draft scripts) the
                   archive does not have; without it they are kept and listed as "kept"
  --dry-run        print what would change; change nothing
  --skip-scripts   import the files only; leave the draft's scripts as they are

Scripts: a script of the same name whose version holds the same content is bound, pinned to
that version; a script the biz lacks is created (online at once, its version named as in the
archive) and bound. Validators: one with the same path glob, kind and schema counts as present.
Secrets: an archive made with --reveal-secrets sets them; one made with --skip-secrets keeps the
service's own values for those keys.

Examples:
  edgeconf import v3.tar.gz --app nginx-staging --dry-run
  edgeconf import v3.tar.gz --app nginx-staging --prune && edgeconf release --app nginx-staging

${COMMON_HELP}

${EXIT_HELP}`;

export const importCommand: Command = {
  name: "import",
  summary: "put an exported version into the draft, whole or nothing",
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
    const items = archivedKvs(manifest, entries);
    const wanted: WantedFile[] = manifest.files.map((f) => ({
      fullPath: fullPath(f),
      sha256: f.sha256,
      size: f.size,
      privilege: withoutSpecialBits(ctx, fullPath(f), f.privilege),
      user: f.user,
      group: f.group,
      memo: typeof f.memo === "string" ? f.memo : undefined,
      bytes: async () => entries.get(f.entry)!.bytes,
    }));
    // Everything this side can know is checked before the first request that changes anything.
    for (const f of manifest.files) {
      if (f.entry !== `files${fullPath(f)}`) throw new UsageError(`archive: manifest file ${fullPath(f)} is stored as "${f.entry}"; refused`);
    }
    for (const w of wanted) checkDraftFile("archive", w);
    for (const key of Object.keys(items)) checkKvKey("archive", key);
    const api = ctx.api();
    const service = await getService(api, app);
    const kind = manifest.service.configType;
    if (kind !== service.configType) throw new UsageError(`archive: it holds a ${kind} service's version and '${app}' is a ${service.configType} service; refused before anything changed`);

    ctx.io.out(`importing ${manifest.app} ${manifest.version.name} (biz ${manifest.biz}) into the draft of ${app}`);
    const journal = new Journal();
    let apply: () => Promise<void>;
    if (kind === "kv") {
      const kv = await planKvs(api, app, items, manifest.kvs?.skippedSecrets ?? [], prune);
      for (const line of kv.lines) ctx.io.out(line);
      if (dryRun) ctx.io.out("dry run: the draft was not changed");
      // One all-or-nothing request: nothing to undo.
      apply = async () => void (await kv.apply());
    } else {
      const hooks = values["skip-scripts"] ? null : await planHooks(ctx.io, api, app, manifest.hooks, entries, prune);
      const validators = await planValidators(api, app, manifest.validators, prune);
      const plan = planSync(wanted, await draftFiles(api, app), prune);
      printPlan(ctx.io, plan, dryRun);
      for (const line of [...validators.lines, ...(hooks?.steps.map((s) => s.say) ?? [])]) ctx.io.out(`${dryRun && !line.startsWith("kept") ? "would " : ""}${line}`);
      // Additions and changes first, removals last: the steps least likely to be refused come at the end.
      const removals = { ...plan, added: [], changed: [] };
      apply = async () => {
        await applyPlan(api, app, { ...plan, removed: [] }, journal);
        await validators.add(journal);
        await hooks?.apply(journal);
        await validators.remove(journal);
        await applyPlan(api, app, removals, journal);
      };
    }
    if (dryRun) return EXIT.OK;
    await apply().catch((err: unknown) => journal.abandon(ctx.io, err, "import"));
    ctx.io.out(`imported into the draft of ${app}`);
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
