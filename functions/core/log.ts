/**
 * Server log lines in logfmt (`time=… level=… msg=… key=value`), one event per line. Values can come
 * from agents and callers (paths, messages, error texts), so every value is escaped: a value can
 * never end the line or start a forged one. Runs on Node and Workers alike (no `node:` imports).
 */
export type LogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Control characters (C0, DEL, C1), line/paragraph separators and bidi controls: never written raw. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NEEDS_QUOTES = /[\s="\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

const escapeChar = (ch: string) => {
  switch (ch) {
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    default:
      return `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
  }
};

/** One logfmt value: bare when it is a plain word, else double-quoted with `\`, `"` and every control or bidi character escaped. */
export function logfmtValue(v: string | number | boolean | null | undefined): string {
  const s = v === null || v === undefined ? "" : String(v);
  if (s !== "" && !NEEDS_QUOTES.test(s)) return s;
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(UNSAFE, escapeChar)}"`;
}

/** A whole line without the trailing newline: `time=<ISO> level=<L> msg=<v> k=v …`. Keys are reduced to `[A-Za-z0-9_.-]`. */
export function logfmtLine(level: LogLevel, msg: string, fields: LogFields = {}, now = new Date()): string {
  let line = `time=${now.toISOString()} level=${level} msg=${logfmtValue(msg)}`;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    line += ` ${k.replace(/[^A-Za-z0-9_.-]/g, "_") || "_"}=${logfmtValue(v)}`;
  }
  return line;
}

/** Longest error text a line carries, characters: a driver's message is a sentence; anything longer is a query or a payload. */
const MAX_ERROR_CHARS = 300;

/** The innermost `cause` of an error (at most 8 deep): the driver's or the socket's own error under its wrappers. */
function rootOf(err: unknown): unknown {
  let e = err;
  for (let i = 0; i < 8; i++) {
    const cause = e && typeof e === "object" ? (e as { cause?: unknown }).cause : undefined;
    if (!cause) break;
    e = cause;
  }
  return e;
}

/**
 * What a log line may say about an error: the innermost cause's own message, at most 300
 * characters, and its code (`sqlstate` for a Postgres SQLSTATE, else `code`, e.g. ECONNRESET).
 * Why not the error's own text: Drizzle wraps a driver's error (as `cause`) in "Failed query:
 * <SQL> params: <every value>", which for a batch of sightings is ~30 KB of uids and labels, and
 * for other queries may be token hashes or secrets. No line built from these carries parameters.
 */
export function causeFields(err: unknown): { error: string; sqlstate?: string; code?: string } {
  const e = rootOf(err);
  const { message, code } = (e && typeof e === "object" ? e : {}) as { message?: unknown; code?: unknown };
  // A wrapper without its cause: keep the statement's words, never its parameters.
  let text = (typeof message === "string" && message ? message : String(e)).split("\nparams: ")[0];
  if (text.length > MAX_ERROR_CHARS) text = `${text.slice(0, MAX_ERROR_CHARS - 1)}…`;
  const c = typeof code === "string" || typeof code === "number" ? String(code).slice(0, 32) : undefined;
  if (c === undefined) return { error: text };
  return /^[0-9A-Z]{5}$/.test(c) ? { error: text, sqlstate: c } : { error: text, code: c };
}

/** {@link causeFields} as one phrase (`23503 insert or update … violates …`), for messages rather than fields. */
export function causeText(err: unknown): string {
  const f = causeFields(err);
  return [f.sqlstate ?? f.code, f.error].filter(Boolean).join(" ");
}

/**
 * The fields that describe an unexpected error, escaped like any value: {@link causeFields} and the
 * outer error's stack frames on one line (its frames only: a stack's first lines repeat the message).
 */
export function errorFields(err: unknown): LogFields {
  const stack = err instanceof Error ? err.stack?.split("\n").filter((l) => /^\s+at /.test(l)).map((l) => l.trim()).join(" | ") : undefined;
  return { ...causeFields(err), stack };
}

/** Writes one line: INFO/DEBUG to stdout, WARN/ERROR to stderr. */
export function log(level: LogLevel, msg: string, fields?: LogFields): void {
  const line = logfmtLine(level, msg, fields);
  if (level === "WARN" || level === "ERROR") console.error(line);
  else console.log(line);
}
