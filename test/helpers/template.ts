import { existsSync } from "node:fs";
import { cp, mkdir } from "node:fs/promises";
import path from "node:path";

/** Set by test/global-setup.ts: a data folder holding only the embedded database `db/migrate.ts` made. */
export const TEMPLATE_ENV = "EDGECONF_TEST_TEMPLATE_DATA_DIR";

/**
 * Gives an embedded data folder that has no database yet a copy of the migrated template, as if a
 * server had already created it there (see test/global-setup.ts). Returns false, leaving the folder
 * as it is, when it already holds a database or there is no template (outside vitest).
 */
export async function seedDataDir(dataDir: string): Promise<boolean> {
  const template = process.env[TEMPLATE_ENV];
  if (!template || !existsSync(path.join(template, "pg", "PG_VERSION")) || existsSync(path.join(dataDir, "pg"))) return false;
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await cp(path.join(template, "pg"), path.join(dataDir, "pg"), { recursive: true, preserveTimestamps: true });
  return true;
}
