import { createHash } from "node:crypto";
import { lstat, readdir, readFile, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { checkDraftFile, pathFault } from "../checks.js";
import { COMMON_HELP, EXIT, EXIT_HELP, UsageError, required, str, type Command, type Output } from "../context.js";
import { syncDraft, type WantedFile } from "../sync.js";

const HELP = `Usage: edgeconf push DIR --app APP [--prune] [--dry-run] [--user U] [--group G]

Makes the service's draft hold the folder's files. Paths relative to DIR become absolute paths
on the hosts: DIR/etc/nginx/nginx.conf is /etc/nginx/nginx.conf. Files are compared with the draft
by SHA-256 and mode, and the command prints each one as added, changed or removed.

  --app APP     the service (required)
  --prune       remove draft files that are not in the folder; without it they are kept and
                listed as "kept"
  --dry-run     print what would change; change nothing
  --user U      owner of every pushed file on the hosts; without it a new file gets the server's
  --group G     default (root) and an existing one keeps its draft owner (the owner of a file in a
                CI checkout says nothing about the hosts)

Modes come from the folder (the permission bits, e.g. 644 or 755; setuid/setgid/sticky are
dropped with a warning). Symbolic links, sockets, FIFOs and devices are skipped with a warning and
never followed; folders named .git are skipped.

Examples:
  edgeconf push ./config --app nginx --dry-run
  edgeconf push ./config --app nginx --prune

${COMMON_HELP}

${EXIT_HELP} Whole or nothing: when the server refuses a file part-way, the changes made before it
are undone and the draft is as it was (the error says so, or names what could not be undone).`;

/** Checks made before any request, so a bad name never leaves the draft half-pushed. */
function checkName(rel: string): void {
  const fault = pathFault(`/${rel}`);
  if (fault) throw new UsageError(`push: ${JSON.stringify(rel)} ${fault}; rename it`);
}

/** Files under `dir` (not following links), as wanted draft files. */
export async function readFolder(dir: string, io: Output, owner: { user?: string; group?: string }): Promise<WantedFile[]> {
  const out: WantedFile[] = [];
  const walk = async (folder: string): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const abs = join(folder, e.name);
      const rel = relative(dir, abs).split(sep).join("/");
      if (e.isDirectory()) {
        if (e.name !== ".git") await walk(abs);
        continue;
      }
      if (!e.isFile()) {
        io.err(`warning: skipped ${rel}: ${e.isSymbolicLink() ? "a symbolic link" : "not a regular file"}`);
        continue;
      }
      checkName(rel);
      const st = await lstat(abs);
      const bytes = await readFile(abs);
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      if (st.mode & 0o7000) io.err(`warning: ${rel}: setuid/setgid/sticky bits dropped (mode ${(st.mode & 0o7777).toString(8)})`);
      out.push({
        fullPath: `/${rel}`,
        sha256,
        size: bytes.length,
        privilege: (st.mode & 0o777).toString(8).padStart(3, "0"),
        ...owner,
        async bytes() {
          const now = await readFile(abs);
          if (createHash("sha256").update(now).digest("hex") !== sha256) throw new UsageError(`push: ${rel} changed while pushing; run push again`);
          return now;
        },
      });
    }
  };
  await walk(dir);
  return out;
}

export const push: Command = {
  name: "push",
  summary: "make the draft hold a folder's files",
  help: HELP,
  positionals: ["DIR"],
  options: { app: { type: "string" }, prune: { type: "boolean" }, "dry-run": { type: "boolean" }, user: { type: "string" }, group: { type: "string" } },
  async run(ctx, values, positionals) {
    const dir = positionals[0];
    if (!dir) throw new UsageError("missing DIR");
    const app = required(values, "app");
    const st = await stat(dir).catch(() => null);
    if (!st?.isDirectory()) throw new UsageError(`${dir} is not a folder`);
    const api = ctx.api();
    const wanted = await readFolder(dir, ctx.io, { user: str(values.user), group: str(values.group) });
    for (const w of wanted) checkDraftFile("push", w);
    await syncDraft(api, ctx.io, app, wanted, { prune: values.prune === true, dryRun: values["dry-run"] === true, command: "push" });
    return EXIT.OK;
  },
};
