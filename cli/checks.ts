/**
 * The server's rules for what a draft may hold, checked here before a command changes anything,
 * so an `import` or `push` that would be refused half-way stops at the start instead (the server
 * still checks everything; these mirror functions/core/paths.ts and the kv key rule).
 */
import { UsageError } from "./context.js";

/** Controls, backslash, bidi controls and invisible formatting characters: refused in any path segment. */
const UNSAFE_IN_PATH = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\\]/;
const OWNER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/;
const PRIVILEGE = /^[0-7]{3,4}$/;
const KV_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Why an absolute file path (`/etc/nginx/nginx.conf`) would be refused, or null. */
export function pathFault(full: string): string | null {
  if (UNSAFE_IN_PATH.test(full)) return "has a control, bidi or invisible formatting character or a backslash";
  if (!full.startsWith("/")) return "is not absolute";
  if (full.length > 1024 + 256) return "is longer than the server takes";
  const segments = full.slice(1).split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) return "has an empty, '.' or '..' segment";
  if (segments[segments.length - 1].length > 255) return "has a file name longer than 255 characters";
  return null;
}

/** Refuses (UsageError naming `where` and the file) a file the server would refuse for its path, mode or owner. */
export function checkDraftFile(where: string, f: { fullPath: string; privilege: string; user?: string; group?: string }): void {
  const fault = pathFault(f.fullPath);
  if (fault) throw new UsageError(`${where}: ${JSON.stringify(f.fullPath)} ${fault}; refused before anything changed`);
  if (!PRIVILEGE.test(f.privilege)) throw new UsageError(`${where}: ${f.fullPath}: privilege "${f.privilege}" is not 3 or 4 octal digits; refused before anything changed`);
  for (const [field, v] of [["user", f.user], ["group", f.group]] as const) {
    if (v !== undefined && !OWNER.test(v)) throw new UsageError(`${where}: ${f.fullPath}: ${field} "${v}" is not a user/group name or numeric id; refused before anything changed`);
  }
}

/** Refuses a kv key the server would refuse. */
export function checkKvKey(where: string, key: string): void {
  if (!KV_KEY.test(key)) throw new UsageError(`${where}: kv key ${JSON.stringify(key)} is not letters, digits, '_', '.', '-' (at most 128); refused before anything changed`);
}
