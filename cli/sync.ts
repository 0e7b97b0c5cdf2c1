/**
 * Makes a service's draft hold a given set of files (from a folder for `push`, from an archive
 * for `import`): a plan compared by SHA-256 and permission, printed, then applied.
 * Without `prune`, draft files absent from the set are kept (and listed as kept).
 */
import type { Api } from "./api.js";
import type { Output } from "./context.js";
import { Journal } from "./journal.js";
import { draftFiles, fullPath, type DraftFile } from "./resources.js";

export type WantedFile = {
  /** Absolute path on the host, e.g. `/etc/nginx/nginx.conf`. */
  fullPath: string;
  sha256: string;
  size: number;
  privilege: string;
  /** Owner to set; undefined keeps the draft's (or the server default `root` for a new file). */
  user?: string;
  group?: string;
  /** Memo to set (import carries the exported one); undefined keeps the draft's. */
  memo?: string;
  bytes(): Promise<Buffer>;
};

export type Change = { want: WantedFile; have: DraftFile; content: boolean; what: string[] };
export type Plan = { added: WantedFile[]; changed: Change[]; removed: DraftFile[]; kept: DraftFile[]; unchanged: number; prune: boolean };

/** Compares the wanted set with the draft. Pure: no request. */
export function planSync(wanted: WantedFile[], draft: DraftFile[], prune: boolean): Plan {
  const byPath = new Map(draft.map((f) => [fullPath(f), f]));
  const plan: Plan = { added: [], changed: [], removed: [], kept: [], unchanged: 0, prune };
  const seen = new Set<string>();
  for (const want of wanted) {
    seen.add(want.fullPath);
    const have = byPath.get(want.fullPath);
    if (!have) {
      plan.added.push(want);
      continue;
    }
    const what: string[] = [];
    const content = have.sha256 !== want.sha256;
    if (content) what.push("content");
    if (Number.parseInt(have.privilege, 8) !== Number.parseInt(want.privilege, 8)) what.push(`mode ${have.privilege} -> ${want.privilege}`);
    if (want.user !== undefined && want.user !== have.user) what.push(`user ${have.user} -> ${want.user}`);
    if (want.group !== undefined && want.group !== have.group) what.push(`group ${have.group} -> ${want.group}`);
    if (want.memo !== undefined && want.memo !== have.memo) what.push("memo");
    if (what.length) plan.changed.push({ want, have, content, what });
    else plan.unchanged++;
  }
  for (const f of draft) if (!seen.has(fullPath(f))) (prune ? plan.removed : plan.kept).push(f);
  const order = (a: { fullPath: string } | DraftFile, b: { fullPath: string } | DraftFile) => key(a).localeCompare(key(b));
  plan.added.sort(order);
  plan.removed.sort(order);
  plan.kept.sort(order);
  plan.changed.sort((a, b) => a.want.fullPath.localeCompare(b.want.fullPath));
  return plan;
}

const key = (f: { fullPath: string } | DraftFile) => ("fullPath" in f ? f.fullPath : fullPath(f));

export function printPlan(io: Output, plan: Plan, dryRun: boolean): void {
  for (const f of plan.added) io.out(`added    ${f.fullPath} (${f.privilege}, ${f.size} bytes)`);
  for (const c of plan.changed) io.out(`changed  ${c.want.fullPath} (${c.what.join(", ")})`);
  for (const f of plan.removed) io.out(`removed  ${fullPath(f)}`);
  for (const f of plan.kept) io.out(`kept     ${fullPath(f)} (in the draft, not in the source; --prune removes it)`);
  const counts = `${plan.added.length} added, ${plan.changed.length} changed, ${plan.removed.length} removed, ${plan.kept.length} kept, ${plan.unchanged} unchanged`;
  io.out(dryRun ? `dry run: ${counts}; the draft was not changed` : counts);
}

/**
 * Applies the plan: changed content and permission first, then added files, removals last (the
 * step least likely to be refused). With a `journal`, each change is recorded with its undo: an
 * added file is deleted again, a changed one is pointed back at its old content and permission,
 * a removed one is added back (a new id, the same path, content, permission and memo).
 */
export async function applyPlan(api: Api, app: string, plan: Plan, journal?: Journal): Promise<void> {
  const restore = (have: DraftFile) => () => api.json("PATCH", api.appPath(app, `/files/${have.id}`), { sha256: have.sha256, privilege: have.privilege, user: have.user, group: have.group, memo: have.memo });
  for (const c of plan.changed) {
    if (c.content) await upload(api, app, c.want);
    else await api.json("PATCH", api.appPath(app, `/files/${c.have.id}`), { privilege: c.want.privilege, ...owners(c.want), ...(c.want.memo !== undefined && { memo: c.want.memo }) });
    journal?.done(`change of ${c.want.fullPath}`, restore(c.have));
  }
  for (const want of plan.added) {
    const made = await upload(api, app, want);
    journal?.done(`addition of ${want.fullPath}`, () => api.json("DELETE", api.appPath(app, `/files/${made.id}`)));
  }
  for (const f of plan.removed) {
    await api.json("DELETE", api.appPath(app, `/files/${f.id}`));
    journal?.done(`removal of ${fullPath(f)}`, () => api.json("POST", api.appPath(app, "/files"), { path: f.path, name: f.name, sha256: f.sha256, privilege: f.privilege, user: f.user, group: f.group, memo: f.memo }));
  }
}

const owners = (want: WantedFile) => ({ ...(want.user !== undefined && { user: want.user }), ...(want.group !== undefined && { group: want.group }) });

async function upload(api: Api, app: string, want: WantedFile): Promise<{ id: number }> {
  const query = new URLSearchParams({ path: want.fullPath, privilege: want.privilege, ...owners(want), ...(want.memo !== undefined && { memo: want.memo }) });
  const res = await api.send("PUT", api.appPath(app, `/files/content?${query}`), await want.bytes());
  return JSON.parse(res.body.toString("utf8")) as { id: number };
}

/**
 * Plan, print, and unless `dryRun` apply: the whole of `push` after reading its folder. Whole or
 * nothing: when the server refuses a step part-way, the steps before it are undone (cli/journal.ts)
 * and the error says what the draft was left as.
 */
export async function syncDraft(api: Api, io: Output, app: string, wanted: WantedFile[], opts: { prune: boolean; dryRun: boolean; command: string }): Promise<Plan> {
  const plan = planSync(wanted, await draftFiles(api, app), opts.prune);
  if (!opts.dryRun) {
    const journal = new Journal();
    await applyPlan(api, app, plan, journal).catch((err: unknown) => journal.abandon(io, err, opts.command));
  }
  printPlan(io, plan, opts.dryRun);
  return plan;
}
