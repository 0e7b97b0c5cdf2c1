import { COMMON_HELP, EXIT, EXIT_HELP, parseDuration, required, str, type Command, type Context, type Options, type Values } from "../context.js";
import { findVersion, resolveGroups, type Publish, type Version } from "../resources.js";
import { ROLLOUT_HELP, ROLLOUT_OPTIONS, rolloutSettings, rolloutTracker, type Rollout, type RolloutSettings } from "../rollouts.js";
import { publishTracker, waitFor } from "../wait.js";

const WAIT_OPTIONS: Options = { groups: { type: "string" }, memo: { type: "string" }, wait: { type: "boolean" }, timeout: { type: "string" } };

const WAIT_HELP = `  --groups a,b   publish to these groups (names or ids); without it, to every client
  --wait         follow the release: exit 0 when every targeted online client (heartbeat within
                 150 s) has reported SUCCESS for the version, 1 as soon as all have reported and
                 any FAILED (naming each failing host with its reason and output tail)
  --timeout D    how long --wait waits (default 30m; 90s, 15m, 1h); on timeout exit 4, or 1 if a
                 failure is already known
  --memo M       note stored with the version and the publish`;

const RELEASE_HELP = `Usage: edgeconf release --app APP [--name V5] [--memo M] [--groups a,b] [--wait] [--timeout 30m]
                        [--waves 5,25,100 [--bake 60s] [--max-failures 0%] [--report-timeout 5m]
                         [--no-auto-rollback]]

Creates a version from the draft (its files and the scripts' current versions) and publishes it,
or with --waves starts a progressive rollout of it: wave by wave, each gated on its hosts' reports.

  --app APP      the service (required)
  --name V5      the version's name (default: v%Y%m%d%H%M%S, UTC, chosen by the server)
${WAIT_HELP}

${ROLLOUT_HELP}

Progress is a bar on a terminal and one line per host and per change otherwise (CI logs).
Clients that come online during the wait join it; with no targeted online client there is
nothing to wait for (exit 0, said so).

Examples:
  edgeconf release --app nginx --name V5 --memo "TLS 1.3" --wait
  edgeconf release --app nginx --groups canary --wait --timeout 10m
  edgeconf release --app nginx --waves 5,25,100 --bake 2m --max-failures 0% --wait --timeout 45m
  edgeconf release --app nginx --waves 10,100 --max-failures 5% --no-auto-rollback

${COMMON_HELP}

${EXIT_HELP}`;

const ROLLBACK_HELP = `Usage: edgeconf rollback --app APP --to V3 [--groups a,b] [--wait] [--timeout 30m]

Publishes an earlier version again (the history shows it as a rollback).

  --app APP      the service (required)
  --to V3        the version's name (or #ID for its id)
${WAIT_HELP}

Examples:
  edgeconf rollback --app nginx --to V3
  edgeconf rollback --app nginx --to V3 --groups canary --wait

${COMMON_HELP}

${EXIT_HELP}`;

/** Publishes `version` to the asked groups, then follows it when `--wait`. Shared by release and rollback. */
async function publishAndMaybeWait(ctx: Context, values: Values, app: string, version: Pick<Version, "id" | "name">, groupIds: number[], memo: string | undefined): Promise<number> {
  const api = ctx.api();
  const timeoutMs = parseDuration(str(values.timeout) ?? "30m", "timeout");
  const publish = await api.json<Publish>("POST", api.appPath(app, "/publishes"), { versionId: version.id, ...(groupIds.length ? { groups: groupIds } : {}), ...(memo ? { memo } : {}) });
  const to = publish.toAll ? "every client" : `groups ${publish.groups.map((g) => g.name).join(", ")}`;
  ctx.io.out(`published ${version.name} (version ${version.id}) to ${to} (publish ${publish.id})`);
  if (!values.wait) return EXIT.OK;
  return waitFor(ctx.io, publishTracker(api, app, publish), { timeoutMs });
}

/** Starts a rollout of `version`, then follows it when `--wait`. */
async function rolloutAndMaybeWait(ctx: Context, values: Values, app: string, version: Pick<Version, "id" | "name">, groupIds: number[], memo: string | undefined, settings: RolloutSettings): Promise<number> {
  const api = ctx.api();
  const timeoutMs = parseDuration(str(values.timeout) ?? "30m", "timeout");
  const body = { versionId: version.id, ...(groupIds.length ? { groups: groupIds } : {}), ...settings, ...(memo ? { memo } : {}) };
  const rollout = await api.json<Rollout>("POST", api.appPath(app, "/rollouts"), body);
  ctx.io.out(
    `started rollout ${rollout.id} of ${version.name} in waves ${settings.waves.map((w) => `${w}%`).join(", ")} (bake ${settings.bakeSeconds} s, max failures ${settings.maxFailurePercent}%, ` +
      `report timeout ${settings.reportTimeoutSeconds} s, ${settings.autoRollback ? "auto rollback" : "no auto rollback"})`,
  );
  if (!values.wait) return EXIT.OK;
  return waitFor(ctx.io, rolloutTracker(api, app, { id: rollout.id, waves: settings.waves, version: { id: version.id, name: version.name } }), { timeoutMs });
}

export const release: Command = {
  name: "release",
  summary: "create a version from the draft and publish it, or roll it out in waves (--wait for the hosts)",
  help: RELEASE_HELP,
  options: { app: { type: "string" }, name: { type: "string" }, ...WAIT_OPTIONS, ...ROLLOUT_OPTIONS },
  async run(ctx, values) {
    const app = required(values, "app");
    const settings = rolloutSettings(values);
    parseDuration(str(values.timeout) ?? "30m", "timeout");
    const api = ctx.api();
    // Resolve groups first: an unknown group must not leave a version behind.
    const groupIds = await resolveGroups(api, str(values.groups));
    const memo = str(values.memo);
    const version = await api.json<Version>("POST", api.appPath(app, "/versions"), { ...(str(values.name) ? { name: str(values.name) } : {}), ...(memo ? { memo } : {}) });
    ctx.io.out(`created version ${version.name} (id ${version.id}, ${version.files.length} file${version.files.length === 1 ? "" : "s"})`);
    if (settings) return rolloutAndMaybeWait(ctx, values, app, version, groupIds, memo, settings);
    return publishAndMaybeWait(ctx, values, app, version, groupIds, memo);
  },
};

export const rollback: Command = {
  name: "rollback",
  summary: "publish an earlier version again",
  help: ROLLBACK_HELP,
  options: { app: { type: "string" }, to: { type: "string" }, ...WAIT_OPTIONS },
  async run(ctx, values) {
    const app = required(values, "app");
    const to = required(values, "to");
    parseDuration(str(values.timeout) ?? "30m", "timeout");
    const api = ctx.api();
    const groupIds = await resolveGroups(api, str(values.groups));
    const version = await findVersion(api, app, to);
    return publishAndMaybeWait(ctx, values, app, version, groupIds, str(values.memo) ?? `rollback to ${version.name}`);
  },
};
