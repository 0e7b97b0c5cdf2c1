/**
 * The validate script's view of a version before it lands: the whole version laid out below the
 * service folder's private `.edgeconf/validate` as `files/` would hold it, and its removal.
 */
import { parsePrivilege } from "./apply.js";
import { StepError } from "./attempt.js";
import { relativeTarget, type Manifest } from "./manifest.js";
import type { SafeTree } from "./safetree.js";
import { prune, writeNew } from "./swap.js";

/** Where the validate script sees the staged version: private, below the service folder. */
const VALIDATE_DIR = ".edgeconf/validate";

/**
 * Lays the whole new version out below VALIDATE_DIR as `files/` would hold it: copies (not links,
 * so nothing a script does there reaches `files/` or the cache) of each verified blob, or of the
 * file already in place when it is unchanged. Modes as declared, without special bits.
 */
export async function stageForValidation(tree: SafeTree, manifest: Manifest, sources: Map<string, string>): Promise<string> {
  await removeStaged(tree);
  for (const file of manifest.files) {
    const rel = relativeTarget(file);
    const from = sources.get(file.sha256) ?? (await tree.path(`files/${rel}`));
    const to = await tree.path(`${VALIDATE_DIR}/${rel}`, true);
    if (!from || !to) throw new StepError(`cannot stage ${rel} for the validate script: no verified copy or no folder for it`);
    await writeNew(tree.fsys, to, from, parsePrivilege(file.permission.privilege) & 0o777, undefined, file.sha256);
  }
  await tree.dir(VALIDATE_DIR, true);
  return tree.real(VALIDATE_DIR);
}

/** Removes the validate script's staged folder and whatever it holds. */
export async function removeStaged(tree: SafeTree): Promise<void> {
  if ((await tree.kind(VALIDATE_DIR)) !== "dir") return;
  const { files, others } = await tree.walk(VALIDATE_DIR, true);
  for (const rel of [...files, ...others]) await tree.fsys.unlink((await tree.path(`${VALIDATE_DIR}/${rel}`))!);
  await prune(tree, VALIDATE_DIR);
  await tree.fsys.rmdir((await tree.path(VALIDATE_DIR))!);
  await tree.forget(VALIDATE_DIR);
}
