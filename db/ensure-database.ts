import pg from "pg";

/**
 * Creates the database `url` names when the server answers that it does not exist (SQLSTATE 3D000),
 * connecting to the server's `postgres` database to do so. Shared by `npm start`, `npm run db:migrate`
 * and `npm run dev:worker`, so all three behave alike on a fresh PostgreSQL.
 * Resolves with the name of the database it created, or null when it already existed (or the URL
 * names none). Any other error (unreachable server, refused login, no CREATEDB right) is rethrown.
 */
export async function ensureDatabase(url: string): Promise<string | null> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  if (!name) return null;
  const probe = new pg.Client({ connectionString: url });
  try {
    await probe.connect();
    return null;
  } catch (err) {
    if ((err as { code?: string }).code !== "3D000") throw err;
  } finally {
    await probe.end().catch(() => {});
  }
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`create database "${name.replace(/"/g, '""')}"`);
  } catch (err) {
    // Another process created it between the probe and here: the database is there, as wanted.
    if ((err as { code?: string }).code !== "42P04") throw err;
    return null;
  } finally {
    await c.end();
  }
  return name;
}
