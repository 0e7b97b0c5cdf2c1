/**
 * Progressive rollouts as the CLI sees them (design.md, "Rollouts"): the flags that start one,
 * the server's rollout object, a one-line account of where it stands, and the Tracker that
 * `--wait` follows (one bar per wave; the rollout's final state decides the exit code).
 */
import type { Api } from "./api.js";
import { UsageError, parseDuration, str, type Options, type Values } from "./context.js";
import type { HookRun } from "./resources.js";
import type { Bar, HostState, Progress, Tracker } from "./wait.js";

export const ROLLOUT_STATES = ["running", "paused", "halted", "rolled_back", "aborted", "completed"] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];
const FINAL: RolloutState[] = ["halted", "rolled_back", "aborted", "completed"];

/** A failing client of a wave: the agent's message (or "no report within N s") and its hooks' runs. */
export type FailingClient = { uid: string; reason: string; preHook: HookRun; postHook: HookRun; reportedAt: string | null };
/** Per wave; counts are cumulative (wave k holds every client of the waves before it). */
export type WaveProgress = { index: number; percent: number; released: boolean; targeted: number; succeeded: number; failed: number; pending: number; offline: number; failing: FailingClient[] };
export type Rollout = {
  id: number;
  state: RolloutState;
  /** Why the state is what it is (the halt's failures, who paused). */
  reason: string;
  version: { id: number; name: string };
  waves: number[];
  /** Index of the newest released wave (0-based). */
  currentWave: number;
  bakeSeconds: number;
  maxFailurePercent: number;
  reportTimeoutSeconds: number;
  autoRollback: boolean;
  createdAt: string;
  /** In `GET .../rollouts/{id}` only. */
  progress?: WaveProgress[];
};

/** The settings a rollout starts with; what `POST .../rollouts` takes besides versionId and groups. */
export type RolloutSettings = { waves: number[]; bakeSeconds: number; maxFailurePercent: number; reportTimeoutSeconds: number; autoRollback: boolean };

export const ROLLOUT_OPTIONS: Options = {
  waves: { type: "string" },
  bake: { type: "string" },
  "max-failures": { type: "string" },
  "report-timeout": { type: "string" },
  "no-auto-rollback": { type: "boolean" },
};

export const ROLLOUT_HELP = `Progressive rollout (instead of one publish):
  --waves 5,25,100      percentages of the targeted clients, increasing, the last 100; wave k
                        is a stable share of client uids and keeps every host of wave k-1
  --bake D              how long a wave must stay healthy after its last report before the next
                        starts (default 60s; 0 for none)
  --max-failures P      failed hosts a wave tolerates, in percent of the wave (default 0%); above
                        it the rollout halts
  --report-timeout D    a host of a wave that has not reported after this counts as failed
                        (default 5m)
  --no-auto-rollback    on a halt, leave the released hosts as they are and wait for an operator
                        (edgeconf rollout resume|advance|abort); default: they get back the
                        version they had
With --wait the exit code is the rollout's end: 0 completed, 1 halted, rolled back or aborted.`;

/** `5,25,100` → [5, 25, 100]: whole percents 1–100, strictly increasing, ending at 100. */
export function parseWaves(text: string): number[] {
  const parts = text.split(",").map((s) => s.trim());
  const waves = parts.map((p) => (/^\d{1,3}%?$/.test(p) ? Number(p.replace("%", "")) : NaN));
  const bad = parts.find((_, i) => !(waves[i] >= 1 && waves[i] <= 100));
  if (bad !== undefined) throw new UsageError(`--waves: "${bad}" is not a whole percentage from 1 to 100 (e.g. --waves 5,25,100)`);
  if (waves.some((w, i) => i > 0 && w <= waves[i - 1])) throw new UsageError(`--waves: ${text} is not increasing`);
  if (waves[waves.length - 1] !== 100) throw new UsageError(`--waves: the last wave must be 100 (every targeted client), not ${waves[waves.length - 1]}`);
  return waves;
}

/** `0%` or `10` → a whole percentage from 0 to 100 (the server keeps whole percents). */
export function parsePercent(text: string, flag: string): number {
  const n = /^\d{1,3}%?$/.test(text.trim()) ? Number(text.trim().replace("%", "")) : NaN;
  if (!(n >= 0 && n <= 100)) throw new UsageError(`--${flag}: "${text}" is not a whole percentage from 0% to 100%`);
  return n;
}

/** A duration flag in whole seconds (90s, 5m, 1h); sub-second parts are refused, naming the flag. */
function seconds(text: string, flag: string, min: number): number {
  const ms = parseDuration(text, flag);
  if (ms % 1000) throw new UsageError(`--${flag}: "${text}" is not a whole number of seconds`);
  if (ms / 1000 < min) throw new UsageError(`--${flag}: must be at least ${min} s`);
  return ms / 1000;
}

/**
 * The rollout settings from the flags, or null without `--waves`. Every check runs before any
 * request, so a bad flag never leaves a version behind. Throws UsageError naming the flag.
 */
