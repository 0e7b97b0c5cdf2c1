/**
 * Settings come from flags (`--feed-addrs=a,b` or `--feed-addrs a,b`) or from the environment
 * names of the seed's Kubernetes manifests (`biz`, `app`, `feed_addrs`, `token`, `temp_dir`, ...),
 * so a manifest written for the seed's agent works unchanged. Flags win over the environment.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";

export const AGENT_VERSION = "0.1.0";

export type PostFailurePolicy = "report" | "rollback";

export interface AgentConfig {
  biz: number;
  apps: string[];
  feedAddrs: string[];
  token: string;
  tempDir: string;
  labels: Record<string, string>;
  uid: string;
  cacheEnabled: boolean;
  cacheDir: string;
  cacheThresholdBytes: number;
  hookTimeoutMs: number;
  onPostFailure: PostFailurePolicy;
  /** Files may be published with setuid/setgid/sticky bits (refused by default). */
  allowSpecialBits: boolean;
  port: number;
  waitSeconds: number;
  downloadConcurrency: number;
  recheckMs: number;
  logLevel: string;
}

/** One setting: its flag (`--temp-dir`) is the env name with dashes. */
interface Setting {
  env: string;
  help: string;
  default?: string;
  boolean?: boolean;
}

export const SETTINGS: Setting[] = [
  { env: "biz", help: "business id (number)" },
  { env: "app", help: "service name(s), comma-separated" },
  { env: "feed_addrs", help: "feed addresses, comma-separated: host:port (plain http) or full URLs" },
  { env: "token", help: "agent (or admin) token" },
  { env: "temp_dir", help: "root folder of files, hooks and metadata", default: "/data/bscp" },
  { env: "labels", help: "client labels: k=v,k2=v2 or a JSON object", default: "" },
  { env: "uid", help: "client id (default: a stable fingerprint of the host)", default: "" },
  { env: "file_cache_enabled", help: "keep downloaded blobs in the cache", default: "true", boolean: true },
  { env: "file_cache_dir", help: "cache folder (default {temp_dir}/cache)", default: "" },
  { env: "cache_threshold_gb", help: "cache size threshold in GB", default: "2" },
  { env: "hook_timeout", help: "pre/post script timeout in seconds", default: "60" },
  { env: "on_post_failure", help: "report | rollback", default: "report" },
  { env: "allow_special_bits", help: "accept files published with setuid, setgid or sticky bits", default: "false", boolean: true },
  { env: "port", help: "watch: port of /healthz and /metrics (0 = off)", default: "9616" },
  { env: "wait", help: "watch: long-poll hold in seconds (at most 60)", default: "30" },
  { env: "download_concurrency", help: "parallel blob downloads", default: "8" },
  { env: "recheck_interval", help: "watch: full re-check period in seconds", default: "300" },
  { env: "log_level", help: "DEBUG | INFO | WARN | ERROR", default: "INFO" },
];

export class ConfigError extends Error {}

export interface ParsedArgs {
  command: string | undefined;
  flags: Map<string, string>;
}

/** Splits `pull --biz=10 --app a` into the command and a flag map keyed by env name. */
export function parseArgs(argv: string[]): ParsedArgs {
  const flags = new Map<string, string>();
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) {
      if (command !== undefined) throw new ConfigError(`unexpected argument "${arg}"`);
      command = arg;
      continue;
    }
    const eq = arg.indexOf("=");
    const name = (eq >= 0 ? arg.slice(2, eq) : arg.slice(2)).replace(/-/g, "_");
    if (name === "help" || name === "version") {
      flags.set(name, "true");
      continue;
    }
    const setting = SETTINGS.find((s) => s.env === name);
    if (!setting) throw new ConfigError(`unknown flag --${name.replace(/_/g, "-")}`);
    if (eq >= 0) flags.set(name, arg.slice(eq + 1));
    else if (setting.boolean && (argv[i + 1] === undefined || argv[i + 1].startsWith("--"))) flags.set(name, "true");
    else if (argv[i + 1] === undefined) throw new ConfigError(`flag --${name.replace(/_/g, "-")} needs a value`);
    else flags.set(name, argv[++i]);
  }
  return { command, flags };
}

