/**
 * `metadata.json` in the seed's format: JSON Lines, one event per apply attempt, appended to
 * `{temp_dir}/{biz}/{app}/metadata.json` and (with biz and app) to `{temp_dir}/metadata.json`,
 * the file the seed's example business container watches with inotify.
 */
import { join } from "node:path";
import { APPEND, errnoOf, nodeFsys, type Fsys } from "./fsys.js";
import { checkRegular } from "./fsutil.js";
import { UnsafePathError } from "./safetree.js";
import { appTree, type AppPaths } from "./state.js";

export type EventStatus = "SUCCESS" | "FAILED" | "PROCESSING";

export interface MetadataEvent {
  releaseID: number | null;
  status: EventStatus;
  message: string;
  eventTime: string;
}

/** `2024-03-08T01:53:52Z`: seconds, UTC, as in the seed. */
export function eventTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function metadataLine(event: MetadataEvent, extra: Record<string, unknown> = {}): string {
  const { releaseID, status, message, eventTime: time } = event;
  return JSON.stringify({ releaseID, status, message, eventTime: time, ...extra }) + "\n";
}

/**
 * Appends one line to a metadata file, never through a link and never to anything but a regular
 * file with one link (O_APPEND|O_NOFOLLOW|O_NONBLOCK: a planted FIFO does not hang the agent; a
 * planted hard link to a file elsewhere is refused, naming the path). One write()
 * per line with O_APPEND: concurrent services never interleave.
 */
async function appendLine(fsys: Fsys, path: string, real: string, line: string): Promise<void> {
  let handle;
  try {
    handle = await fsys.open(path, APPEND, 0o644);
  } catch (err) {
    if (errnoOf(err) === "ELOOP") throw new UnsafePathError(real, "a symbolic link");
    throw err;
  }
  try {
    checkRegular(await handle.stat(), real, true); // a hard link would carry the line outside
    await handle.write(line);
  } finally {
    await handle.close();
  }
}

/** Appends the event to `{app_dir}/metadata.json` and (with biz and app) to `{temp_dir}/metadata.json`. */
export async function appendMetadata(paths: AppPaths, event: MetadataEvent, fsys: Fsys = nodeFsys): Promise<void> {
  const tree = await appTree(paths, fsys);
  try {
    await appendLine(fsys, (await tree.path("metadata.json"))!, tree.real("metadata.json"), metadataLine(event));
  } finally {
    await tree.close();
  }
  const [biz, app] = paths.segments;
  await appendLine(fsys, join(paths.tempDir, "metadata.json"), join(paths.tempDir, "metadata.json"), metadataLine(event, { biz: Number(biz), app }));
}

/**
 * Checks `{temp_dir}/metadata.json` before an apply touches anything: absent or a regular file.
 * It lies outside the service folder, so the service folder's check does not see it; a link or
 * special file there raises UnsafePathError naming it (the apply is FAILED, nothing changed).
 */
export async function checkSharedMetadata(paths: AppPaths, fsys: Fsys = nodeFsys): Promise<void> {
  const path = join(paths.tempDir, "metadata.json");
  const stats = await fsys.lstat(path).catch((err) => {
    if (errnoOf(err) === "ENOENT") return null;
    throw err;
  });
  if (stats?.isSymbolicLink()) throw new UnsafePathError(path, "a symbolic link");
  if (stats) checkRegular(stats, path, true);
}
