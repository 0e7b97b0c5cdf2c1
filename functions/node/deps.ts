import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { openNodeDatabase, type NodeDatabase } from "../../db/drivers/node";
import { fsBlobStore } from "../adapters/fs-blobs";
import { pgNotifier } from "../adapters/pg-notifier";
import { s3BlobStore, type S3BlobConfig } from "../adapters/s3-blobs";
import { inProcessScheduler } from "../adapters/in-process-scheduler";
import { randomToken } from "../core/crypto";
import { evaluateServiceRollouts, resumeRunningRollouts } from "../core/rollouts";
import { sightingsFor } from "../core/sightings";
import { defaultLimits, type AppDeps, type AppLimits, type BlobStore, type ReleaseNotifier } from "../core/ports";

export type NodeConfig = {
  /** Postgres URL; without it, PGlite in `dataDir`. */
  databaseUrl?: string;
  /** Data folder: PGlite files, local blobs, the secret key. "memory://" keeps the database in memory. */
  dataDir: string;
  /** Blob folder; defaults to `{dataDir}/blobs`. */
  blobDir?: string;
  secretKey?: string;
  maxFileBytes?: number;
  /** Other limits and retention settings (defaults: `defaultLimits`). */
  limits?: Partial<AppLimits>;
  /** Blobs in an S3 bucket instead of the blob folder. */
  s3?: S3BlobConfig;
  /** Overrides for tests and other blob/notifier back ends. */
  blobs?: BlobStore;
  notifier?: ReleaseNotifier;
  /** The clock (default: the system's); tests move it to cross expiry windows. */
  clock?: () => Date;
};

export type NodeRuntime = { deps: AppDeps; database: NodeDatabase; close(): Promise<void> };

/** The secret key lives outside the database: EDGECONF_SECRET_KEY, else a file in the data folder. */
function loadSecretKey(dataDir: string, preset?: string): string {
  if (preset) return preset;
  if (dataDir === "memory://") return randomToken(32);
  const file = path.join(dataDir, "secret.key");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(dataDir, { recursive: true });
  const key = randomToken(32);
  writeFileSync(file, key + "\n", { mode: 0o600 });
  return key;
}

/**
 * Creates and migrates a new embedded database in a child process (`db/migrate.ts`) that exits
 * after: PGlite keeps the memory it took to create the database (~830 MB resident against ~260 MB
 * when it opens an existing one), and only a process that ends gives it back (issue 11).
 */
async function createEmbeddedDatabase(dataDir: string): Promise<void> {
  const script = fileURLToPath(new URL("../../db/migrate.ts", import.meta.url));
  const env: NodeJS.ProcessEnv = { ...process.env, EDGECONF_DATA_DIR: dataDir };
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, [...process.execArgv, script], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", resolve);
  });
  if (code !== 0) throw new Error(`creating the embedded database failed (exit ${code}): ${out.trim().split("\n").slice(-3).join(" | ")}`);
}

/** Builds the Node runtime: database (migrated), blobs, notifier. */
export async function buildNodeRuntime(cfg: NodeConfig): Promise<NodeRuntime> {
  const embeddedOnDisk = !cfg.databaseUrl && cfg.dataDir !== "memory://";
  if (embeddedOnDisk && !existsSync(path.join(cfg.dataDir, "pg", "PG_VERSION")) && process.execArgv.some((a) => a.includes("tsx"))) await createEmbeddedDatabase(cfg.dataDir);
  const database = await openNodeDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir === "memory://" ? "memory://" : path.join(cfg.dataDir) });
  await database.migrate();
  const blobDir = cfg.blobDir ?? (cfg.dataDir === "memory://" ? path.join(process.cwd(), ".edgeconf-test-blobs", randomToken(6)) : path.join(cfg.dataDir, "blobs"));
  // LISTEN/NOTIFY on Postgres and on PGlite alike: several instances on one database all wake.
  const pg = cfg.notifier ? undefined : await pgNotifier(database);
  const notifier = cfg.notifier ?? pg!;
  const clock = cfg.clock ?? (() => new Date());
  const scheduler = inProcessScheduler(clock);
  const deps: AppDeps = {
    db: database.db,
    blobs: cfg.blobs ?? (cfg.s3 ? s3BlobStore(cfg.s3) : fsBlobStore(blobDir)),
    notifier,
    clock,
    scheduler,
    limits: { ...defaultLimits, ...cfg.limits, ...(cfg.maxFileBytes ? { maxFileBytes: cfg.maxFileBytes } : {}) },
    secretKey: loadSecretKey(cfg.dataDir, cfg.secretKey),
  };
  scheduler.attach((serviceId) => evaluateServiceRollouts(deps, serviceId));
  // After a restart, running rollouts are judged again at once, which re-arms their deadlines.
  await resumeRunningRollouts(deps);
  return {
    deps,
    database,
    async close() {
      await scheduler.close();
      // Polls noted but not yet written (client sightings, token uses) go out before the database closes.
      await sightingsFor(deps).flush(deps.db);
      await pg?.close();
      await database.close();
    },
  };
}
