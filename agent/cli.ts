/**
 * The command line, git-style like consul-template's: `edgeconf-agent <command> [flags]`, with
 * `help`, `-h`/`--help` (per command too: `pull --help`, `help watch`), `version`/`--version`.
 * Parsed with `node:util` parseArgs (strict); errors name the flag as the user typed it.
 */
import { parseArgs } from "node:util";
import { AGENT_VERSION, ConfigError, SETTINGS } from "./config.js";

export const COMMANDS = ["pull", "watch"] as const;
export type Command = (typeof COMMANDS)[number];

/** The exit codes of every command (README "Exit codes" and `--help` show this table). */
export const EXIT = { OK: 0, APPLY_FAILED: 1, USAGE: 2, FEED: 3, NO_RELEASE: 4, LOCAL: 5 } as const;

const EXIT_TABLE = [
  "  0  every service applied (or already was); watch: stopped by SIGTERM/SIGINT",
  "  1  an apply failed: pre/post script, download, hash, refused path or mount, disk,",
  "     or its event could not be appended to metadata.json",
  "  2  bad usage or configuration (the message names the flag or variable)",
  "  3  the feed could not be reached (after 3 tries) or refused the request",
  "  4  no release is published for this client (pull); get kv: the key is absent",
  "  5  local error before any request: temp_dir or cache folder not writable",
];

export type CommandLine =
  | { kind: "help"; topic: Command | null }
  | { kind: "version" }
  | { kind: "run"; command: Command; flags: Map<string, string>; typed: Map<string, string> };

const flagOf = (env: string) => env.replace(/_/g, "-");

/**
 * `argv` without node and script. Throws ConfigError (exit 2) for an unknown command or flag,
 * a flag without its value, or a watch-only flag given to `pull`.
 */
export function parseCommandLine(argv: string[]): CommandLine {
  // The seed's spellings: `--temp_dir` as well as `--temp-dir`; `--file-cache-enabled` alone means true.
  const args = argv.map((arg, i) => {
    if (arg === "--") return arg;
    const m = /^--([^=]+)(=.*)?$/.exec(arg);
    if (!m) return arg;
    const name = m[1].replace(/_/g, "-");
    const next = argv[i + 1];
    const isBoolean = SETTINGS.find((s) => flagOf(s.env) === name)?.boolean;
    if (isBoolean && m[2] === undefined && (next === undefined || next.startsWith("-"))) return `--${name}=true`;
    return `--${name}${m[2] ?? ""}`;
  });
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
  };
  for (const s of SETTINGS) options[flagOf(s.env)] = { type: "string" };
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new ConfigError(parseError(err as NodeJS.ErrnoException & { message: string }));
  }
  const [first, ...rest] = parsed.positionals;
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.version || first === "version") return { kind: "version" };
  if (first === "help") {
    if (rest.length > 1 || (rest[0] !== undefined && !isCommand(rest[0]))) throw new ConfigError(`no help on "${rest.join(" ")}"; commands: ${COMMANDS.join(", ")}`);
    return { kind: "help", topic: (rest[0] as Command | undefined) ?? null };
  }
  if (first !== undefined && !isCommand(first)) throw new ConfigError(`unknown command "${first}"; commands: ${COMMANDS.join(", ")}, help, version`);
  if (values.help) return { kind: "help", topic: (first as Command | undefined) ?? null };
  if (first === undefined) throw new ConfigError("missing command: pull or watch");
  if (rest.length > 0) throw new ConfigError(`unexpected argument "${rest[0]}"`);
  const command = first as Command;
  const flags = new Map<string, string>();
  const typed = new Map<string, string>();
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== "option" || token.name === "help" || token.name === "version") continue;
    const env = token.name.replace(/-/g, "_");
    const original = argv[token.index].replace(/=.*$/, "");
    const setting = SETTINGS.find((s) => s.env === env)!;
    if (command === "pull" && setting.watchOnly) throw new ConfigError(`${original} applies to watch only`);
    flags.set(env, token.value ?? "");
    typed.set(env, original);
  }
  return { kind: "run", command, flags, typed };
}

