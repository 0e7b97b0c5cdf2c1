import { COMMON_HELP, EXIT, EXIT_HELP, UsageError, parseDuration, required, str, type Command, type Context } from "../context.js";
import { endLine, failingHosts, failingOutput, findRollout, isFinal, rolloutBars, rolloutTracker, stageLine, type Rollout } from "../rollouts.js";
import { barText, waitFor } from "../wait.js";

const ACTIONS = ["status", "pause", "resume", "abort", "advance"] as const;
type Action = (typeof ACTIONS)[number];

const HELP = `Usage: edgeconf rollout status|pause|resume|abort|advance --app APP [--id N]
       edgeconf rollout abort --app APP [--id N] [--rollback]
       edgeconf rollout status --app APP [--id N] [--json] [--wait] [--timeout 30m]

Shows or steers a progressive rollout (started with: edgeconf release --waves ...). Without --id,
the service's newest rollout.

  status     its state, settings, per wave targeted / succeeded / failed / pending, and every
             failing host with its reason and the last lines of its hook output
  pause      no further wave starts (hosts already released keep the version)
  resume     a paused rollout goes on where it stopped; a halted one is judged again (it halts
             again unless the failing hosts have since succeeded)
  abort      ends it here; released hosts keep the version, or with --rollback get back the
             version they had before (state rolled_back)
  advance    starts the next wave now, without waiting for the current one's reports or bake

  --app APP      the service (required)
  --id N         the rollout's id (default: the service's newest rollout)
  --json         status: print the rollout object as JSON
  --wait         status: follow the rollout until it ends (exit codes as for release --wait)
  --timeout D    how long --wait waits (default 30m); on timeout exit 4

Examples:
  edgeconf rollout status --app nginx
  edgeconf rollout pause --app nginx
  edgeconf rollout advance --app nginx --id 7
  edgeconf rollout abort --app nginx --rollback
  edgeconf rollout status --app nginx --wait --timeout 1h

${COMMON_HELP}

${EXIT_HELP} A control the rollout's state does not allow (e.g. resume a completed one) is
refused by the server: exit 3 with its reason.`;

/** The rollout in lines: state, settings, one line per wave, failing hosts. */
function describe(r: Rollout): string[] {
  const lines = [
    stageLine(r),
    `settings: waves ${r.waves.map((w) => `${w}%`).join(", ")}, bake ${r.bakeSeconds} s, max failures ${r.maxFailurePercent}%, report timeout ${r.reportTimeoutSeconds} s, ${r.autoRollback ? "auto rollback" : "no auto rollback"}`,
  ];
  for (const b of rolloutBars(r)) lines.push(`  ${b.label}: ${barText(b)}`);
  const failing = failingHosts(r);
  if (failing.length) lines.push("failing hosts:");
  for (const f of failing) {
    lines.push(`  ${f.uid}: ${f.reason}`);
    for (const line of failingOutput(f).trimEnd().split("\n").slice(-5).filter(Boolean)) lines.push(`    | ${line}`);
  }
  if (isFinal(r)) lines.push(endLine(r));
  return lines;
}

async function statusOf(ctx: Context, app: string, r: Rollout, values: Record<string, unknown>): Promise<number> {
  if (values.json) {
    ctx.io.out(JSON.stringify(r, null, 2));
    return EXIT.OK;
  }
  for (const line of describe(r)) ctx.io.out(line);
  if (!values.wait || isFinal(r)) return EXIT.OK;
  return waitFor(ctx.io, rolloutTracker(ctx.api(), app, r), { timeoutMs: parseDuration(str(values.timeout as string) ?? "30m", "timeout") });
}

export const rollout: Command = {
  name: "rollout",
  summary: "show, pause, resume, abort or advance a progressive rollout",
  help: HELP,
  positionals: ["ACTION"],
  options: { app: { type: "string" }, id: { type: "string" }, json: { type: "boolean" }, wait: { type: "boolean" }, timeout: { type: "string" }, rollback: { type: "boolean" } },
  async run(ctx, values, positionals) {
    const action = positionals[0] as Action | undefined;
    if (!action) throw new UsageError(`missing the action: one of ${ACTIONS.join(", ")}`);
    if (!ACTIONS.includes(action)) throw new UsageError(`unknown action "${action}": one of ${ACTIONS.join(", ")}`);
    const app = required(values, "app");
    if (action !== "status") {
      const only = ["json", "wait", "timeout"].filter((k) => values[k] !== undefined);
      if (only.length) throw new UsageError(`${only.map((k) => `--${k}`).join(", ")}: only with 'rollout status'`);
    }
    if (values.rollback && action !== "abort") throw new UsageError("--rollback: only with 'rollout abort'");
    parseDuration(str(values.timeout) ?? "30m", "timeout");
    const api = ctx.api();
    const r = await findRollout(api, app, str(values.id));
    if (action === "status") return statusOf(ctx, app, r, values);
    const after = await api.json<Rollout>("POST", api.appPath(app, `/rollouts/${r.id}/${action}`), action === "abort" && values.rollback ? { rollback: true } : undefined);
    ctx.io.out(`${action}: rollout ${r.id} was ${r.state.replace("_", " ")}, now ${after.state.replace("_", " ")}`);
    ctx.io.out(stageLine(after));
    return EXIT.OK;
  },
};
