import { invalid } from "./errors";

/**
 * Label selectors, in the Kubernetes style the seed's agents already use:
 * `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (absent); a comma is AND.
 * The empty selector matches every client.
 */
export type Requirement =
  | { key: string; op: "eq" | "neq"; value: string }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "absent" };

export type Selector = Requirement[];
export type Labels = Record<string, string>;

const KEY = /^[A-Za-z0-9]([A-Za-z0-9_.\-/]{0,252})?$/;
const VALUE = /^[A-Za-z0-9_.:@+\-/]{0,253}$/;
const MAX_SELECTOR = 4096;

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (depth < 0) throw new Error("')' without '('");
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (depth !== 0) throw new Error("'(' without ')'");
  parts.push(cur);
  return parts;
}

function checkKey(key: string, part: string): string {
  if (!KEY.test(key)) throw new Error(`'${key}' in '${part}' is not a valid label key (letters, digits, '_', '-', '.', '/')`);
  return key;
}

function checkValue(value: string, part: string): string {
  if (!VALUE.test(value)) throw new Error(`'${value}' in '${part}' is not a valid label value`);
  return value;
}

function parseRequirement(raw: string): Requirement {
  const part = raw.trim();
  if (!part) throw new Error("empty requirement (two commas in a row, or a trailing comma)");
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(part);
  if (set) {
    const values = set[3].split(",").map((v) => checkValue(v.trim(), part));
    if (!values.length || values.some((v) => v === "")) throw new Error(`'${part}' needs a non-empty list of values`);
    return { key: checkKey(set[1], part), op: set[2] as "in" | "notin", values: [...new Set(values)] };
  }
  const cmp = /^([^=!\s]+)\s*(==|!=|=)\s*(.*)$/.exec(part);
  if (cmp) return { key: checkKey(cmp[1], part), op: cmp[2] === "!=" ? "neq" : "eq", value: checkValue(cmp[3].trim(), part) };
  if (part.startsWith("!")) return { key: checkKey(part.slice(1).trim(), part), op: "absent" };
  return { key: checkKey(part, part), op: "exists" };
}

/** Parses a selector or throws `invalid("selector", ...)` (a 400 naming the field). */
export function parseSelector(text: string, field = "selector"): Selector {
  if (text.length > MAX_SELECTOR) throw invalid(field, `at most ${MAX_SELECTOR} characters`);
  if (/[\u0000-\u001f\u007f]/.test(text)) throw invalid(field, "must not contain control characters");
  if (!text.trim()) return [];
  try {
    return splitTopLevel(text).map(parseRequirement);
  } catch (e) {
    throw invalid(field, (e as Error).message);
  }
}

/** Whether the labels satisfy every requirement. `!=` and `notin` also match a client without the key. */
export function matchSelector(selector: Selector, labels: Labels): boolean {
  return selector.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = has ? labels[r.key] : undefined;
    switch (r.op) {
      case "eq":
        return has && v === r.value;
      case "neq":
        return !has || v !== r.value;
      case "in":
        return has && r.values.includes(v!);
      case "notin":
        return !has || !r.values.includes(v!);
      case "exists":
        return has;
      case "absent":
        return !has;
    }
  });
}

/** The canonical text of a parsed selector (stable spacing; what the API stores and shows). */
export function formatSelector(selector: Selector): string {
  return selector
    .map((r) => {
      switch (r.op) {
        case "eq":
          return `${r.key}=${r.value}`;
        case "neq":
          return `${r.key}!=${r.value}`;
        case "in":
        case "notin":
          return `${r.key} ${r.op} (${r.values.join(",")})`;
        case "exists":
          return r.key;
        case "absent":
          return `!${r.key}`;
      }
    })
    .join(",");
}

/**
 * A stable bucket in [0, 10000) for a uid in a group: FNV-1a 32-bit over UTF-8 of `${groupId}:${uid}`,
 * then murmur3's fmix32 finaliser so neighbouring uids spread evenly. Pure JS and synchronous (Web
 * Crypto's digest is async), so target resolution stays a plain function the feed can call per poll.
 */
export function percentBucket(uid: string, groupId: number): number {
  const bytes = new TextEncoder().encode(`${groupId}:${uid}`);
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % 10000;
}

/**
 * Whether a uid falls in a group's share. Same uid, same answer; a uid inside at p% stays inside at
 * any larger percentage. `percent` null means the whole group; 0 means nobody.
 */
export function inPercent(uid: string, groupId: number, percent: number | null | undefined): boolean {
  if (percent === null || percent === undefined || percent >= 100) return true;
  if (percent <= 0) return false;
  return percentBucket(uid, groupId) < Math.round(percent * 100);
}
