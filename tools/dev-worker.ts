/**
 * `npm run dev:worker`: the Worker in workerd (`wrangler dev --local`) against a local Postgres,
 * offline. R2 and the Durable Object are simulated by wrangler (state in .wrangler/state); Postgres
 * is reached by the Neon driver through tools/neon-ws-proxy.ts, allow-listed to DATABASE_URL's
 * address. Before starting it applies the migrations and, on an empty database, prints the first
 * admin token (as `npm start` does); the Worker itself never migrates.
 *
 *   DATABASE_URL   default postgres://postgres@127.0.0.1:5432/edgeconf (created when missing)
 *   PORT           default 8787
 *   EDGECONF_SECRET_KEY  default: kept in .edgeconf/worker-dev-secret.key
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { openNodeDatabase } from "../db/drivers/node";
import { ensureDatabase } from "../db/ensure-database";
import { systemActor } from "../functions/core/audit";
import { ensureFirstAdmin } from "../functions/core/credentials";
import { randomToken } from "../functions/core/crypto";
import { addressOf, startNeonWsProxy } from "./neon-ws-proxy";

const root = fileURLToPath(new URL("..", import.meta.url));
const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/edgeconf";
const port = Number(process.env.PORT ?? 8787);

/** The four variables that keep wrangler from calling out (no telemetry, no update check, no Request.cf fetch). */
const offline = { WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_HIDE_BANNER: "true" };

function secretKey(): string {
  if (process.env.EDGECONF_SECRET_KEY) return process.env.EDGECONF_SECRET_KEY;
  const file = path.join(root, ".edgeconf", "worker-dev-secret.key");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(path.dirname(file), { recursive: true });
  const key = randomToken(32);
  writeFileSync(file, key + "\n", { mode: 0o600 });
  return key;
}

const created = await ensureDatabase(databaseUrl);
if (created) console.log(`dev:worker: created database ${created}`);
const handle = await openNodeDatabase({ databaseUrl });
await handle.migrate();
const firstToken = await ensureFirstAdmin(handle.db, systemActor);
await handle.close();

const proxy = await startNeonWsProxy({ allow: [addressOf(databaseUrl)], log: console.error });
console.log(`dev:worker: neon-ws-proxy on ws://${proxy.url}/v1 → ${addressOf(databaseUrl)}`);
if (firstToken) console.log(`admin token: ${firstToken}`);

const vars = { DATABASE_URL: databaseUrl, EDGECONF_SECRET_KEY: secretKey(), NEON_WS_PROXY: proxy.url };
const wranglerBin = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const child = spawn(
  process.execPath,
  [
    wranglerBin,
    "dev",
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--persist-to",
    path.join(root, ".wrangler", "state"),
    "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ],
  { cwd: root, stdio: "inherit", env: { ...process.env, ...offline } },
);

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  child.kill(signal);
};
process.on("SIGINT", () => stop("SIGINT"));
process.on("SIGTERM", () => stop("SIGTERM"));
child.on("exit", async (code) => {
  await proxy.close();
  process.exit(code ?? 0);
});
