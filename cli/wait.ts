/**
 * `--wait`: follows a publish until every targeted online client has reported for its version.
 * A Tracker says where things stand; `waitFor` polls it, shows progress (a bar on a terminal,
 * plain lines in a CI log) and turns the end into an exit code. Rollouts bring their own Tracker.
 */
import cliProgress from "cli-progress";
import type { Api } from "./api.js";
import { EXIT, type Output } from "./context.js";
import { allClients, failureReason, type Client, type Publish } from "./resources.js";

export type HostState = { uid: string; state: "succeeded" | "failed" | "pending"; reason?: string; outputTail?: string };
export type Counts = { total: number; succeeded: number; failed: number; pending: number };
/** One bar of progress (a publish has one; a rollout one per wave). */
export type Bar = { label: string; counts: Counts; note?: string; /** Said instead of the counts (a wave not released yet). */ text?: string };
export type Progress = {
  /** Hosts known one by one: a publish's targets; a rollout's failing hosts. */
  hosts: HostState[];
  /** Bars to show; default one bar counting `hosts`. */
  bars?: Bar[];
  /** Where things stand in a line (a rollout's state and wave), printed when it changes. */
  stage?: string;
  /** Set when the tracker knows the end by itself (a rollout's final state), with its verdict. */
  end?: { ok: boolean; message: string };
};

export interface Tracker {
  /** What is being waited for, for the first line: "V5 to 3 groups". */
  describe(): string;
  poll(): Promise<Progress>;
  /**
   * True when only the tracker's `end` settles the wait (a rollout: failures under its threshold
   * are allowed, and a wave with no pending host is not the end). Otherwise the wait ends when no
   * host is pending, failing if any host failed.
   */
  decidesEnd?: boolean;
}

/**
 * A publish's targets are the clients online now whose target (as the feed would answer) is the
 * version; their state comes from their last event, counted only if made after the publish (an old
 * FAILED of the same version is history, not this release), or from their current version.
 */
export function publishTracker(api: Api, app: string, publish: Publish): Tracker {
  const since = Date.parse(publish.createdAt);
  const versionId = publish.version.id;
  return {
    describe: () => `${publish.version.name} to ${publish.toAll ? "every client" : `groups ${publish.groups.map((g) => g.name).join(", ")}`}`,
    async poll() {
      const clients = await allClients(api, app, { online: true });
      return { hosts: clients.filter((c) => c.online && c.targetRelease?.id === versionId).map((c) => hostState(c, versionId, since)) };
    },
  };
}

function hostState(c: Client, versionId: number, since: number): HostState {
  const ev = c.lastEvent;
  const fresh = ev !== null && ev.release?.id === versionId && Date.parse(ev.createdAt) >= since;
  if (fresh && ev.status === "FAILED") {
    const tail = (ev.preHook?.exitCode ? ev.preHook : ev.postHook)?.outputTail ?? "";
    return { uid: c.uid, state: "failed", reason: failureReason(ev), outputTail: tail };
  }
  if (c.currentRelease?.id === versionId) return { uid: c.uid, state: "succeeded" };
  return { uid: c.uid, state: "pending" };
}

const count = (hosts: HostState[]): Counts => ({
  total: hosts.length,
  succeeded: hosts.filter((h) => h.state === "succeeded").length,
  failed: hosts.filter((h) => h.state === "failed").length,
  pending: hosts.filter((h) => h.state === "pending").length,
});
export const summary = (c: Counts) => `${c.succeeded}/${c.total} succeeded, ${c.failed} failed, ${c.pending} pending`;
const barsOf = (p: Progress): Bar[] => p.bars ?? [{ label: "progress", counts: count(p.hosts) }];
export const barText = (b: Bar) => b.text ?? `${summary(b.counts)}${b.note ? ` (${b.note})` : ""}`;

/** Shows progress: bars redrawn in place on a terminal, else one line per change. */
interface View {
  update(p: Progress): void;
  stop(): void;
}