function isCommand(text: string): text is Command {
  return (COMMANDS as readonly string[]).includes(text);
}

/** parseArgs' messages, shortened to name the flag. */
function parseError(err: NodeJS.ErrnoException & { message: string }): string {
  const flag = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1] ?? "";
  switch (err.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${flag}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(err.message) ? `flag ${flag} needs a value` : `flag ${flag} takes no value`;
    default:
      return err.message;
  }
}

function settingLines(command: Command | null): string[] {
  const lines: string[] = [];
  for (const s of SETTINGS) {
    if (command === "pull" && s.watchOnly) continue;
    const flag = `--${flagOf(s.env)}`;
    const scope = command === null && s.watchOnly ? "watch: " : "";
    lines.push(`  ${flag.padEnd(24)} ${s.env.padEnd(22)} ${scope}${s.help}${s.default ? ` (default ${s.default})` : ""}`);
  }
  return lines;
}

const COMMON = "--biz=10 --app=service_demo --feed-addrs=config.internal:8080 --token=$TOKEN";

const PAGES: Record<Command, { summary: string; about: string[]; examples: string[] }> = {
  pull: {
    summary: "apply each service's current release once, then exit (init containers, cron, CI)",
    about: [
      "Runs the pre-script, downloads and verifies every file, applies them, runs the post-script and",
      "appends the event to metadata.json. Exits 0 only when every service is applied; a release whose",
      "post-script failed is not applied, so the next pull runs it again.",
    ],
    examples: [
      `  edgeconf-agent pull ${COMMON} --temp-dir=/data/bscp`,
      "  biz=10 app=service_demo feed_addrs=config.internal:8080 token=$TOKEN edgeconf-agent pull",
      "  edgeconf-agent pull --biz=10 --app=web,api --feed-addrs=a.internal:8080,b.internal:8080 --token=$TOKEN --labels=env=prod,zone=a",
    ],
  },
  watch: {
    summary: "long-poll the feed and apply each new release as it is published (sidecars, hosts)",
    about: [
      "Holds a long-poll on the feed (--wait seconds, shortened by itself when a proxy cuts held",
      "requests), applies each release the moment it is published, retries a failed release with a",
      "growing backoff (2 s doubling to 5 min) or at once when it is published again, and serves",
      "/healthz and /metrics on --port. SIGTERM lets the apply in hand finish, then exits 0.",
    ],
    examples: [
      `  edgeconf-agent watch ${COMMON} --port=9616`,
      `  edgeconf-agent watch ${COMMON} --wait=20 --hook-timeout=120 --on-post-failure=rollback`,
    ],
  },
};

/** The help page: general (`topic` null) or one command's. */
export function helpText(topic: Command | null): string {
  const lines = [`edgeconf-agent v${AGENT_VERSION}`];
  if (topic === null) {
    lines.push(
      "usage: edgeconf-agent <command> [--flag=value ...]",
      "",
      "commands:",
      ...COMMANDS.map((c) => `  ${c.padEnd(8)} ${PAGES[c].summary}`),
      `  ${"get".padEnd(8)} get kv --app=APP KEY: print one item of a kv service from its kv.json (get --help)`,
      `  ${"help".padEnd(8)} this page; help <command> (or <command> --help) for one command`,
      `  ${"version".padEnd(8)} print the version (also --version)`,
    );
  } else {
    lines.push(`usage: edgeconf-agent ${topic} [--flag=value ...]`, "", `${PAGES[topic].summary}.`, ...PAGES[topic].about);
  }
  lines.push("", "settings (flag / environment variable; a flag wins):", ...settingLines(topic));
  if (topic !== null) lines.push("", "examples:", ...PAGES[topic].examples);
  lines.push("", "exit codes:", ...EXIT_TABLE);
  return lines.join("\n");
}

/** What a usage error prints: the message and where to look, not the whole page. */
export function usageError(message: string, command?: string): string {
  const hint = command && isCommand(command) ? `edgeconf-agent ${command} --help` : "edgeconf-agent --help";
  return `edgeconf-agent: ${message}\nrun '${hint}' for usage`;
}
