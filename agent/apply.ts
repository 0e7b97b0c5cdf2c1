/**
 * Pieces of the apply shared by the phases: where a manifest file lands below `files/`, its
 * mode, its owner's ids. The apply itself is agent/phase-files.ts and agent/swap.ts.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { isNotFound } from "./fsutil.js";
import { ManifestError, relativeTarget, type ManifestFile } from "./manifest.js";

/** The absolute target of a manifest file, refusing anything that would land outside `filesDir`. */
export function targetPath(filesDir: string, file: Pick<ManifestFile, "path" | "name">): string {
  const root = resolve(filesDir);
  const target = resolve(root, relativeTarget(file));
  if (!target.startsWith(root + sep)) throw new ManifestError(`file path "${file.path}/${file.name}" escapes the files folder`);
  return target;
}

export function parsePrivilege(privilege: string): number {
  return privilege === "" ? 0o644 : parseInt(privilege, 8) & 0o7777;
}

/** True when a privilege asks for setuid, setgid or sticky (refused unless allowed by a flag). */
export function specialBits(privilege: string): boolean {
  return (parsePrivilege(privilege) & 0o7000) !== 0;
}

/** Maps user and group names to ids from /etc/passwd and /etc/group (no native module needed). */
export class OwnerResolver {
  private users?: Map<string, number>;
  private groups?: Map<string, number>;
  constructor(private readonly etcDir = "/etc") {}

  private async load(file: string): Promise<Map<string, number>> {
    const map = new Map<string, number>();
    try {
      for (const line of (await readFile(join(this.etcDir, file), "utf8")).split("\n")) {
        const [name, , id] = line.split(":");
        if (name && id && /^\d+$/.test(id)) map.set(name, Number(id));
      }
    } catch {
      /* no such database: every name is unknown */
    }
    return map;
  }

  async uid(name: string): Promise<number | undefined> {
    if (/^\d+$/.test(name)) return Number(name);
    this.users ??= await this.load("passwd");
    return this.users.get(name);
  }

  async gid(name: string): Promise<number | undefined> {
    if (/^\d+$/.test(name)) return Number(name);
    this.groups ??= await this.load("group");
    return this.groups.get(name);
  }
}

/** Every non-directory below `dir`, as `/`-separated relative paths. */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(join(dir, prefix), { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  const out: string[] = [];
  for (const entry of entries) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}
