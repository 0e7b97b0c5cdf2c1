import { sql } from "drizzle-orm";
import type { Db } from "../../db/types";
import { rowsOf } from "../../db/types";

/**
 * Tables a refused request must leave as they were. Left out: sessions (the console signs in),
 * webhook deliveries (a refused delivery is logged on purpose), and of credentials the columns
 * written on use (lastUsedAt).
 */
const TABLES = ["bizs", "services", "scripts", "script_versions", "blobs", "config_files", "service_hooks", "releases", "release_files", "release_hooks", "groups", "publishes", "webhooks", "clients", "client_events", "audit_log"];

/** One digest per table of everything stored (rows as text, ordered), in one query. */
export async function storedFingerprint(db: Db): Promise<Record<string, string>> {
  const parts = [
    ...TABLES.map((t) => `select '${t}' as t, md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as h from ${t} x`),
    `select 'credentials' as t, md5(coalesce(string_agg(row(id, name, revoked_at)::text, '|' order by id), '')) as h from credentials`,
  ];
  const rows = rowsOf<{ t: string; h: string }>(await db.execute(sql.raw(parts.join(" union all "))));
  return Object.fromEntries(rows.map((r) => [r.t, r.h]));
}
