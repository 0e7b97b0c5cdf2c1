/**
 * What every command gets: the exit codes, the error kinds that map to them, the output streams
 * and the shared settings (`--url`, `--token`, `--biz` or their EDGECONF_* variables).
 */
import type { ParseArgsConfig } from "node:util";
import { Api } from "./api.js";

export const CLI_VERSION = "0.1.0";

/** The documented exit codes (design.md, "Operator CLI"). */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, SERVER: 3, TIMEOUT: 4 } as const;

/** Bad flags, arguments or local input: exit 2, with the command's usage line. */
export class UsageError extends Error {}

/** The server could not be reached or refused the request (4xx/5xx): exit 3. */
export class ServerError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export type Options = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** Whether stdout is a terminal (progress bar) or a pipe/CI log (plain lines). */
  isTTY: boolean;
  stdout: NodeJS.WriteStream;
}

/** A command: its own flags and help, and what it does. `run` returns the exit code. */
export interface Command {
  name: string;
  summary: string;
  help: string;
  options: Options;
  /** Positionals the command takes (e.g. ["DIR"]); more is a usage error. */
  positionals?: string[];
  run(ctx: Context, values: Values, positionals: string[]): Promise<number>;
}

export interface Context {
  io: Output;
  env: NodeJS.ProcessEnv;
  /** The API client for `--url/--token/--biz`; throws UsageError when one is missing. */
  api(): Api;
}

/** Flags every command accepts. */
export const COMMON_OPTIONS: Options = {
  url: { type: "string" },
  token: { type: "string" },
  biz: { type: "string" },
  help: { type: "boolean", short: "h" },
};

export const COMMON_HELP = `Settings (every command):
  --url URL        server address (env EDGECONF_URL), e.g. https://config.example.com
  --token TOKEN    admin token (env EDGECONF_TOKEN); prefer the variable, flags show in ps
  --biz ID         business id (env EDGECONF_BIZ)
  -h, --help       this help`;

export const EXIT_HELP = `Exit codes: 0 ok, 1 the release failed, 2 usage, 3 server unreachable or refused, 4 timeout.`;

/** Builds the API client from flags, else the environment. */
export function apiFrom(values: Values, env: NodeJS.ProcessEnv): Api {
  const url = str(values.url) ?? env.EDGECONF_URL;
  const token = str(values.token) ?? env.EDGECONF_TOKEN;
  const bizText = str(values.biz) ?? env.EDGECONF_BIZ;
  if (!url) throw new UsageError("missing --url (or EDGECONF_URL)");
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--url: "${url}" is not an http:// or https:// address`);
  if (!token) throw new UsageError("missing --token (or EDGECONF_TOKEN)");
  if (!bizText) throw new UsageError("missing --biz (or EDGECONF_BIZ)");
  if (!/^[1-9][0-9]{0,9}$/.test(bizText)) throw new UsageError(`--biz: "${bizText}" is not a positive integer`);
  return new Api(url.replace(/\/+$/, ""), token, Number(bizText));
}

export function str(v: Values[string]): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** A required string flag, e.g. `--app`. */
export function required(values: Values, name: string): string {
  const v = str(values[name]);
  if (!v) throw new UsageError(`missing --${name}`);
  return v;
}

/**
 * A duration such as `90s`, `30m`, `1h`, `1h30m` or plain seconds (`45`), in milliseconds.
 * Throws UsageError naming the flag when it is not one.
 */
export function parseDuration(text: string, flag: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const re = /(\d+)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]];
    matched = re.lastIndex;
  }
  if (!text || matched !== text.length) throw new UsageError(`--${flag}: "${text}" is not a duration such as 90s, 30m or 1h`);
  return total;
}
