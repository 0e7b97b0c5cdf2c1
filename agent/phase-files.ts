/**
 * The runner's file phase: check the service folder, fetch and verify every blob, stage the
 * files beside their targets, swap them in as one transaction (agent/swap.ts), save the state.
 * The rollback after a refused post-script is agent/rollback.ts; the validate script's staged copy
 * agent/validate-stage.ts.
 */
import { randomBytes } from "node:crypto";
import { OwnerResolver, parsePrivilege, specialBits } from "./apply.js";
import { stateOf, StepError, type Attempt, type RunnerDeps } from "./attempt.js";
import { mapLimit, TEMP_MARKER } from "./fsutil.js";
import { ContentChangedError, keyOf } from "./integrity.js";
import { errnoOf, nodeFsys, sha256At, type Fsys } from "./fsys.js";
import type { BlobCache } from "./cache.js";
import type { Staged } from "./download.js";
import { relativeTarget, type Manifest, type ManifestFile } from "./manifest.js";
import { removeTempFiles, UnsafePathError, type SafeTree } from "./safetree.js";
import { removeStaged, stageForValidation } from "./validate-stage.js";
import { appTree, hasContent, writeJournal, writeState, type AppliedState, type AppPaths, type FileRecord } from "./state.js";
import { backupName, dropBackups, prune, stage, SwapError, switchIn, undo, type Owner, type SwapPlan, type WriteEntry } from "./swap.js";

export const fsysOf = (deps: RunnerDeps): Fsys => deps.fsys ?? nodeFsys;

/**
 * Checks what the agent will touch in the service folder before anything is changed: the
 * folder itself, `files/` and everything below it, `hooks/`, `.edgeconf/`, `metadata.json`.
 * A symlink or special file anywhere there raises UnsafePathError naming it.
 */
export async function preflight(tree: SafeTree): Promise<{ onDisk: string[] }> {
  for (const rel of ["metadata.json", "hooks", ".edgeconf", "files"]) await tree.kind(rel);
  if ((await tree.kind("hooks")) === "dir") await tree.walk("hooks");
  // The validate script's scratch copy is the one place a script writes below .edgeconf/: what it
  // leaves there (a link too) is removed unfollowed before the next validation, never refused.
  if ((await tree.kind(".edgeconf")) === "dir") {
    const planted = (await tree.walk(".edgeconf", true)).others.find((o) => !o.startsWith("validate/"));
    if (planted) throw new UnsafePathError(tree.real(`.edgeconf/${planted}`), "a symbolic link or special file");
  }
  const files = (await tree.kind("files")) === "dir" ? (await tree.walk("files")).files : [];
  return { onDisk: files.map((f) => `files/${f}`) };
}

/** The same check on its own (the runner calls it before the pre-script). */
export async function checkServiceFolder(deps: RunnerDeps, paths: AppPaths): Promise<void> {
  const tree = await appTree(paths, fsysOf(deps));
  try {
    await preflight(tree);
  } finally {
    await tree.close();
  }
}

function refuseSpecialBits(deps: RunnerDeps, manifest: Manifest): void {
  if (deps.config.allowSpecialBits) return;
  const bad = manifest.files.find((f) => specialBits(f.permission.privilege));
  if (bad) {
    throw new StepError(`file /${relativeTarget(bad)} asks for privilege ${bad.permission.privilege} (setuid/setgid/sticky); refused unless the agent runs with --allow-special-bits`);
  }
}

/**
 * The owner a file asks for, as ids; a user or group this host does not know is left as is (-1),
 * with one warning per name and apply naming it and a file that asked for it.
 */
