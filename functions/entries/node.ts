/** Node entry: embedded default (PGlite + local blobs) or self-hosted (DATABASE_URL, S3). */
import { createServer as createNetServer, type AddressInfo } from "node:net";
import type { Server } from "node:http";
import { z } from "zod";
import { existsSync } from "node:fs";
import { createApp } from "../app";
import { systemActor } from "../core/audit";
import { ensureFirstAdmin } from "../core/credentials";
import { DomainError } from "../core/errors";
import { causeFields, causeText, log, logfmtLine } from "../core/log";
import { privateDataDir, PRIVATE_UMASK } from "../node/data-dir";
import { claimDataDir, DataDirLocked } from "../node/data-lock";
import type { AppLimits } from "../core/ports";
import { pruneAll, retentionFromEnv } from "../core/retention";
import { buildNodeRuntime } from "../node/deps";
import { createNodeServer } from "../node/serve";
import { ensureDatabase } from "../../db/ensure-database";

// Before anything creates a file: the data folder (PGlite's files, blobs, the key) is owner-only.
process.umask(PRIVATE_UMASK);

/** `NAME=` (empty, as env files and compose write an unset value) counts as unset, not as 0 or "". */
const unsetWhenEmpty = <T extends z.ZodTypeAny>(schema: T) => z.preprocess((v) => (v === "" ? undefined : v), schema);

const parsed = z
  .object({
    HOST: unsetWhenEmpty(z.string().default("127.0.0.1")),
    PORT: unsetWhenEmpty(z.coerce.number().int().min(0).max(65535).default(8080)),
    // Optional second listener for the console and admin API; PORT then serves the agents' feed only.
    EDGECONF_API_PORT: unsetWhenEmpty(z.coerce.number().int().min(0).max(65535).optional()),
    EDGECONF_API_HOST: unsetWhenEmpty(z.string().min(1).optional()),
    EDGECONF_DATA_DIR: z.string().default(".edgeconf"),
    DATABASE_URL: z.string().optional(),
    EDGECONF_ADMIN_TOKEN: z.string().min(16).optional(),
    EDGECONF_SECRET_KEY: z.string().min(16).optional(),
    EDGECONF_MAX_FILE_BYTES: z.coerce.number().int().positive().optional(),
    // Slow clients: the whole request (headers and body) must arrive within these; see README "Limits and retention".
    EDGECONF_HEADERS_TIMEOUT_SECONDS: z.coerce.number().positive().max(3600).default(20),
    EDGECONF_REQUEST_TIMEOUT_SECONDS: z.coerce.number().positive().max(3600).default(120),
    S3_ENDPOINT: z.string().url().optional(),
    S3_BUCKET: z.string().min(1).optional(),
    S3_ACCESS_KEY_ID: z.string().optional(),
    S3_SECRET_ACCESS_KEY: z.string().optional(),
    S3_REGION: z.string().optional(),
    S3_FORCE_PATH_STYLE: z.enum(["true", "false", "1", "0"]).optional(),
  })
  .safeParse(process.env);

/** Start-up failures a user can fix get one line saying what to change, not a stack trace. */
function fail(message: string): never {
  console.error(logfmtLine("ERROR", message));
  process.exit(1);
}
if (!parsed.success) fail(`${parsed.error.issues[0].path.join(".")}: ${parsed.error.issues[0].message}`);
const env = parsed.data;
if (env.EDGECONF_API_HOST !== undefined && env.EDGECONF_API_PORT === undefined)
  fail("EDGECONF_API_HOST: set EDGECONF_API_PORT too; without it the console and the admin API listen on HOST:PORT with the feed");
if (env.EDGECONF_API_PORT !== undefined && env.EDGECONF_API_PORT !== 0 && env.EDGECONF_API_PORT === env.PORT)
  fail(`EDGECONF_API_PORT: must differ from PORT (${env.PORT}): the API port is the console's and the admin API's own listener`);