/** `k=v,k2=v2` or a JSON object of strings. */
export function parseLabels(text: string): Record<string, string> {
  const trimmed = text.trim();
  if (trimmed === "") return {};
  if (trimmed.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new ConfigError(`labels: invalid JSON`);
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigError("labels: expected a JSON object");
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
  }
  const labels: Record<string, string> = {};
  for (const pair of trimmed.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ConfigError(`labels: "${pair}" is not k=v`);
    labels[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return labels;
}

function list(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function number(name: string, text: string, { min = 0, integer = false } = {}): number {
  const value = Number(text.replace(/s$/, ""));
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`${name}: "${text}" is not a valid number`);
  }
  return value;
}

function boolean(name: string, text: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new ConfigError(`${name}: "${text}" is not true or false`);
}

/** A stable id for this host: hostname plus a short hash of machine-id and MAC addresses. */
export function hostFingerprint(): string {
  const parts = [hostname()];
  for (const file of ["/etc/machine-id", "/var/lib/dbus/machine-id"]) {
    try {
      parts.push(readFileSync(file, "utf8").trim());
      break;
    } catch {
      /* not every host has one */
    }
  }
  const macs = Object.values(networkInterfaces())
    .flat()
    .filter((i) => i && !i.internal && i.mac !== "00:00:00:00:00:00")
    .map((i) => i!.mac);
  parts.push(...[...new Set(macs)].sort());
  const hash = createHash("sha256").update(parts.join("|")).digest("hex").slice(0, 12);
  return `${hostname()}-${hash}`;
}

/** Builds the effective configuration; throws ConfigError naming the first bad setting. */
export function loadConfig(flags: Map<string, string>, env: NodeJS.ProcessEnv): AgentConfig {
  const raw = (name: string): string => {
    const setting = SETTINGS.find((s) => s.env === name)!;
    return flags.get(name) ?? env[name] ?? setting.default ?? "";
  };
  const required = (name: string): string => {
    const value = raw(name).trim();
    if (value === "") throw new ConfigError(`missing ${name}: set --${name.replace(/_/g, "-")} or the ${name} environment variable`);
    return value;
  };
  const biz = number("biz", required("biz"), { min: 1, integer: true });
  const apps = list(required("app"));
  for (const app of apps) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(app)) throw new ConfigError(`app: "${app}" is not a valid service name`);
  }
  const feedAddrs = list(required("feed_addrs")).map(normalizeAddr);
  const tempDir = raw("temp_dir");
  const policy = raw("on_post_failure");
  if (policy !== "report" && policy !== "rollback") throw new ConfigError(`on_post_failure: "${policy}" is not report or rollback`);
  return {
    biz,
    apps,
    feedAddrs,
    token: required("token"),
    tempDir,
    labels: parseLabels(raw("labels")),
    uid: raw("uid").trim() || hostFingerprint(),
    cacheEnabled: boolean("file_cache_enabled", raw("file_cache_enabled")),
    cacheDir: raw("file_cache_dir") || join(tempDir, "cache"),
    cacheThresholdBytes: Math.floor(number("cache_threshold_gb", raw("cache_threshold_gb")) * 1024 ** 3),
    hookTimeoutMs: Math.round(number("hook_timeout", raw("hook_timeout")) * 1000),
    onPostFailure: policy,
    allowSpecialBits: boolean("allow_special_bits", raw("allow_special_bits")),
    port: number("port", raw("port"), { integer: true }),
    waitSeconds: Math.min(60, number("wait", raw("wait"), { integer: true })),
    downloadConcurrency: number("download_concurrency", raw("download_concurrency"), { min: 1, integer: true }),
    recheckMs: Math.round(number("recheck_interval", raw("recheck_interval"), { min: 1 }) * 1000),
    logLevel: raw("log_level"),
  };
}

/** `host:port` is plain HTTP, as in the seed's manifests; full URLs are kept (without trailing `/`). */
export function normalizeAddr(addr: string): string {
  const url = /^https?:\/\//i.test(addr) ? addr : `http://${addr}`;
  try {
    new URL(url);
  } catch {
    throw new ConfigError(`feed_addrs: "${addr}" is not host:port or a URL`);
  }
  return url.replace(/\/+$/, "");
}

/** The startup banner: version and effective settings, token masked. */
export function banner(config: AgentConfig, command: string): string {
  const args = [
    `--biz=${config.biz}`,
    `--app=${config.apps.join(",")}`,
    `--feed-addrs=${config.feedAddrs.join(",")}`,
    `--token=***`,
    `--temp-dir=${config.tempDir}`,
    `--labels=${JSON.stringify(config.labels)}`,
    `--uid=${config.uid}`,
    `--port=${config.port}`,
    `--file-cache-enabled=${config.cacheEnabled}`,
    `--file-cache-dir=${config.cacheDir}`,
    `--cache-threshold-gb=${(config.cacheThresholdBytes / 1024 ** 3).toFixed(6)}`,
    `--hook-timeout=${config.hookTimeoutMs / 1000}s`,
    `--on-post-failure=${config.onPostFailure}`,
    `--download-concurrency=${config.downloadConcurrency}`,
  ];
  return [
    "===================================================================================",
    `edgeconf-agent ${command}`,
    `Version  : v${AGENT_VERSION}`,
    `Node     : ${process.version}`,
    "use command line args or environment variables",
    `args: ${args.join(" ")}`,
  ].join("\n");
}

export function usage(): string {
  const lines = [
    `edgeconf-agent v${AGENT_VERSION}`,
    "usage: edgeconf-agent pull|watch [--flag=value ...]",
    "  pull   apply each service's current release once (init container); non-zero exit on any failure",
    "  watch  long-poll for new releases and apply them (sidecar)",
    "settings (flag / environment variable):",
  ];
  for (const s of SETTINGS) {
    const flag = `--${s.env.replace(/_/g, "-")}`;
    lines.push(`  ${flag.padEnd(24)} ${s.env.padEnd(22)} ${s.help}${s.default ? ` (default ${s.default})` : ""}`);
  }
  return lines.join("\n");
}