async function ownerOf(file: ManifestFile, owners: OwnerResolver, log: { warn(msg: string, fields?: Record<string, unknown>): void }, warned: Set<string>): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0 || (!file.permission.user && !file.permission.group)) return undefined;
  const uid = file.permission.user ? await owners.uid(file.permission.user) : undefined;
  const gid = file.permission.group ? await owners.gid(file.permission.group) : undefined;
  const unknown = [
    ...(file.permission.user && uid === undefined ? [["user", file.permission.user]] : []),
    ...(file.permission.group && gid === undefined ? [["group", file.permission.group]] : []),
  ];
  for (const [kind, name] of unknown) {
    if (warned.has(`${kind}:${name}`)) continue;
    warned.add(`${kind}:${name}`);
    log.warn(`${kind} does not exist on this host; the file keeps its current ${kind}`, { [kind]: name, file: `/${relativeTarget(file)}` });
  }
  return { uid: uid ?? -1, gid: gid ?? -1 };
}

/**
 * May the blob cache hard-link this staged file as its entry (BlobCache.adopt)? Only when no user
 * but the agent's can change its bytes: owned by the agent's user, not group/other-writable.
 */
function cacheMayLink(entry: WriteEntry): boolean {
  const uid = entry.owner?.uid ?? -1;
  return (entry.mode & 0o7022) === 0 && (uid === -1 || uid === process.geteuid?.());
}

/**
 * Is the file at `rel` already what `file` asks for: bytes, mode and owner, and no hard link
 * but the blob cache's own entry for its bytes (BlobCache.adopt)?
 */
async function upToDate(tree: SafeTree, cache: BlobCache, rel: string, file: ManifestFile, record: FileRecord | undefined, owner: Owner | undefined): Promise<"same" | "content" | "no"> {
  const path = (await tree.path(rel))!;
  if (!(await hasContent(tree.fsys, path, file.sha256, file.size, record))) return "no";
  const s = await tree.fsys.lstat(path);
  const sameOwner = !owner || ((owner.uid === -1 || owner.uid === s.uid) && (owner.gid === -1 || owner.gid === s.gid));
  const ownLinks = s.nlink === 1 || (s.nlink === 2 && (await cache.holds(file.sha256, s)));
  return (s.mode & 0o7777) === parsePrivilege(file.permission.privilege) && sameOwner && ownLinks ? "same" : "content";
}

export interface ApplyOptions {
  /** sha256 → a verified local copy (a rollback's kept files). */
  preset?: Map<string, string>;
  /** A plan from the journal: resume its swap instead of staging again. */
  resume?: SwapPlan;
  /**
   * Runs once the whole new version is downloaded, verified and staged, before anything is
   * swapped, with the real path of a folder laid out like `files/` holding it. A throw refuses
   * the release: the staged files are removed and `files/` is untouched.
   */
  validate?: (stagedDir: string) => Promise<void>;
}

/**
 * Applies `manifest` over the release recorded in `previous`: the whole version or none. On
 * success the state names it; on failure `files/` is as it was and a StepError says why.
 */