export function rolloutSettings(values: Values): RolloutSettings | null {
  const wavesText = str(values.waves);
  if (wavesText === undefined) {
    const stray = Object.keys(ROLLOUT_OPTIONS).filter((k) => k !== "waves" && values[k] !== undefined);
    if (stray.length) throw new UsageError(`${stray.map((k) => `--${k}`).join(", ")}: only with --waves (a progressive rollout)`);
    return null;
  }
  return {
    waves: parseWaves(wavesText),
    bakeSeconds: seconds(str(values.bake) ?? "60s", "bake", 0),
    maxFailurePercent: parsePercent(str(values["max-failures"]) ?? "0%", "max-failures"),
    reportTimeoutSeconds: seconds(str(values["report-timeout"]) ?? "5m", "report-timeout", 1),
    autoRollback: values["no-auto-rollback"] !== true,
  };
}

export const isFinal = (r: Pick<Rollout, "state">) => FINAL.includes(r.state);

/** The service's rollout `id`, or its newest one; UsageError when it has none. */
export async function findRollout(api: Api, app: string, id: string | undefined): Promise<Rollout> {
  if (id !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(id)) throw new UsageError(`--id: "${id}" is not a rollout id`);
    return api.json<Rollout>("GET", api.appPath(app, `/rollouts/${id}`));
  }
  const page = await api.json<{ items: { id: number }[] }>("GET", api.appPath(app, "/rollouts?limit=1&offset=0"));
  const newest = page.items[0];
  if (!newest) throw new UsageError(`service '${app}' has no rollout yet`);
  return api.json<Rollout>("GET", api.appPath(app, `/rollouts/${newest.id}`));
}

const waveLabel = (r: Rollout, i: number) => `wave ${i + 1}/${r.waves.length} (${r.waves[i]}%)`;
const waves = (r: Rollout) => r.progress ?? [];

/** The output of the hook that failed (pre before post), for the tail shown under a failing host. */
export function failingOutput(f: FailingClient): string {
  return (f.preHook?.exitCode ? f.preHook : f.postHook?.exitCode ? f.postHook : (f.preHook ?? f.postHook))?.outputTail ?? "";
}

/** Failing hosts over every wave, each once (waves overlap: a host of wave 1 is in wave 2). */
export function failingHosts(r: Rollout): FailingClient[] {
  const seen = new Map<string, FailingClient>();
  for (const w of waves(r)) for (const f of w.failing) if (!seen.has(f.uid)) seen.set(f.uid, f);
  return [...seen.values()];
}

/** One line: "rollout 7 of V5: running, wave 2/3 (25%)". */
export function stageLine(r: Rollout): string {
  // The server's reason names the wave when there is one ("wave 1 (25 %): 1 of 1 clients failed ...").
  const why = r.reason && r.state !== "running" ? `: ${r.reason}` : r.waves[r.currentWave] !== undefined ? `, ${waveLabel(r, r.currentWave)}` : "";
  const hint = r.state === "paused" ? " (resume with: edgeconf rollout resume)" : "";
  return `rollout ${r.id} of ${r.version.name}: ${r.state.replace("_", " ")}${why}${hint}`;
}

/** The sentence that ends a wait (or a status) once the rollout is in a final state. */
export function endLine(r: Rollout): string {
  const failing = failingHosts(r);
  const wave = waves(r)[r.currentWave];
  const where = wave ? ` in ${waveLabel(r, r.currentWave)}: ${wave.failed} of ${wave.targeted} hosts failed (threshold ${r.maxFailurePercent}%)` : "";
  const hosts = failing.length ? `; failing hosts: ${failing.map((f) => f.uid).join(", ")}` : "";
  switch (r.state) {
    case "completed":
      return `rollout ${r.id} completed: ${r.version.name} released to every wave (${waves(r).at(-1)?.succeeded ?? 0} hosts succeeded)`;
    case "halted":
      return `rollout ${r.id} halted${where}${hosts}`;
    case "rolled_back":
      return `rollout ${r.id} halted${where} and rolled back: the released hosts got their previous version again${hosts}`;
    case "aborted":
      return `rollout ${r.id} was aborted${r.reason ? ` (${r.reason})` : ""}${hosts}`;
    default:
      return stageLine(r);
  }
}

export function rolloutBars(r: Rollout): Bar[] {
  return waves(r).map((w, i) => ({
    label: waveLabel(r, i),
    counts: { total: w.targeted - w.offline, succeeded: w.succeeded, failed: w.failed, pending: w.pending },
    note: w.offline ? `${w.offline} offline` : undefined,
    text: w.released ? undefined : `not released yet (${w.targeted} host${w.targeted === 1 ? "" : "s"})`,
  }));
}

/** Follows rollout `id` for `--wait`: a bar per wave, the failing hosts, and its final state as the verdict. */
export function rolloutTracker(api: Api, app: string, first: Pick<Rollout, "id" | "version" | "waves">): Tracker {
  return {
    decidesEnd: true,
    describe: () => `rollout ${first.id} of ${first.version.name} in waves ${first.waves.map((w) => `${w}%`).join(", ")}`,
    async poll(): Promise<Progress> {
      const r = await api.json<Rollout>("GET", api.appPath(app, `/rollouts/${first.id}`));
      const hosts: HostState[] = failingHosts(r).map((f) => ({ uid: f.uid, state: "failed", reason: f.reason, outputTail: failingOutput(f) }));
      return { hosts, bars: rolloutBars(r), stage: stageLine(r), ...(isFinal(r) ? { end: { ok: r.state === "completed", message: endLine(r) } } : {}) };
    },
  };
}
