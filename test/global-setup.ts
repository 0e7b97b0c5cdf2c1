/**
 * Run once before all test files (vitest `globalSetup`), in the main process; workers and the
 * processes they start inherit the environment set here.
 *
 * - Temp files on tmpfs: when TMPDIR is not set and /dev/shm is a writable folder with room
 *   (EDGECONF_TEST_TMPFS=0 turns this off), every test's temp folder (agent temp_dirs and caches,
 *   server data folders, embedded databases) is made in a folder there, removed at the end. The
 *   same files and syscalls as on a disk, but fsync is free: the agent's apply and PGlite sync
 *   often, and on a loaded disk that was much of their time.
 * - One embedded database migrated by `db/migrate.ts`, the script a server runs the first time it
 *   starts on an empty data folder (functions/node/deps.ts, createEmbeddedDatabase). Servers and
 *   test apps start from a copy of it (test/helpers/template.ts) instead of creating and migrating a
 *   database each (~4 s of CPU and ~800 MB each); the tests of that first start use empty folders.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { access, constants, mkdtemp, rm, statfs } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TEMPLATE_ENV } from "./helpers/template";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Room a run needs on tmpfs (data folders of ~40 MB each, several at once, some kept until the end). */
const TMPFS_NEEDED_BYTES = 2 * 1024 ** 3;

/** A folder on /dev/shm for TMPDIR; none when TMPDIR is set, EDGECONF_TEST_TMPFS=0, or /dev/shm is missing or small (a container's 64 MB). */
async function tmpfsRoot(): Promise<string | undefined> {
  if (process.env.TMPDIR || process.env.EDGECONF_TEST_TMPFS === "0") return undefined;
  try {
    await access("/dev/shm", constants.W_OK);
    const fs = await statfs("/dev/shm");
    if (fs.bavail * fs.bsize < TMPFS_NEEDED_BYTES) return undefined;
    return await mkdtemp("/dev/shm/edgeconf-test-");
  } catch {
    return undefined;
  }
}

/** `db/migrate.ts` on an empty folder, under the server's umask (owner-only files, as node.ts sets before it). */
function migrateInto(dataDir: string): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, EDGECONF_DATA_DIR: dataDir };
  delete env.DATABASE_URL;
  const child = spawn("/bin/sh", ["-c", 'umask 077 && exec "$0" --import tsx db/migrate.ts', process.execPath], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  return new Promise((resolve, reject) =>
    child.once("exit", (code) => (code === 0 && existsSync(path.join(dataDir, "pg", "PG_VERSION")) ? resolve() : reject(new Error(`test template database: db/migrate.ts exited ${code}:\n${out}`)))),
  );
}

export default async function setup(): Promise<() => Promise<void>> {
  const shm = await tmpfsRoot();
  if (shm) process.env.TMPDIR = shm;
  const work = shm ?? (await mkdtemp(path.join(os.tmpdir(), "edgeconf-test-setup-")));
  const template = path.join(work, "template-data");
  await migrateInto(template);
  process.env[TEMPLATE_ENV] = template;
  return async () => {
    await rm(work, { recursive: true, force: true });
  };
}
