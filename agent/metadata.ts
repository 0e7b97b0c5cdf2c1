/**
 * `metadata.json` in the seed's format: JSON Lines, one event per apply attempt, appended to
 * `{temp_dir}/{biz}/{app}/metadata.json` and (with biz and app) to `{temp_dir}/metadata.json`,
 * the file the seed's example business container watches with inotify.
 */
import { appendFile, mkdir } from "node:fs/promises";
import { join } from "node:path";

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

export async function appendMetadata(tempDir: string, biz: number, app: string, event: MetadataEvent): Promise<void> {
  const appDir = join(tempDir, String(biz), app);
  await mkdir(appDir, { recursive: true });
  // One write() call per line with O_APPEND: concurrent services never interleave.
  await appendFile(join(appDir, "metadata.json"), metadataLine(event));
  await appendFile(join(tempDir, "metadata.json"), metadataLine(event, { biz, app }));
}
