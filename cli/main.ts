/**
 * edgeconf: the operator CLI (push a folder into a draft, release or roll out and wait, status, rollback,
 * export/import). One file per command under `commands/`; this entry only parses and dispatches.
 *
 * Exit codes: 0 ok; 1 the release failed; 2 usage; 3 server unreachable or refused; 4 timeout.
 */
import { parseArgs } from "node:util";
import { Api } from "./api.js";
import { exportCommand } from "./commands/export.js";
import { importCommand } from "./commands/import.js";
import { push } from "./commands/push.js";
import { release, rollback } from "./commands/release.js";
import { rollout } from "./commands/rollout.js";
import { status } from "./commands/status.js";
import { CLI_VERSION, COMMON_HELP, COMMON_OPTIONS, EXIT, EXIT_HELP, ServerError, UsageError, apiFrom, type Command, type Output } from "./context.js";

export const COMMANDS: Command[] = [push, release, rollout, status, rollback, exportCommand, importCommand];

function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `edgeconf ${CLI_VERSION}: the operator CLI of an edgeconf server

Usage: edgeconf COMMAND [options]     edgeconf COMMAND --help

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}
  ${"version".padEnd(width)}  print the CLI's version

Example (CI):
  export EDGECONF_URL=https://config.example.com EDGECONF_BIZ=10 EDGECONF_TOKEN=...
  edgeconf push ./config --app nginx --prune
  edgeconf release --app nginx --memo "$GIT_COMMIT" --wait --timeout 15m
  edgeconf release --app nginx --waves 5,25,100 --bake 60s --max-failures 0% --wait --timeout 30m

${COMMON_HELP}

${EXIT_HELP}`;
}

function stdio(): Output {
  return {
    out: (line) => process.stdout.write(line + "\n"),
    err: (line) => process.stderr.write(line + "\n"),
    isTTY: process.stdout.isTTY === true,
    stdout: process.stdout,
  };
}

/** Runs one command line; answers the exit code. Never throws. */
export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Output = stdio()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const cmd = COMMANDS.find((c) => c.name === rest[0]);
    (name === undefined ? io.err : io.out)(cmd ? cmd.help : globalHelp());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === "version" || name === "--version") {
    io.out(`edgeconf ${CLI_VERSION}`);
    return EXIT.OK;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    io.err(`edgeconf: unknown command "${name}"\n\n${globalHelp()}`);
    return EXIT.USAGE;
  }
  let api: Api | undefined;
  try {
    const parsed = parse(cmd, rest);
    if (parsed.values.help) {
      io.out(cmd.help);
      return EXIT.OK;
    }
    const ctx = { io, env, api: () => (api ??= apiFrom(parsed.values, env)) };
    return await cmd.run(ctx, parsed.values, parsed.positionals);
  } catch (err) {
    return report(io, cmd, err);
  } finally {
    api?.close();
  }
}

function parse(cmd: Command, args: string[]) {
  try {
    const parsed = parseArgs({ args, options: { ...COMMON_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true });
    const max = cmd.positionals?.length ?? 0;
    if (!parsed.values.help && parsed.positionals.length > max) throw new UsageError(`unexpected argument "${parsed.positionals[max]}"`);
    return parsed;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // node:util parseArgs throws TypeError with an ERR_PARSE_ARGS_* code for unknown or malformed flags.
    throw new UsageError((err as Error).message);
  }
}

function report(io: Output, cmd: Command, err: unknown): number {
  if (err instanceof UsageError) {
    io.err(`edgeconf ${cmd.name}: ${err.message}\nRun 'edgeconf ${cmd.name} --help' for usage.`);
    return EXIT.USAGE;
  }
  if (err instanceof ServerError) {
    io.err(`edgeconf ${cmd.name}: ${err.message}`);
    return EXIT.SERVER;
  }
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code === "string" && e.syscall) {
    // A local file problem (a missing archive, an unwritable -o): the caller's input, like usage.
    io.err(`edgeconf ${cmd.name}: ${e.message}`);
    return EXIT.USAGE;
  }
  io.err(`edgeconf ${cmd.name}: ${e?.stack ?? String(err)}`);
  return EXIT.FAILED;
}

// Run when executed directly (tsx cli/main.ts or the dist bundle), not when imported.
const entry = process.argv[1] ?? "";
if (/(cli\/main\.ts|edgeconf\.mjs|(^|\/)edgeconf)$/.test(entry)) {
  main(process.argv.slice(2), process.env).then((code) => {
    process.exitCode = code;
  });
}
