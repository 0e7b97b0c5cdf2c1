/**
 * The rollback after a refused post-script: a second transaction that puts the previous release's
 * files back (from the copies the failed one kept, when intact, else fetched again) and runs its
 * post-script again.
 */
import type { Attempt, RunnerDeps } from "./attempt.js";
import { sha256At } from "./fsys.js";
import { writeHooks } from "./hooks.js";
import { relativeTarget } from "./manifest.js";
import { fetchAndApply, fsysOf } from "./phase-files.js";
import { runScript, scriptEnv } from "./phase-hooks.js";
import { appTree, type AppliedState } from "./state.js";

/** Puts the previous release's files back byte for byte and runs its post-script again. */
export async function rollback(deps: RunnerDeps, attempt: Attempt, previous: AppliedState | null, current: AppliedState | null): Promise<string> {
  const { paths } = attempt;
  const log = deps.log.with({ app: attempt.app });
  if (!previous?.manifest?.release) {
    log.warn("no previous release to roll back to");
    return "; no previous release to roll back to";
  }
  const prev = previous.manifest;
  log.warn("rolling back", { to: prev.release!.name, releaseID: prev.release!.id });
  // Its own transaction on a copy of the attempt; whether its journal must stay for the next start
  // (its swap and then its undo failed) is the attempt's to say when it records.
  const again = { ...attempt, plan: undefined };
  try {
    // The files the failed release replaced were kept: they are the sources, when intact.
    const preset = new Map<string, string>();
    const plan = attempt.plan;
    if (plan) {
      const tree = await appTree(paths, fsysOf(deps));
      try {
        for (const entry of [...plan.writes, ...plan.removes]) {
          const file = prev.files.find((f) => `files/${relativeTarget(f)}` === entry.rel);
          const path = entry.backup && (await tree.path(entry.backup));
          if (!file || !path || (await tree.kind(entry.backup!)) !== "file") continue;
          if ((await sha256At(tree.fsys, path)) === file.sha256) preset.set(file.sha256, `${tree.real(entry.backup!)}`);
        }
      } finally {
        await tree.close();
      }
    }
    await fetchAndApply(deps, again, current, prev, { preset });
    const env = scriptEnv(deps, attempt, prev.release!.name, prev.release!.id);
    await writeHooks(paths.appDir, prev.hooks, env);
    const post = await runScript(deps, attempt, "post", prev, env);
    const tail = post && post.exitCode !== 0 ? ` (its post-script failed too: exit ${post.exitCode})` : "";
    return `; rolled back to ${prev.release!.name}${tail}`;
  } catch (err) {
    log.error("rollback failed", { error: (err as Error).message });
    return `; rollback to ${prev.release!.name} failed: ${(err as Error).message}`;
  } finally {
    attempt.keepJournal = again.keepJournal;
  }
}
