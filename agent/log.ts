/**
 * Structured one-line logs in the seed's format:
 * `time=2024-03-08T01:53:52.259Z level=INFO msg="exec hook success" script=pre_hook output=""`.
 * Values are quoted only when they need it, like Go's slog text handler, so existing log
 * scrapers written for the seed's agent keep parsing ours.
 */
export type Level = "DEBUG" | "INFO" | "WARN" | "ERROR";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  with(fields: Fields): Logger;
}

const ORDER: Record<Level, number> = { DEBUG: 0, INFO: 1, WARN: 2, ERROR: 3 };

/** Quotes a value when it is empty or holds spaces, quotes, `=` or control characters. */
export function formatValue(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = "";
  else if (value instanceof Error) text = value.message;
  else if (typeof value === "object") text = JSON.stringify(value);
  else text = String(value);
  if (text !== "" && !/[\s"=\\\u0000-\u001f\u007f]/.test(text)) return text;
  return JSON.stringify(text);
}

export function formatLine(time: Date, level: Level, msg: string, fields: Fields = {}): string {
  const parts = [`time=${time.toISOString()}`, `level=${level}`, `msg=${JSON.stringify(msg)}`];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${formatValue(value)}`);
  }
  return parts.join(" ");
}

export interface LoggerOptions {
  level?: Level;
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(options: LoggerOptions = {}, bound: Fields = {}): Logger {
  const min = ORDER[options.level ?? "INFO"];
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const now = options.now ?? (() => new Date());
  const emit = (level: Level) => (msg: string, fields?: Fields) => {
    if (ORDER[level] < min) return;
    write(formatLine(now(), level, msg, { ...bound, ...fields }));
  };
  return {
    debug: emit("DEBUG"),
    info: emit("INFO"),
    warn: emit("WARN"),
    error: emit("ERROR"),
    with: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

/** Parses `--log-level` values, case-insensitively. */
export function parseLevel(text: string | undefined): Level {
  const upper = (text ?? "INFO").toUpperCase();
  if (upper === "WARNING") return "WARN";
  if (upper in ORDER) return upper as Level;
  throw new Error(`unknown log level "${text}" (DEBUG, INFO, WARN, ERROR)`);
}
