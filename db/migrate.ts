/** `npm run db:migrate`: applies db/migrations to DATABASE_URL (or the embedded data folder). */
import { openNodeDatabase } from "./drivers/node";

const handle = await openNodeDatabase({ databaseUrl: process.env.DATABASE_URL, dataDir: process.env.EDGECONF_DATA_DIR ?? ".edgeconf" });
await handle.migrate();
await handle.close();
console.log(`migrations applied to ${process.env.DATABASE_URL ? "DATABASE_URL" : "the embedded database"}`);
