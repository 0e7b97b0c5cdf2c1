import { invalid } from "./errors";
import { UNSAFE_MESSAGE, UNSAFE_NAME_CHARS } from "./text";

/**
 * Where a config file lands on the agent: `{temp_dir}/{biz}/{app}/files/{path}/{name}`. Anything that
 * could step outside that folder, or be read differently by another tool, is refused here rather
 * than trusted to the agent: relative paths, `.`/`..` segments (also percent-encoded), `//`,
 * backslashes, NUL and other control characters, and (as in names) bidi controls and invisible
 * formatting characters, which would make a path on screen differ from the path on the host.
 */
const CONTROL = /[\u0000-\u001f\u007f]/;
const MAX_PATH = 1024;
const MAX_NAME = 255;

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function checkSegment(segment: string, field: string) {
  const d = decoded(segment);
  if (segment === "." || segment === ".." || d === "." || d === "..") throw invalid(field, `must not contain '.' or '..' segments`);
  if (d.includes("/") || d.includes("\\")) throw invalid(field, "must not contain an encoded '/' or '\\'");
  if (CONTROL.test(d)) throw invalid(field, "must not contain NUL or control characters");
  if (UNSAFE_NAME_CHARS.test(d)) throw invalid(field, UNSAFE_MESSAGE);
}

function checkCommon(value: string, field: string) {
  if (value.includes("\u0000")) throw invalid(field, "must not contain a NUL byte");
  if (CONTROL.test(value)) throw invalid(field, "must not contain control characters");
  if (value.includes("\\")) throw invalid(field, "must not contain a backslash");
  if (UNSAFE_NAME_CHARS.test(value)) throw invalid(field, UNSAFE_MESSAGE);
}

/** An absolute directory such as `/etc/nginx`; `/` itself is allowed. Returns it unchanged. */
export function checkDir(path: string, field = "path"): string {
  checkCommon(path, field);
  if (path.length > MAX_PATH) throw invalid(field, `at most ${MAX_PATH} characters`);
  if (!path.startsWith("/")) throw invalid(field, "must be an absolute path starting with '/'");
  if (path === "/") return path;
  if (path.includes("//")) throw invalid(field, "must not contain '//'");
  if (path.endsWith("/")) throw invalid(field, "must not end with '/'");
  for (const seg of path.slice(1).split("/")) checkSegment(seg, field);
  return path;
}

/** A file name: one path segment. */
export function checkName(name: string, field = "name"): string {
  checkCommon(name, field);
  if (!name) throw invalid(field, "must not be empty");
  if (name.length > MAX_NAME) throw invalid(field, `at most ${MAX_NAME} characters`);
  if (name.includes("/")) throw invalid(field, "must not contain '/': put directories in path");
  checkSegment(name, field);
  return name;
}

/** Splits `/etc/nginx/nginx.conf` into `{path: "/etc/nginx", name: "nginx.conf"}`, checking both. */
export function splitFilePath(full: string, field = "path"): { path: string; name: string } {
  checkCommon(full, field);
  if (!full.startsWith("/")) throw invalid(field, "must be an absolute path starting with '/'");
  if (full.includes("//")) throw invalid(field, "must not contain '//'");
  const cut = full.lastIndexOf("/");
  const dir = cut === 0 ? "/" : full.slice(0, cut);
  const name = full.slice(cut + 1);
  if (!name) throw invalid(field, "must name a file, not end with '/'");
  checkDir(dir, field);
  checkName(name, field);
  return { path: dir, name };
}

/** `644`, `0755`: three or four octal digits. */
export function checkPrivilege(p: string, field = "privilege"): string {
  if (!/^[0-7]{3,4}$/.test(p)) throw invalid(field, "must be 3 or 4 octal digits, such as 644 or 0755");
  return p;
}

/** A user or group name (or numeric id) as the agent passes it to chown. */
export function checkOwner(v: string, field: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?$/.test(v)) throw invalid(field, "must be a user/group name or numeric id (letters, digits, '_', '.', '-'; at most 32)");
  return v;
}
