import { ARCHIVE_FORMAT, HOOK_KINDS, sha256, writeArchive, type ArchivedHook, type ArchivedKvs, type HookKind, type KvValue, type Manifest } from "../archive.js";
import { COMMON_HELP, EXIT, EXIT_HELP, ServerError, UsageError, required, type Command } from "../context.js";
import { findVersion, fullPath, getService, type HookSnapshot, type Version } from "../resources.js";

const HELP = `Usage: edgeconf export --app APP --version V3 -o v3.tar.gz [--reveal-secrets | --skip-secrets]

Writes a version as a tar.gz: its files under files/ (tar mode = the file's privilege), its pre,
post and validate scripts under scripts/, a kv service's items in kvs.json, and manifest.json
(version, each file's path, sha256, user, group and privilege, each script's name, type and
version, the service's validators). Every byte is checked against its SHA-256; the archive
appears only once complete, readable by its owner only (mode 0600).

  --app APP          the service (required)
  --version V3       the version's name (or #ID) (required)
  -o, --output F     the archive to write (required)
  --reveal-secrets   write the values of secret kv items into the archive, in clear; the server
                     audits the reveal (kv.reveal). Keep such an archive as you keep the secrets.
  --skip-secrets     leave secret kv items out (named in manifest.json and on stderr); an import
                     keeps the target's own value of such a key

A version holding secret items is refused (exit 2) without one of the two: an archive never
carries a masked "******" in place of a value.

Examples:
  edgeconf export --app nginx --version V3 -o v3.tar.gz
  edgeconf export --app settings --version V7 -o v7.tar.gz --skip-secrets
  tar tvzf v3.tar.gz

${COMMON_HELP}

${EXIT_HELP}`;

const hookEntry = (kind: HookKind, h: HookSnapshot): ArchivedHook =>
  h && { scriptName: h.scriptName, type: h.type, versionName: h.versionName, entry: `scripts/${kind}_hook.${h.type === "python" ? "py" : "sh"}`, sha256: sha256(Buffer.from(h.content)) };

/** The kv items to write, and how secrets were handled; refuses a version with secrets unless told what to do. */
function kvItems(v: Version, secrets: "reveal" | "skip" | undefined): { items: Record<string, KvValue>; meta: Omit<ArchivedKvs, "entry" | "sha256"> } {
  const secretKeys = v.kvs.filter((k) => k.type === "secret").map((k) => k.key);
  if (secretKeys.length && !secrets) {
    throw new UsageError(
      `version ${v.name} holds ${secretKeys.length} secret item(s) (${secretKeys.join(", ")}); pass --reveal-secrets to write their values into the archive (audited by the server) or --skip-secrets to leave them out`,
    );
  }
  const kept = v.kvs.filter((k) => k.type !== "secret" || secrets === "reveal");
  return {
    items: Object.fromEntries(kept.map((k) => [k.key, { type: k.type, value: k.value, memo: k.memo }])),
    meta: { count: kept.length, secrets: !secretKeys.length ? "none" : secrets === "reveal" ? "included" : "skipped", skippedSecrets: secrets === "skip" ? secretKeys : [] },
  };
}

export const exportCommand: Command = {
  name: "export",
  summary: "write a version's files, scripts, validators or kv items and manifest to a tar.gz",
  help: HELP,
  options: { app: { type: "string" }, version: { type: "string" }, output: { type: "string", short: "o" }, "reveal-secrets": { type: "boolean" }, "skip-secrets": { type: "boolean" } },
  async run(ctx, values) {
    const app = required(values, "app");
    const name = required(values, "version");
    const out = required(values, "output");
    if (values["reveal-secrets"] && values["skip-secrets"]) throw new UsageError("--reveal-secrets and --skip-secrets: choose one");
    const secrets = values["reveal-secrets"] ? "reveal" : values["skip-secrets"] ? "skip" : undefined;
    const api = ctx.api();
    const service = await getService(api, app);
    let v = await findVersion(api, app, name);
    const kv = kvItems(v, secrets);
    // Only now, once the flag says so, are the secrets read in clear (the server audits it).
    if (secrets === "reveal" && kv.meta.secrets === "included") {
      v = await findVersion(api, app, `#${v.id}`, { reveal: true });
      Object.assign(kv, kvItems(v, secrets));
      const masked = v.kvs.filter((k) => k.type === "secret" && k.value === "******").map((k) => k.key);
      if (masked.length) throw new ServerError(`export: the server answered masked values for ${masked.join(", ")} despite reveal=true; no archive written`);
    }
    if (kv.meta.skippedSecrets.length) ctx.io.err(`warning: secret items left out of the archive: ${kv.meta.skippedSecrets.join(", ")} (an import keeps the target's own values for them)`);
    const kvBytes = v.kvs.length ? Buffer.from(JSON.stringify(kv.items, null, 2) + "\n") : null;
    const validators = service.configType === "file" ? (await api.json<{ items: { pathGlob: string; kind: string; schema: unknown; memo: string }[] }>("GET", api.appPath(app, "/validators"))).items : [];
    const manifest: Manifest = {
      format: ARCHIVE_FORMAT,
      exportedAt: new Date().toISOString(),
      biz: api.biz,
      app,
      service: { configType: service.configType },
      version: { id: v.id, name: v.name, memo: v.memo, createdBy: v.createdBy, createdAt: v.createdAt },
      files: v.files.map((f) => ({ path: f.path, name: f.name, entry: `files${fullPath(f)}`, sha256: f.sha256, size: f.size, fileType: f.fileType, user: f.user, group: f.group, privilege: f.privilege, memo: f.memo })),
      hooks: { pre: hookEntry("pre", v.hooks.pre), post: hookEntry("post", v.hooks.post), validate: hookEntry("validate", v.hooks.validate ?? null) },
      validators: validators.map((x) => ({ pathGlob: x.pathGlob, kind: x.kind, schema: x.schema ?? null, memo: x.memo })),
      kvs: kvBytes ? { entry: "kvs.json", sha256: sha256(kvBytes), ...kv.meta } : null,
    };
    const byEntry = new Map(manifest.files.map((f) => [f.entry, f.sha256]));
    const scripts = new Map<string, string>();
    for (const kind of HOOK_KINDS) {
      const h = v.hooks[kind];
      const entry = manifest.hooks[kind];
      if (h && entry) scripts.set(entry.entry, h.content);
    }
    await writeArchive(out, manifest, async (entry) => {
      if (kvBytes && entry === manifest.kvs?.entry) return kvBytes;
      const script = scripts.get(entry);
      if (script !== undefined) return Buffer.from(script);
      const want = byEntry.get(entry)!;
      const bytes = await api.blob(want);
      if (sha256(bytes) !== want) throw new ServerError(`export: the server sent bytes for ${entry} that do not match sha256 ${want}`);
      return bytes;
    });
    const parts = [`${v.files.length} files`, scripts.size && `${scripts.size} scripts`, validators.length && `${validators.length} validators`, manifest.kvs && `${manifest.kvs.count} kv items`].filter(Boolean);
    ctx.io.out(`exported ${v.name} (${parts.join(", ")}) to ${out}`);
    return EXIT.OK;
  },
};
