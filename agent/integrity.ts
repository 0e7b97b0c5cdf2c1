/**
 * What the agent trusts of its own bookkeeping. `{app}/.edgeconf/` is writable by whoever shares
 * the service folder (the business container, in the seed's Kubernetes layout), so the agent
 * authenticates what it writes there and checks the shape of a plan before acting on it:
 *
 * - `seal`/`unseal`: `state.json` and `journal.json` end with an `"hmac"` field, an HMAC-SHA256
 *   over the service's name, the file's name and the body's exact bytes, keyed by a key derived (HKDF-SHA256) from the agent's token. The token reaches no script and no file,
 *   so nobody else can make a tag; a file without a valid one is not the agent's.
 * - `checkPlan`: a journal's swap plan names only paths below `files/`, temp files beside their
 *   targets, and backups in `.edgeconf/previous/`, even when its tag is valid (defence in depth).
 * - `ContentChangedError`: bytes copied from a path hashed to something else than expected.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { TEMP_MARKER } from "./fsutil.js";
import type { SwapPlan } from "./swap.js";

/** The key that authenticates `.edgeconf/` files, for one agent token. */
export interface SealKey {
  key: Buffer;
}

/** HKDF-SHA256 of the token (fixed salt and info): 32 bytes; the token itself is never the key. */
export function sealKey(token: string): SealKey {
  return { key: Buffer.from(hkdfSync("sha256", token, "edgeconf agent state", "edgeconf .edgeconf/ hmac v1", 32)) };
}

const tag = (key: SealKey, scope: string, body: string) => createHmac("sha256", key.key).update(`edgeconf/v1\n${scope}\n`).update(body).digest();

/**
 * The file text for `body` (a JSON object, never `{}`), bound to `scope` (service and file
 * name): the body with `"hmac"` appended as its last field, so the file stays plain JSON.
 */
export function seal(key: SealKey, scope: string, body: string): string {
  return `${body.slice(0, -1)},"hmac":"${tag(key, scope, body).toString("hex")}"}`;
}

const SEALED = /,"hmac":"([0-9a-f]{64})"\}$/;

/** The body of a sealed file text, or null when its tag is missing or not the agent's. */
export function unseal(key: SealKey, scope: string, text: string): string | null {
  const m = SEALED.exec(text);
  if (!m) return null;
  const body = `${text.slice(0, m.index)}}`;
  return timingSafeEqual(Buffer.from(m[1], "hex"), tag(key, scope, body)) ? body : null;
}

/** A journal or state file of `.edgeconf/` that the agent did not write (or its plan is malformed). */
export class UntrustedFileError extends Error {}

/** The bytes copied from a path were not those expected (changed between a check and the copy). */
export class ContentChangedError extends Error {}

const SEGMENT_BAD = (s: string) => s === "" || s === "." || s === ".." || s.includes("\0") || s.includes("\\");

/** A normalised relative path below `files/`: no `..`, not absolute, no empty segment. */
function belowFiles(rel: unknown): rel is string {
  if (typeof rel !== "string" || !rel.startsWith("files/")) return false;
  return !rel.split("/").some(SEGMENT_BAD);
}

const dirOf = (rel: string) => rel.slice(0, rel.lastIndexOf("/"));
const nameOf = (rel: string) => rel.slice(rel.lastIndexOf("/") + 1);
const isInt = (n: unknown, min: number, max: number) => typeof n === "number" && Number.isInteger(n) && n >= min && n <= max;

/**
 * Checks a swap plan read from a journal; returns it, or throws UntrustedFileError naming the
 * first entry that breaks a rule: every `rel` below `files/`, every `tmp` a temp name in the same
 * folder as its `rel`, every `backup` exactly `.edgeconf/previous/<plan id>-<n>`.
 */
export function checkPlan(plan: unknown, where: string): SwapPlan {
  const bad = (what: string): never => {
    throw new UntrustedFileError(`${where}: the journal's plan is refused (${what}); the agent does not act on it`);
  };
  const p = plan as SwapPlan;
  if (typeof p !== "object" || p === null || !Array.isArray(p.writes) || !Array.isArray(p.removes)) bad("not a plan");
  if (typeof p.id !== "string" || !/^[0-9a-f]{1,32}$/.test(p.id)) bad("bad plan id");
  if (typeof p.backedUp !== "boolean") bad("bad backedUp");
  if (p.undoing !== undefined && typeof p.undoing !== "boolean") bad("bad undoing");
  const backup = new RegExp(`^\\.edgeconf/previous/${p.id}-(0|[1-9][0-9]{0,8})$`);
  for (const w of p.writes) {
    if (typeof w !== "object" || w === null || !belowFiles(w.rel)) bad(`write target ${JSON.stringify(w?.rel)} is not below files/`);
    if (w.tmp !== null && (typeof w.tmp !== "string" || !belowFiles(w.tmp) || dirOf(w.tmp) !== dirOf(w.rel) || !nameOf(w.tmp).startsWith(`.${nameOf(w.rel)}${TEMP_MARKER}`))) {
      bad(`temp file ${JSON.stringify(w.tmp)} is not a temp name beside ${w.rel}`);
    }
    if (w.backup !== null && (typeof w.backup !== "string" || !backup.test(w.backup))) bad(`backup ${JSON.stringify(w.backup)} of ${w.rel}`);
    if (!isInt(w.mode, 0, 0o7777)) bad(`mode of ${w.rel}`);
    if (w.owner !== undefined && (typeof w.owner !== "object" || w.owner === null || !isInt(w.owner.uid, -1, 2 ** 32) || !isInt(w.owner.gid, -1, 2 ** 32))) bad(`owner of ${w.rel}`);
  }
  for (const r of p.removes) {
    if (typeof r !== "object" || r === null || !belowFiles(r.rel)) bad(`removal ${JSON.stringify(r?.rel)} is not below files/`);
    if (typeof r.backup !== "string" || !backup.test(r.backup)) bad(`backup ${JSON.stringify(r.backup)} of ${r.rel}`);
  }
  return p;
}

const keys = new Map<string, SealKey>();

/** The seal key of a runner's token (derived once per token). */
export function keyOf(deps: { config: { token: string } }): SealKey {
  let key = keys.get(deps.config.token);
  if (!key) keys.set(deps.config.token, (key = sealKey(deps.config.token)));
  return key;
}
