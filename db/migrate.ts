/** `npm run db:migrate`: applies db/migrations to DATABASE_URL (or the embedded data folder). */
import { openNodeDatabase } from "./drivers/node";
import { ensureDatabase } from "./ensure-database";

const created = process.env.DATABASE_URL ? await ensureDatabase(process.env.DATABASE_URL) : null;
if (created) console.log(`created database ${created}`);

const handle = await openNodeDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: process.env.EDGECONF_DATA_DIR ?? ".edgeconf" });
await handle.migrate();
await handle.close();
console.log(`migrations applied to ${process.env.DATABASE_URL ? "DATABASE_URL" : "the embedded database"}`);
