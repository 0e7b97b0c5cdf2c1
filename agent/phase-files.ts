/**
 * The runner's file phase: fetch and verify every blob, stage the files, swap them in, save
 * the state; and the rollback to the previous release after a refused post-script.
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { applyFiles, listFiles, OwnerResolver, pruneEmptyDirs, stageFile, targetPath, type ApplyResult } from "./apply.js";
import { nowOf, stateOf, StepError, type Attempt, type RunnerDeps } from "./attempt.js";
import { mapLimit, sha256File } from "./fsutil.js";
import { writeHooks } from "./hooks.js";
import { relativeTarget, type ManifestFile } from "./manifest.js";
import { runScript, scriptEnv } from "./phase-hooks.js";
import { hasContent, readState, writeJournal, writeState, type AppliedState } from "./state.js";

export async function fetchAndApply(deps: RunnerDeps, attempt: Attempt, previous: AppliedState | null): Promise<ApplyResult> {
  const { manifest, paths } = attempt;
  const log = deps.log.with({ app: attempt.app });
  const records = previous?.files ?? {};
  let t = Date.now();
  const onDisk = new Set(await listFiles(paths.filesDir));
  const present = await mapLimit(manifest.files, 16, async (file) => {
    const rel = relativeTarget(file);
    return onDisk.has(rel) && (await hasContent(targetPath(paths.filesDir, file), file.sha256, file.size, records[rel]));
  });
  const needs = manifest.files.filter((_, i) => !present[i]);
  const bySha = new Map<string, ManifestFile[]>();
  for (const file of needs) bySha.set(file.sha256, [...(bySha.get(file.sha256) ?? []), file]);
  // Each verified blob is copied at once to hidden temp files beside its targets, while
  // other downloads run; the apply step is then only renames. Nothing visible changes yet.
  const staged = new Map<string, string>();
  const owners = new OwnerResolver();
  const stage = async (sha: string, source: string, data?: Buffer) => {
    for (const file of bySha.get(sha) ?? []) {
      const tmp = await stageFile(paths.filesDir, file, data ?? source, log, owners);
      if (tmp) staged.set(relativeTarget(file), tmp);
    }
  };
  let fetched;
  try {
    fetched = await deps.fetcher.fetchAll(needs, paths.stagingDir, stage);
  } catch (err) {
    await Promise.all([...staged.values()].map((tmp) => rm(tmp, { force: true })));
    await pruneEmptyDirs(paths.filesDir, false);
    throw new StepError(`download failed: ${(err as Error).message}`);
  }
  attempt.bytesDownloaded = fetched.bytesDownloaded;
  attempt.timings.downloadMs = Date.now() - t;
  log.info("files fetched", {
    needed: needs.length,
    fromCache: fetched.fromCache,
    downloaded: fetched.downloaded,
    bytes: fetched.bytesDownloaded,
  });
  deps.metrics?.inc("edgeconf_agent_downloaded_bytes_total", { app: attempt.app }, fetched.bytesDownloaded);
  t = Date.now();
  await rm(paths.previousDir, { recursive: true, force: true });
  await writeJournal(paths, { phase: "apply", manifest, previous, startedAt: nowOf(deps).toISOString() });
  const result = await applyFiles({
    filesDir: paths.filesDir,
    files: manifest.files,
    sources: fetched.sources,
    previous: records,
    // Hard links of replaced files: what a rollback restores byte for byte.
    backupDir: deps.config.onPostFailure === "rollback" ? paths.previousDir : undefined,
    staged,
    owners,
    log,
  });
  attempt.timings.applyMs = Date.now() - t;
  log.info("files applied", { written: result.written, unchanged: result.unchanged, removed: result.removed });
  await writeState(paths, stateOf(deps, manifest, result.records));
  return result;
}

/** Puts the previous release's files back byte for byte and runs its post-script again. */
export async function rollback(deps: RunnerDeps, attempt: Attempt, previous: AppliedState | null): Promise<string> {
  const { paths } = attempt;
  const log = deps.log.with({ app: attempt.app });
  if (!previous?.manifest?.release) {
    log.warn("no previous release to roll back to");
    return "; no previous release to roll back to";
  }
  const prev = previous.manifest;
  log.warn("rolling back", { to: prev.release!.name, releaseID: prev.release!.id });
  try {
    const state = await readState(paths);
    const sources = new Map<string, string>();
    const needs = [];
    for (const file of prev.files) {
      const backup = join(paths.previousDir, file.sha256);
      const ok = await stat(backup).then(() => sha256File(backup).then((h) => h === file.sha256), () => false);
      if (ok) sources.set(file.sha256, backup);
      else needs.push(file);
    }
    const fetched = await deps.fetcher.fetchAll(needs, paths.stagingDir);
    for (const [sha, path] of fetched.sources) sources.set(sha, path);
    const result = await applyFiles({ filesDir: paths.filesDir, files: prev.files, sources, previous: state?.files ?? {}, log });
    await writeState(paths, stateOf(deps, prev, result.records));
    const env = scriptEnv(deps, attempt, prev.release!.name, prev.release!.id);
    await writeHooks(paths.appDir, prev.hooks, env);
    const post = await runScript(deps, attempt, "post", prev, env);
    const tail = post && post.exitCode !== 0 ? ` (its post-script failed too: exit ${post.exitCode})` : "";
    return `; rolled back to ${prev.release!.name}${tail}`;
  } catch (err) {
    log.error("rollback failed", { error: (err as Error).message });
    return `; rollback to ${prev.release!.name} failed: ${(err as Error).message}`;
  }
}