function barView(io: Output): View {
  const multi = new cliProgress.MultiBar(
    { format: "{label} {bar} {summary}", stream: io.stdout, hideCursor: true, clearOnComplete: false, barsize: 30, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  const bars: cliProgress.SingleBar[] = [];
  let stage: string | undefined;
  return {
    update(p) {
      if (p.stage && p.stage !== stage) multi.log(`${p.stage}\n`);
      stage = p.stage;
      const wanted = barsOf(p);
      const width = Math.max(...wanted.map((b) => b.label.length));
      wanted.forEach((b, i) => {
        const payload = { label: b.label.padEnd(width), summary: barText(b) };
        const total = Math.max(b.counts.total, 1);
        if (!bars[i]) bars[i] = multi.create(total, 0, payload);
        bars[i].setTotal(total);
        bars[i].update(b.counts.succeeded + b.counts.failed, payload);
      });
    },
    stop: () => multi.stop(),
  };
}

function lineView(io: Output): View {
  const last = new Map<string, string>();
  return {
    update(p) {
      if (p.stage && last.get("\u0000stage") !== p.stage) io.out(p.stage);
      if (p.stage) last.set("\u0000stage", p.stage);
      for (const h of p.hosts) {
        if (last.get(h.uid) === h.state) continue;
        last.set(h.uid, h.state);
        if (h.state !== "pending") io.out(`${h.uid}: ${h.state === "succeeded" ? "SUCCESS" : `FAILED: ${h.reason}`}`);
      }
      for (const b of barsOf(p)) {
        const key = `\u0000bar ${b.label}`;
        const s = barText(b);
        if (last.get(key) !== s) io.out(`${b.label}: ${s}`);
        last.set(key, s);
      }
    },
    stop: () => undefined,
  };
}

export type WaitOptions = { timeoutMs: number; intervalMs?: number; sleep?: (ms: number) => Promise<void> };

/**
 * Polls until the tracker's `end` (exit 0 when ok, else 1) or, for a tracker that does not decide
 * the end, until every targeted host has reported (exit 0 all succeeded, 1 any failed); on the
 * timeout exit 4 (1 for a publish if a failure is already known). Failing hosts are named with
 * their reason and the last lines of their hook output.
 */
export async function waitFor(io: Output, tracker: Tracker, opts: WaitOptions): Promise<number> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = Date.now() + opts.timeoutMs;
  io.out(`waiting for ${tracker.describe()} (timeout ${Math.round(opts.timeoutMs / 1000)} s)`);
  const view = io.isTTY ? barView(io) : lineView(io);
  let p: Progress;
  let timedOut = false;
  // Ctrl-C: put the terminal back (the bar hides the cursor) before leaving.
  const interrupt = () => {
    view.stop();
    process.exit(130);
  };
  process.once("SIGINT", interrupt);
  try {
    for (;;) {
      p = await tracker.poll();
      view.update(p);
      if (p.end || (!tracker.decidesEnd && count(p.hosts).pending === 0)) break;
      if (Date.now() >= deadline) {
        timedOut = true;
        break;
      }
      await sleep(Math.min(opts.intervalMs ?? 1000, Math.max(0, deadline - Date.now())));
    }
  } finally {
    process.off("SIGINT", interrupt);
    view.stop();
  }
  const c = count(p.hosts);
  const failed = p.hosts.filter((h) => h.state === "failed");
  for (const h of failed) {
    io.err(`FAILED ${h.uid}: ${h.reason}`);
    for (const line of (h.outputTail ?? "").trimEnd().split("\n").slice(-5).filter(Boolean)) io.err(`    | ${line}`);
  }
  if (p.end) {
    (p.end.ok ? io.out : io.err)(p.end.message);
    return p.end.ok ? EXIT.OK : EXIT.FAILED;
  }
  if (timedOut && tracker.decidesEnd) {
    io.err(`timed out${p.stage ? `: ${p.stage}` : ""}`);
    return EXIT.TIMEOUT;
  }
  if (timedOut) {
    const pending = p.hosts.filter((h) => h.state === "pending").map((h) => h.uid);
    io.err(`timed out: ${summary(c)}; no report yet from ${pending.slice(0, 20).join(", ")}${pending.length > 20 ? ", ..." : ""}`);
    return failed.length ? EXIT.FAILED : EXIT.TIMEOUT;
  }
  if (c.total === 0) {
    io.out(`no online client is targeted by ${tracker.describe()}: nothing to wait for`);
    return EXIT.OK;
  }
  if (failed.length) {
    io.err(`release failed on ${failed.length} of ${c.total} hosts: ${failed.map((h) => h.uid).join(", ")}`);
    return EXIT.FAILED;
  }
  io.out(`release succeeded on all ${c.total} targeted online hosts`);
  return EXIT.OK;
}
