/**
 * Settings come from flags (`--feed-addrs=a,b` or `--feed-addrs a,b`) or from the environment
 * names of the seed's Kubernetes manifests (`biz`, `app`, `feed_addrs`, `token`, `temp_dir`, ...),
 * so a manifest written for the seed's agent works unchanged. Flags win over the environment.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { noUnsafeChars } from "../functions/core/text.js";

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
  /** First retry of a failed release (watch); doubles up to 5 minutes. */
  retryMs: number;
  logLevel: string;
  /** Who may read `/kv/{app}/{key}` on `port` (agent/kv-cli.ts). */
  kvHttp: "loopback" | "any" | "off";
  /** Secret items are answered there too. */
  kvHttpSecrets: boolean;
}

/** One setting: its flag (`--temp-dir`) is the env name with dashes. */
export interface Setting {
  env: string;
  help: string;
  default?: string;
  boolean?: boolean;
  /** Only `watch` uses it: refused as a flag of `pull` (ignored there when it comes from the environment). */
  watchOnly?: boolean;
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
  { env: "port", help: "port of /healthz and /metrics (0 = off)", default: "9616", watchOnly: true },
  { env: "wait", help: "long-poll hold in seconds, 1 to 60", default: "30", watchOnly: true },
  { env: "download_concurrency", help: "parallel blob downloads", default: "8" },
  { env: "recheck_interval", help: "full re-check period in seconds", default: "300", watchOnly: true },
  { env: "retry_interval", help: "first retry of a failed release in seconds, doubling to 5 min", default: "2", watchOnly: true },
  { env: "log_level", help: "DEBUG | INFO | WARN | ERROR", default: "INFO" },
  { env: "kv_http", help: "who may GET /kv/{app}/{key} on --port: loopback | any | off", default: "loopback", watchOnly: true },
  { env: "kv_http_secrets", help: "answer secret items on /kv/ too", default: "false", boolean: true, watchOnly: true },
];

export class ConfigError extends Error {}

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

/** Plain decimal only (`1e3`, `0x10`, `+5` and `010` are mistakes, not spellings); durations may end in `s`. */
const DECIMAL = /^(0|[1-9][0-9]*)(\.[0-9]+)?s?$/;

function number(name: string, text: string, { min = 0, max = Infinity, integer = false } = {}): number {
  const value = Number(text.trim().replace(/s$/, ""));
  if (!DECIMAL.test(text.trim()) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`${name}: "${text}" is not a valid ${integer ? "whole number" : "number"}`);
  }
  if (value < min || value > max) throw new ConfigError(`${name}: ${text} is out of range (${min} to ${max === Infinity ? "any" : max})`);
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

/**
 * Builds the effective configuration; throws ConfigError naming the first bad setting the way
 * the user gave it: the flag as typed (`typed`, e.g. `--temp_dir`), else the environment variable.
 * `flags` maps setting names (`temp_dir`) to values. For `pull`, watch-only settings from the
 * environment are ignored (the seed's init and sidecar containers share one environment).
 */
