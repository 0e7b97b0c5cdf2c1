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

/** The fields that describe an error, escaped like any value: its message and stack on one line. */
export function errorFields(err: unknown): LogFields {
  if (err instanceof Error) return { error: err.message, stack: err.stack?.split("\n").slice(1).map((l) => l.trim()).join(" | ") };
  return { error: String(err) };
}

/** Writes one line: INFO/DEBUG to stdout, WARN/ERROR to stderr. */
export function log(level: LogLevel, msg: string, fields?: LogFields): void {
  const line = logfmtLine(level, msg, fields);
  if (level === "WARN" || level === "ERROR") console.error(line);
  else console.log(line);
}
