/**
 * Mount points inside the service folder (design: "Agent safety invariants" 2). The safe tree
 * (agent/safetree.ts) refuses symlinks, but a folder below `{temp_dir}/{biz}/{app}` that is a
 * mount point (a bind mount of a folder elsewhere, or another filesystem) is a real folder to
 * it: writing there writes outside the service folder. So before anything is touched, and again
 * after the pre-script, the agent looks for mount points strictly below the service folder and
 * refuses the apply naming the first one that is a folder.
 *
 * Source: `/proc/self/mountinfo` (field 5, the mount point, octal-escaped; `proc(5)`), which
 * also shows a bind mount of a folder of the same filesystem. Without it (no /proc), each folder
 * below the service folder is compared with its parent by `st_dev`, which finds another
 * filesystem but not a bind mount of the same one. Mounts at or above the service folder (the
 * shared volume of the seed's Kubernetes layout) are fine; so is a mount point that is a file,
 * the target itself, written in place when it cannot be renamed over (agent/swap.ts).
 */
import { readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { errnoOf, nodeFsys, type Fsys } from "./fsys.js";
import { UnsafePathError } from "./safetree.js";

/** The mount table's text, or null where it cannot be read. The seam tests replace. */
export type MountTable = () => Promise<string | null>;

export const procMountTable: MountTable = () => readFile("/proc/self/mountinfo", "utf8").catch(() => null);

const MOUNT_POINT = "a mount point (a bind mount or another filesystem)";

/** The mount points of a mountinfo text, unescaped (`\040` is a space). */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((field): field is string => Boolean(field))
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
}

/**
 * Raises UnsafePathError for the first folder strictly below `appDir` that is a mount point.
 * A service folder that does not exist yet has nothing below it. `fsys` is only read (lstat,
 * readdir).
 */
export async function refuseMountPoints(appDir: string, deps: { fsys?: Fsys; mountTable?: MountTable }): Promise<void> {
  const fsys = deps.fsys ?? nodeFsys;
  let real: string;
  try {
    real = await realpath(appDir);
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return;
    throw err;
  }
  const table = await (deps.mountTable ?? procMountTable)();
  if (table === null) return refuseOtherDevices(appDir, fsys);
  for (const point of mountPoints(table)) {
    if (!point.startsWith(real + "/")) continue;
    const shown = join(appDir, point.slice(real.length));
    const stats = await fsys.lstat(shown).catch(() => null);
    if (stats?.isDirectory()) throw new UnsafePathError(shown, MOUNT_POINT);
  }
}

/** Without a mount table: every folder below `dir` on the device of its parent. */
async function refuseOtherDevices(dir: string, fsys: Fsys, dev?: number): Promise<void> {
  const parentDev = dev ?? (await fsys.lstat(dir)).dev;
  for (const entry of await fsys.readdir(dir)) {
    if (!entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    const stats = await fsys.lstat(path);
    if (!stats.isDirectory()) continue;
    if (stats.dev !== parentDev) throw new UnsafePathError(path, MOUNT_POINT);
    await refuseOtherDevices(path, fsys, stats.dev);
  }
}