export function loadConfig(flags: Map<string, string>, env: NodeJS.ProcessEnv, command: "pull" | "watch" = "watch", typed = new Map<string, string>()): AgentConfig {
  const setting = (name: string) => SETTINGS.find((s) => s.env === name)!;
  const fromFlag = (name: string) => flags.has(name);
  const label = (name: string): string => {
    if (fromFlag(name)) return typed.get(name) ?? `--${name.replace(/_/g, "-")}`;
    return env[name] !== undefined && !(command === "pull" && setting(name).watchOnly) ? `${name} (environment variable)` : name;
  };
  const raw = (name: string): string => {
    const s = setting(name);
    const fromEnv = command === "pull" && s.watchOnly ? undefined : env[name];
    return flags.get(name) ?? fromEnv ?? s.default ?? "";
  };
  // A value the user typed wrong is named before a setting left out: `watch --wait=120` says what
  // is wrong with --wait even when biz, app, feed_addrs and token come later.
  const missing: string[] = [];
  const required = (name: string): string => {
    const value = raw(name).trim();
    if (value === "") missing.push(name);
    return value;
  };
  const num = (name: string, opts: { min?: number; max?: number; integer?: boolean } = {}) => number(label(name), raw(name), opts);
  const bizText = required("biz");
  const appText = required("app");
  const addrText = required("feed_addrs");
  const token = required("token");
  const waitSeconds = num("wait", { min: 1, max: 60, integer: true });
  const port = num("port", { max: 65535, integer: true });
  if (missing.length) {
    const name = missing[0];
    throw new ConfigError(`missing ${name}: set --${name.replace(/_/g, "-")} or the ${name} environment variable`);
  }
  const biz = number(label("biz"), bizText, { min: 1, integer: true });
  const apps = list(appText);
  for (const app of apps) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(app)) throw new ConfigError(`${label("app")}: "${app}" is not a valid service name`);
  }
  let feedAddrs: string[];
  try {
    feedAddrs = list(addrText).map(normalizeAddr);
  } catch (err) {
    throw new ConfigError((err as Error).message.replace(/^feed_addrs/, label("feed_addrs")));
  }
  const tempDir = raw("temp_dir");
  if (tempDir.trim() === "") throw new ConfigError(`${label("temp_dir")}: must not be empty`);
  const policy = raw("on_post_failure");
  if (policy !== "report" && policy !== "rollback") throw new ConfigError(`${label("on_post_failure")}: "${policy}" is not report or rollback`);
  let labels: Record<string, string>;
  try {
    labels = parseLabels(raw("labels"));
  } catch (err) {
    throw new ConfigError((err as Error).message.replace(/^labels/, label("labels")));
  }
  const kvHttp = raw("kv_http").trim();
  if (kvHttp !== "loopback" && kvHttp !== "any" && kvHttp !== "off") throw new ConfigError(`${label("kv_http")}: "${kvHttp}" is not loopback, any or off`);
  if (!/^(debug|info|warn|warning|error)$/i.test(raw("log_level").trim())) {
    throw new ConfigError(`${label("log_level")}: "${raw("log_level")}" is not DEBUG, INFO, WARN or ERROR`);
  }
  return {
    biz,
    apps,
    feedAddrs,
    token,
    tempDir,
    labels,
    uid: uidOf(label("uid"), raw("uid").trim() || hostFingerprint()),
    cacheEnabled: boolean(label("file_cache_enabled"), raw("file_cache_enabled")),
    cacheDir: raw("file_cache_dir") || join(tempDir, "cache"),
    cacheThresholdBytes: Math.floor(num("cache_threshold_gb") * 1024 ** 3),
    hookTimeoutMs: Math.round(num("hook_timeout", { min: 1 }) * 1000),
    onPostFailure: policy,
    allowSpecialBits: boolean(label("allow_special_bits"), raw("allow_special_bits")),
    port,
    waitSeconds,
    downloadConcurrency: num("download_concurrency", { min: 1, max: 256, integer: true }),
    recheckMs: Math.round(num("recheck_interval", { min: 1 }) * 1000),
    retryMs: Math.round(num("retry_interval", { min: 0.1 }) * 1000),
    logLevel: raw("log_level").trim(),
    kvHttp,
    kvHttpSecrets: boolean(label("kv_http_secrets"), raw("kv_http_secrets")),
  };
}

/**
 * The host's uid as the server takes it (functions/http/release-poll.ts `Uid`): 1-256 characters,
 * no control, bidi or invisible ones. Checked here so a bad one is a usage error (exit 2), not a
 * refusal of every poll.
 */
function uidOf(name: string, uid: string): string {
  if (uid.length > 256 || !noUnsafeChars(uid)) {
    throw new ConfigError(`${name}: must be 1-256 characters with no control, bidi or invisible characters`);
  }
  return uid;
}

/** `host:port` is plain HTTP, as in the seed's manifests; full URLs are kept (without trailing `/`). */
export function normalizeAddr(addr: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(addr) && !/^https?:\/\//i.test(addr)) throw new ConfigError(`feed_addrs: "${addr}" is not http:// or https://`);
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