export async function fetchAndApply(deps: RunnerDeps, attempt: Attempt, previous: AppliedState | null, manifest = attempt.manifest, options: ApplyOptions = {}): Promise<void> {
  const { paths } = attempt;
  const fsys = fsysOf(deps);
  const log = deps.log.with({ app: attempt.app });
  refuseSpecialBits(deps, manifest);
  let tree: SafeTree;
  try {
    tree = await appTree(paths, fsys);
  } catch (err) {
    throw err instanceof UnsafePathError ? new StepError(err.message) : err;
  }
  const owners = new OwnerResolver();
  const warnedOwners = new Set<string>();
  const staging = new Set<string>();
  let plan: SwapPlan | undefined = options.resume;
  const save = async (p: SwapPlan) => {
    attempt.journaled = true;
    await writeJournal(paths, keyOf(deps), { phase: "switch", manifest, previous, startedAt: new Date().toISOString(), plan: p, seq: attempt.seq, base: attempt.base }, fsys);
  };
  try {
    const { onDisk } = await preflight(tree).catch((err) => Promise.reject(err instanceof UnsafePathError ? new StepError(err.message) : err));
    const records = previous?.files ?? {};
    let t = Date.now();
    let sources = new Map<string, string>(options.preset);
    if (!plan) {
      // Temp files of an attempt killed before its journal: the agent's own, removed.
      for (const rel of onDisk.filter((r) => r.includes(TEMP_MARKER))) await fsys.unlink((await tree.path(rel))!);
      const present = new Set(onDisk.filter((r) => !r.includes(TEMP_MARKER)));
      const id = randomBytes(4).toString("hex");
      const fresh: SwapPlan = { id, writes: [], removes: [], backedUp: false };
      let kept = 0;
      const wanted = new Set<string>();
      const needs: { file: ManifestFile; entry: WriteEntry }[] = [];
      const restage: { file: ManifestFile; entry: WriteEntry }[] = [];
      await mapLimit(manifest.files, 16, async (file) => {
        const rel = `files/${relativeTarget(file)}`;
        wanted.add(rel);
        const owner = await ownerOf(file, owners, log, warnedOwners);
        const entry: WriteEntry = { rel, tmp: null, backup: null, mode: parsePrivilege(file.permission.privilege), owner };
        const state = present.has(rel) ? await upToDate(tree, deps.fetcher.cache, rel, file, records[relativeTarget(file)], owner) : "no";
        if (state === "same") return;
        if (present.has(rel)) entry.backup = backupName(fresh, kept++);
        fresh.writes.push(entry);
        (state === "content" ? restage : needs).push({ file, entry });
      });
      for (const rel of present) if (!wanted.has(rel)) fresh.removes.push({ rel, backup: backupName(fresh, kept++) });
      // Same bytes, other mode or owner: a new copy with the new mode, swapped like the rest. The
      // bytes copied are hashed: changed since the check, the file is new content, downloaded.
      for (const { file, entry } of restage) {
        const tmpPath = (await tree.path(entry.rel))!;
        const staged = await stage(tree, entry, tmpPath, file.sha256).catch((err) => (err instanceof ContentChangedError ? "changed" : Promise.reject(err)));
        if (staged === "changed") {
          log.warn("a file changed while it was copied for a new mode; its content is fetched instead", { file: entry.rel });
          needs.push({ file, entry });
        } else if (staged) staging.add(staged);
      }
      plan = fresh;
      const bySha = new Map<string, WriteEntry[]>();
      for (const { file, entry } of needs) bySha.set(file.sha256, [...(bySha.get(file.sha256) ?? []), entry]);
      const download = needs.filter(({ file }) => !sources.has(file.sha256)).map(({ file }) => file);
      const stagingDir = (await tree.dir(".edgeconf/staging", true))!;
      // Each verified blob is staged at once beside its targets while other downloads run. Again
      // for the same blob (after a full disk was cleared) only what is not staged yet.
      const onReady = async (sha: string, source: string | null, data?: Buffer): Promise<Staged> => {
        const result: Staged = { copy: null, all: true };
        for (const entry of bySha.get(sha) ?? []) {
          // A file source (cache entry, large blob) is hashed as copied: ContentChangedError
          // makes the fetcher drop it and download the blob (agent/download.ts, fetchOne).
          const staged = entry.tmp ?? (await stage(tree, entry, data ?? source!, sha));
          if (staged) staging.add(staged);
          else result.all = false;
          if (staged && !result.copy && cacheMayLink(entry)) result.copy = (await tree.path(staged))!;
        }
        return result;
      };
      try {
        for (const [sha, source] of sources) if (bySha.has(sha)) await onReady(sha, source);
        const fetched = await deps.fetcher.fetchAll(download, stagingDir, onReady);
        for (const [sha, path] of fetched.sources) sources.set(sha, path);
        attempt.bytesDownloaded += fetched.bytesDownloaded;
        log.info("files fetched", { needed: download.length, fromCache: fetched.fromCache, downloaded: fetched.downloaded, bytes: fetched.bytesDownloaded });
        deps.metrics?.inc("edgeconf_agent_downloaded_bytes_total", { app: attempt.app }, fetched.bytesDownloaded);
      } catch (err) {
        await undo(plan, tree).catch(() => undefined);
        throw new StepError(`download failed: ${(err as Error).message}`);
      }
      attempt.timings.downloadMs = Date.now() - t;
      if (options.validate) {
        try {
          await options.validate(await stageForValidation(tree, manifest, sources));
        } catch (err) {
          await undo(plan, tree).catch(() => undefined);
          throw err instanceof UnsafePathError ? new StepError(err.message) : err;
        } finally {
          await removeStaged(tree).catch((err) => log.warn("cannot remove the validate script's staged folder", { error: (err as Error).message }));
        }
      }
    }
    t = Date.now();
    attempt.plan = plan;
    try {
      const cache = deps.fetcher.cache;
      // The entry an adopted file is linked as is named by the bytes it was applied with.
      const release = async (rel: string, s: { ino: number; dev: number; nlink: number }) => {
        if (s.nlink < 2) return;
        const recorded = records[rel.slice("files/".length)]?.sha256;
        for (const sha of new Set([recorded, await sha256At(fsys, (await tree.path(rel))!)])) if (sha) await cache.release(sha, s);
      };
      if (plan.undoing) throw new SwapError("an earlier attempt was undoing it when it stopped");
      await switchIn(plan, { tree, save, release, resumed: plan === options.resume, source: async (entry) => sourceFor(manifest, entry, sources) });
      // The state is part of the transaction: if it cannot be saved, the old files come back.
      const files: Record<string, FileRecord> = {};
      for (const file of manifest.files) {
        const rel = relativeTarget(file);
        const s = await fsys.lstat((await tree.path(`files/${rel}`))!);
        const { user, group, privilege } = file.permission;
        files[rel] = { sha256: file.sha256, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino, privilege, user, group };
      }
      await writeState(paths, keyOf(deps), stateOf(deps, attempt, manifest, files), fsys);
      attempt.keepJournal = false; // the plan is finished
    } catch (err) {
      const reason = (err as Error).message;
      log.error("swap failed, putting the previous files back", { error: reason });
      try {
        // Once a journal exists, it says so first: a restart after a partial undo finishes the undo.
        if (plan.backedUp && !plan.undoing) {
          plan.undoing = true;
          await save(plan);
        }
        await undo(plan, tree);
      } catch (undoErr) {
        attempt.keepJournal = true; // the next start tries again
        throw new StepError(`apply failed: ${reason}; undo failed too (${(undoErr as Error).message}), retried at the next start`);
      }
      attempt.keepJournal = false; // the plan is undone
      throw new StepError(`apply failed, previous files kept: ${reason}`);
    }
    attempt.timings.applyMs = Date.now() - t;
    log.info("files applied", { written: plan.writes.length, unchanged: manifest.files.length - plan.writes.length, removed: plan.removes.length });
  } finally {
    await tree.close();
  }
}