let retention: Partial<AppLimits> = {};
try {
  retention = retentionFromEnv(process.env);
} catch (err) {
  fail((err as Error).message);
}

const started = performance.now();

/** The one line for a listener that cannot listen, naming the setting to change. */
function listenFailure(err: Error & { code?: string }, host: string, port: number, setting: string): never {
  if (err.code === "EADDRINUSE") fail(`port ${port} on ${host} is already in use: stop the other server or set ${setting}`);
  fail(`cannot listen on ${host}:${port}: ${err.message}`);
}

/**
 * Fails at once when a port is taken or cannot be had, before the database is opened (which may
 * take seconds, or create a database for nothing). A port taken in between still fails at listen,
 * with the same line. Port 0 (any free port) needs no check.
 */
async function assertCanListen(host: string, port: number, setting: string): Promise<void> {
  if (port === 0) return;
  const probe = createNetServer();
  await new Promise<void>((resolve) => {
    probe.once("error", (err) => listenFailure(err, host, port, setting));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
await assertCanListen(env.HOST, env.PORT, "PORT");
if (env.EDGECONF_API_PORT !== undefined) await assertCanListen(env.EDGECONF_API_HOST ?? env.HOST, env.EDGECONF_API_PORT, "EDGECONF_API_PORT");

// The embedded database is single-process: this process takes the folder's lock, or stops here naming the holder.
try {
  if (!env.DATABASE_URL) claimDataDir(env.EDGECONF_DATA_DIR, "npm start");
  else if (existsSync(env.EDGECONF_DATA_DIR)) {
    const t = privateDataDir(env.EDGECONF_DATA_DIR);
    if (t.folders || t.files) log("WARN", "data folder was readable by others: made owner-only (0700 folders, 0600 files)", { dir: env.EDGECONF_DATA_DIR, ...t });
  }
} catch (err) {
  fail(err instanceof DataDirLocked ? err.message : `cannot make the data folder ${env.EDGECONF_DATA_DIR} private: ${causeText(err)}`);
}

// A DATABASE_URL naming a database the server lacks: create it (as dev:worker and db:migrate do).
if (env.DATABASE_URL) {
  const created = await ensureDatabase(env.DATABASE_URL).catch((err: unknown) => fail(`cannot open the database at DATABASE_URL: ${causeText(err)}`));
  if (created) log("INFO", "created the database named by DATABASE_URL", { database: created });
}

const runtime = await buildNodeRuntime({
  databaseUrl: env.DATABASE_URL,
  dataDir: env.EDGECONF_DATA_DIR,
  secretKey: env.EDGECONF_SECRET_KEY,
  maxFileBytes: env.EDGECONF_MAX_FILE_BYTES,
  limits: retention,
  s3: env.S3_BUCKET
    ? {
        endpoint: env.S3_ENDPOINT,
        bucket: env.S3_BUCKET,
        accessKeyId: env.S3_ACCESS_KEY_ID,
        secretAccessKey: env.S3_SECRET_ACCESS_KEY,
        region: env.S3_REGION,
        forcePathStyle: env.S3_FORCE_PATH_STYLE === undefined ? undefined : env.S3_FORCE_PATH_STYLE === "true" || env.S3_FORCE_PATH_STYLE === "1",
      }
    : undefined,
}).catch((err: unknown) =>
  fail(env.DATABASE_URL ? `cannot open the database at DATABASE_URL: ${causeText(err)}` : `cannot open the embedded database in ${env.EDGECONF_DATA_DIR}: ${causeText(err)}`),
);
const firstToken = await ensureFirstAdmin(runtime.deps.db, systemActor, env.EDGECONF_ADMIN_TOKEN).catch((err: unknown) => {
  if (!(err instanceof DomainError)) throw err;
  log("WARN", err.message); // e.g. the preset was revoked: the feed keeps serving agents meanwhile
  return null;
});
// With EDGECONF_API_PORT the console and admin API get a listener of their own (README "Two
// listeners"): its own accept queue, so an operator's publish is not queued behind a reconnecting
// fleet's connections, and its own address, so the fleet's network never reaches an admin route.
const apiPort = env.EDGECONF_API_PORT;
const app = createApp(runtime.deps, { surface: apiPort === undefined ? "all" : "feed" });

// The timeouts cover receiving a request, not answering it: a long-poll is received at once and
// then held (up to 60 s) untouched; a body trickled a byte at a time is cut with 408.
// Held release polls are served by the fast path of node/feed-long-poll.ts, the rest by the app.
const serverOptions = {
  headersTimeout: Math.min(env.EDGECONF_HEADERS_TIMEOUT_SECONDS, env.EDGECONF_REQUEST_TIMEOUT_SECONDS) * 1000,
  requestTimeout: env.EDGECONF_REQUEST_TIMEOUT_SECONDS * 1000,
  // How often Node looks for expired requests (its default, 30 s, would let a trickle run that much longer).
  connectionsCheckingInterval: Math.min(2000, env.EDGECONF_HEADERS_TIMEOUT_SECONDS * 500),
};
const server = createNodeServer(app, runtime.deps, serverOptions, { feedOnly: apiPort !== undefined });
const apiServer = apiPort === undefined ? null : createNodeServer(createApp(runtime.deps), runtime.deps, serverOptions);

/** Listens, or stops the process with one line naming the setting to change. Resolves the listener's URL. */
function listen(s: Server, host: string, port: number, setting: string): Promise<string> {
  s.once("error", (err: Error & { code?: string }) => listenFailure(err, host, port, setting));
  // No idle timeout on sockets: a held long-poll sends nothing for up to 60 s.
  s.setTimeout(0);
  // Thousands of agents reconnect at once after a restart or a publish: a deep accept queue keeps them from being reset.
  return new Promise((resolve) =>
    s.listen({ host, port, backlog: 4096 }, () => resolve(`http://${host.includes(":") ? `[${host}]` : host}:${(s.address() as AddressInfo).port}`)),
  );
}
const url = await listen(server, env.HOST, env.PORT, "PORT");
const apiUrl = apiServer ? await listen(apiServer, env.EDGECONF_API_HOST ?? env.HOST, apiPort!, "EDGECONF_API_PORT") : url;
const store = env.DATABASE_URL ? "postgres (DATABASE_URL)" : `pglite (${env.EDGECONF_DATA_DIR})`;
const blobs = env.S3_BUCKET ? `s3 (${env.S3_ENDPOINT ?? "aws"}/${env.S3_BUCKET})` : "folder";
console.log(`edgeconf listening on ${url} database=${store} blobs=${blobs} started_ms=${Math.round(performance.now() - started)}`);
if (apiServer) console.log(`edgeconf api listening on ${apiUrl} (the console and admin API; ${url} serves the agents' feed only)`);
console.log(`console: ${apiUrl}/`);
console.log(`api reference: ${apiUrl}/api/v1/reference`);
// A preset token is the operator's own secret: say it was taken, never echo it.
if (firstToken) console.log(firstToken === env.EDGECONF_ADMIN_TOKEN ? "admin token: EDGECONF_ADMIN_TOKEN taken as the first admin token (not printed)" : `admin token: ${firstToken}`);

// Retention (core/retention.ts): every hour, and once at start; writes also prune now and then.
const prune = () =>
  pruneAll(runtime.deps.db, runtime.deps.limits, runtime.deps.clock()).then(
    (n) => n.events + n.clients > 0 && log("INFO", "retention prune", { events: n.events, clients: n.clients }),
    (err: unknown) => log("WARN", "retention prune failed", causeFields(err)),
  );
const pruneTimer = setInterval(prune, 60 * 60 * 1000);
pruneTimer.unref();
void prune();

const stop = async () => {
  clearInterval(pruneTimer);
  server.close();
  apiServer?.close();
  await runtime.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
