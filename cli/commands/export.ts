import { ARCHIVE_FORMAT, sha256, writeArchive, type ArchivedHook, type Manifest } from "../archive.js";
import { COMMON_HELP, EXIT, EXIT_HELP, ServerError, required, type Command } from "../context.js";
import { findVersion, fullPath, type HookSnapshot } from "../resources.js";

const HELP = `Usage: edgeconf export --app APP --version V3 -o v3.tar.gz

Writes a version as a tar.gz: its files under files/ (tar mode = the file's privilege), its pre
and post scripts under scripts/, and manifest.json (version, each file's path, sha256, user,
group and privilege, each script's name, type and version). Every byte is checked against its
SHA-256; the archive appears only once complete.

  --app APP        the service (required)
  --version V3     the version's name (or #ID) (required)
  -o, --output F   the archive to write (required)

Examples:
  edgeconf export --app nginx --version V3 -o v3.tar.gz
  tar tvzf v3.tar.gz

${COMMON_HELP}

${EXIT_HELP}`;

const hookEntry = (kind: "pre" | "post", h: HookSnapshot): ArchivedHook =>
  h && { scriptName: h.scriptName, type: h.type, versionName: h.versionName, entry: `scripts/${kind}_hook.${h.type === "python" ? "py" : "sh"}`, sha256: sha256(Buffer.from(h.content)) };

export const exportCommand: Command = {
  name: "export",
  summary: "write a version's files, scripts and manifest to a tar.gz",
  help: HELP,
  options: { app: { type: "string" }, version: { type: "string" }, output: { type: "string", short: "o" } },
  async run(ctx, values) {
    const app = required(values, "app");
    const name = required(values, "version");
    const out = required(values, "output");
    const api = ctx.api();
    const v = await findVersion(api, app, name);
    const manifest: Manifest = {
      format: ARCHIVE_FORMAT,
      exportedAt: new Date().toISOString(),
      biz: api.biz,
      app,
      version: { id: v.id, name: v.name, memo: v.memo, createdBy: v.createdBy, createdAt: v.createdAt },
      files: v.files.map((f) => ({ path: f.path, name: f.name, entry: `files${fullPath(f)}`, sha256: f.sha256, size: f.size, fileType: f.fileType, user: f.user, group: f.group, privilege: f.privilege, memo: f.memo })),
      hooks: { pre: hookEntry("pre", v.hooks.pre), post: hookEntry("post", v.hooks.post) },
    };
    const byEntry = new Map(manifest.files.map((f) => [f.entry, f.sha256]));
    const scripts = new Map<string, string>();
    if (v.hooks.pre && manifest.hooks.pre) scripts.set(manifest.hooks.pre.entry, v.hooks.pre.content);
    if (v.hooks.post && manifest.hooks.post) scripts.set(manifest.hooks.post.entry, v.hooks.post.content);
    await writeArchive(out, manifest, async (entry) => {
      const script = scripts.get(entry);
      if (script !== undefined) return Buffer.from(script);
      const want = byEntry.get(entry)!;
      const bytes = await api.blob(want);
      if (sha256(bytes) !== want) throw new ServerError(`export: the server sent bytes for ${entry} that do not match sha256 ${want}`);
      return bytes;
    });
    ctx.io.out(`exported ${v.name} (${v.files.length} files${scripts.size ? `, ${scripts.size} scripts` : ""}) to ${out}`);
    return EXIT.OK;
  },
};
