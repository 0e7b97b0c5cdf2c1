import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "./schema/index";

/** The one database type the app sees; PGlite, node-postgres and Neon all produce it. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** `db.execute` answers differ in type per driver; all three carry `rows`. */
export function rowsOf<T>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? (result as T[])) as T[];
}
