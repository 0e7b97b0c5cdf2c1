/**
 * Bundles the CLI into one ESM file that runs with Node alone (no node_modules):
 * `npm run build:cli` → dist/edgeconf.mjs. Tests build it the same way into a temp folder.
 * The banner gives the bundle a `require`, which the CommonJS dependencies (cli-progress) call
 * for Node built-ins; an ESM bundle has none otherwise.
 */
import { chmod } from "node:fs/promises";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const ROOT = resolve(import.meta.dirname, "..");

export async function buildCli(outfile = join(ROOT, "dist/edgeconf.mjs")): Promise<string> {
  await build({
    entryPoints: [join(ROOT, "cli/main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    banner: { js: "#!/usr/bin/env node\nimport { createRequire as __edgeconfRequire } from 'node:module';\nconst require = __edgeconfRequire(import.meta.url);" },
    logLevel: "warning",
  });
  await chmod(outfile, 0o755);
  return outfile;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(ROOT, "cli/build.ts")) {
  buildCli().then((file) => process.stdout.write(`built ${file}\n`));
}