function sourceFor(manifest: Manifest, entry: WriteEntry, sources: Map<string, string>): { from: string; sha256: string } | null {
  const file = manifest.files.find((f) => `files/${relativeTarget(f)}` === entry.rel);
  const from = file && sources.get(file.sha256);
  return file && from ? { from, sha256: file.sha256 } : null;
}

/** Removes staging leftovers, temp files of killed writes and the kept files of finished transactions. */
export async function cleanUp(deps: RunnerDeps, paths: AppPaths): Promise<void> {
  const tree = await appTree(paths, fsysOf(deps));
  try {
    if ((await tree.kind(".edgeconf/staging")) === "dir") {
      const { files } = await tree.walk(".edgeconf/staging");
      for (const name of files) await tree.fsys.unlink((await tree.path(`.edgeconf/staging/${name}`))!);
    }
    await dropBackups(tree);
    await removeStaged(tree);
    // Writes killed before their rename leave `.NAME.edgeconf-tmp-*`: journal, state and the lock in
    // .edgeconf/, metadata.json (and kv.json) in the service folder, scripts and env in hooks/.
    for (const dir of ["", ".edgeconf", "hooks"]) await removeTempFiles(tree, dir);
    if ((await tree.kind("files")) === "dir") {
      const { files } = await tree.walk("files");
      for (const rel of files.filter((f) => f.includes(TEMP_MARKER))) await tree.fsys.unlink((await tree.path(`files/${rel}`))!);
      await prune(tree, "files");
    }
  } finally {
    await tree.close();
  }
}
