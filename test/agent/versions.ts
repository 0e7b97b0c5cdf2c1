/**
 * The two releases the agent's transaction suites (faults, crash) apply: V1 → V2 differ in every
 * way a release can — changed, mode only, removed, added in a new folder, unchanged — and what
 * `files/` must hold for each (relative path → "mode sha256", as the suites snapshot it).
 */
import { readdir } from "node:fs/promises";
import { sha256 } from "./harness";

/** Path → [content, privilege]. */
export type Files = Record<string, [string, string]>;

export const V1: Files = {
  "/etc/app/main.conf": ["main v1\n", "644"],
  "/etc/app/secret.key": ["key v1\n", "600"],
  "/etc/app/conf.d/a.conf": ["a\n", "644"],
  "/etc/old/gone.conf": ["gone\n", "644"],
  "/bin/run.sh": ["echo v1\n", "755"],
};

export const V2: Files = {
  "/etc/app/main.conf": ["main v2\n", "644"],
  "/etc/app/secret.key": ["key v2\n", "600"],
  "/etc/app/conf.d/a.conf": ["a\n", "640"],
  "/etc/new/deep/added.conf": ["added\n", "644"],
  "/bin/run.sh": ["echo v1\n", "755"],
};

/** What a snapshot of `files/` holds when exactly `v` is applied. */
export const expected = (v: Files) => Object.fromEntries(Object.entries(v).map(([p, [content, mode]]) => [p.slice(1), `${mode} ${sha256(content)}`]));

/**
 * Temp files of writes killed before their rename (journal, state, metadata.json, staged files)
 * below the service folder `app`: the next run must have removed them (an invariant of both suites).
 */
export async function tempFilesLeft(app: string): Promise<string[]> {
  return ((await readdir(app, { recursive: true }).catch(() => [])) as string[]).filter((p) => p.includes(".edgeconf-tmp-"));
}
