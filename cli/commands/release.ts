import { COMMON_HELP, EXIT, EXIT_HELP, UsageError, parseDuration, required, str, type Command, type Context, type Options, type Values } from "../context.js";
import { findVersion, resolveGroups, type Publish, type Version } from "../resources.js";
import { publishTracker, waitFor } from "../wait.js";

const WAIT_OPTIONS: Options = { groups: { type: "string" }, memo: { type: "string" }, wait: { type: "boolean" }, timeout: { type: "string" } };
/** Progressive rollouts (design.md, "Rollouts") come with their server routes; until then these flags are refused. */
const ROLLOUT_OPTIONS: Options = { waves: { type: "string" }, bake: { type: "string" }, "max-failures": { type: "string" } };

const WAIT_HELP = `  --groups a,b   publish to these groups (names or ids); without it, to every client
  --wait         follow the release: exit 0 when every targeted online client (heartbeat within
                 150 s) has reported SUCCESS for the version, 1 as soon as all have reported and
                 any FAILED (naming each failing host with its reason and output tail)
  --timeout D    how long --wait waits (default 30m; 90s, 15m, 1h); on timeout exit 4, or 1 if a
                 failure is already known
  --memo M       note stored with the version and the publish`;

const RELEASE_HELP = `Usage: edgeconf release --app APP [--name V5] [--memo M] [--groups a,b] [--wait] [--timeout 30m]

Creates a version from the draft (its files and the scripts' current versions) and publishes it.

  --app APP      the service (required)
  --name V5      the version's name (default: v%Y%m%d%H%M%S, UTC, chosen by the server)
${WAIT_HELP}

Progress is a bar on a terminal and one line per host and per change otherwise (CI logs).
Clients that come online during the wait join it; with no targeted online client there is
nothing to wait for (exit 0, said so).

Examples:
  edgeconf release --app nginx --name V5 --memo "TLS 1.3" --wait
  edgeconf release --app nginx --groups canary --wait --timeout 10m

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

function refuseRollouts(values: Values): void {
  const used = Object.keys(ROLLOUT_OPTIONS).filter((k) => values[k] !== undefined);
  if (used.length) throw new UsageError(`${used.map((k) => `--${k}`).join(", ")}: progressive rollouts are not available with this edgeconf yet; release without them`);
}

export const release: Command = {
  name: "release",
  summary: "create a version from the draft and publish it (--wait for the hosts)",
  help: RELEASE_HELP,
  options: { app: { type: "string" }, name: { type: "string" }, ...WAIT_OPTIONS, ...ROLLOUT_OPTIONS },
  async run(ctx, values) {
    const app = required(values, "app");
    refuseRollouts(values);
    parseDuration(str(values.timeout) ?? "30m", "timeout");
    const api = ctx.api();
    // Resolve groups first: an unknown group must not leave a version behind.
    const groupIds = await resolveGroups(api, str(values.groups));
    const memo = str(values.memo);
    const version = await api.json<Version>("POST", api.appPath(app, "/versions"), { ...(str(values.name) ? { name: str(values.name) } : {}), ...(memo ? { memo } : {}) });
    ctx.io.out(`created version ${version.name} (id ${version.id}, ${version.files.length} file${version.files.length === 1 ? "" : "s"})`);
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
