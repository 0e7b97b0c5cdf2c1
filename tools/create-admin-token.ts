/**
 * `npm run create-admin-token [-- --name NAME] [-- --first]`: makes an admin token in the database
 * at DATABASE_URL (or the embedded data folder) and prints it once; only its SHA-256 is stored.
 * For a Worker deployment, which cannot print a token at first start. `--first` only creates one
 * when no admin token exists yet (prints nothing and exits 0 otherwise).
 * The database must be migrated first (`npm run db:migrate`).
 */
import { openNodeDatabase } from "../db/drivers/node";
import { systemActor } from "../functions/core/audit";
import { createCredential, ensureFirstAdmin } from "../functions/core/credentials";
import { PRIVATE_UMASK } from "../functions/node/data-dir";
import { claimDataDir, DataDirLocked } from "../functions/node/data-lock";

process.umask(PRIVATE_UMASK);

const args = process.argv.slice(2);
const nameAt = args.indexOf("--name");
const name = nameAt >= 0 ? args[nameAt + 1] : `admin-${new Date().toISOString().slice(0, 10)}`;
if (!name || name.startsWith("--")) {
  console.error("usage: npm run create-admin-token -- [--name NAME] [--first]");
  process.exit(2);
}
const dataDir = process.env.EDGECONF_DATA_DIR ?? ".edgeconf";
// The embedded database is single-process: while a server holds the folder, this refuses, naming it.
if (!process.env.DATABASE_URL) {
  try {
    claimDataDir(dataDir, "create-admin-token");
  } catch (err) {
    console.error(err instanceof DataDirLocked ? err.message : `cannot use the data folder ${dataDir}: ${(err as Error).message}`);
    process.exit(1);
  }
}
const handle = await openNodeDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir });
try {
  if (args.includes("--first")) {
    const token = await ensureFirstAdmin(handle.db, systemActor);
    if (token) console.log(token);
    else console.error("an admin token already exists; none created");
  } else {
    const created = await createCredential(handle.db, systemActor, { name, kind: "admin" });
    console.log(created.token);
    console.error(`admin token "${created.name}" (id ${created.id}) created; it is shown once`);
  }
} catch (err) {
  const e = err as Error & { cause?: { message?: string } };
  const msg = e.cause?.message ?? e.message;
  console.error(/relation .* does not exist/.test(msg) ? `the database is not migrated: run npm run db:migrate first (${msg})` : msg);
  process.exitCode = 1;
} finally {
  await handle.close();
}
