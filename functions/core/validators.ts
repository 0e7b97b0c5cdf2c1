import { and, asc, eq } from "drizzle-orm";
import picomatch from "picomatch";
import { validators, type ReleaseValidation } from "../../db/schema/index";
import { recordAudit, type Actor } from "./audit";
import { checkContent, schemaProblem, type Problem, type ValidatorKind } from "./check-content";
import { DomainError, invalid, notFound } from "./errors";
import { readBlob } from "./files";
import type { BlobStore, Db } from "./ports";
import { loadService, requireFileService } from "./services";

type ValidatorRow = typeof validators.$inferSelect;
export type ValidatorInput = { pathGlob: string; kind: ValidatorKind; schema?: unknown; memo?: string };

/** One file that failed one validator, as the 422 of version creation lists it. */
export type ValidationFailure = { file: string; validatorId: number; kind: ValidatorKind; pathGlob: string } & Problem;

/**
 * Version creation refused by the service's validators. `failures` lists every problem of every
 * file (not only the first), so a user fixes them in one round.
 */
export class ValidationError extends DomainError {
  constructor(readonly failures: ValidationFailure[]) {
    const files = [...new Set(failures.map((f) => f.file))];
    const first = failures[0];
    super("failed_precondition", `validation failed for ${files.length} file(s): ${first.file}${first.line ? ` line ${first.line}` : ""}: ${first.reason}${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ""}`, "files");
    this.name = "ValidationError";
  }
}

export function validatorView(v: ValidatorRow) {
  return { id: v.id, serviceId: v.serviceId, pathGlob: v.pathGlob, kind: v.kind, schema: v.schema ?? null, memo: v.memo, createdAt: v.createdAt.toISOString(), updatedAt: v.updatedAt.toISOString() };
}

/**
 * A glob with a `/` matches the whole path (`/etc/app/*.json`, `/etc/**`); one without matches the
 * file name wherever it is (`*.json`), as in .gitignore. picomatch compiles to a JavaScript
 * RegExp, which can backtrack on a crafted glob; here both the glob and the paths are written by
 * admins of the service (agent-facing globs, which meet names from outside, use RE2: core/credentials.ts).
 */
export function globMatcher(glob: string): (fullPath: string) => boolean {
  const isMatch = picomatch(glob, { dot: true });
  if (glob.includes("/")) return (p) => isMatch(p);
  return (p) => isMatch(p.slice(p.lastIndexOf("/") + 1));
}

/** The kind/schema pair must agree: `jsonschema` needs a valid schema, the syntax kinds take none. */
function checkInput(kind: ValidatorKind, schema: unknown) {
  if (kind === "jsonschema") {
    if (schema === undefined || schema === null) throw invalid("schema", "a jsonschema validator needs a schema");
    const problem = schemaProblem(schema);
    if (problem) throw invalid("schema", problem);
  } else if (schema !== undefined && schema !== null) {
    throw invalid("schema", `only a jsonschema validator takes a schema, not a ${kind} one`);
  }
}

async function loadValidator(db: Db, serviceId: number, id: number, forUpdate = false) {
  const q = db.select().from(validators).where(and(eq(validators.id, id), eq(validators.serviceId, serviceId))).limit(1);
  const [row] = forUpdate ? await q.for("update") : await q;
  if (!row) throw notFound(`validator ${id} of this service`);
  return row;
}

/**
 * Adds a validator to a file service. A kv service is refused: its items are checked against
 * their declared type when they are written, so there is no file to validate.
 */
export async function createValidator(db: Db, actor: Actor, bizId: number, app: string, input: ValidatorInput, now: Date) {
  checkInput(input.kind, input.schema);
  return db.transaction(async (tx) => {
    const s = await loadService(tx, bizId, app, true);
    requireFileService(s, "validators");
    const [row] = await tx
      .insert(validators)
      .values({ bizId, serviceId: s.id, pathGlob: input.pathGlob, kind: input.kind, schema: input.kind === "jsonschema" ? input.schema : null, memo: input.memo ?? "", createdAt: now, updatedAt: now })
      .returning();
    await recordAudit(tx, actor, { bizId, action: "validator.create", resourceType: "validator", resourceId: row.id, after: validatorView(row) });
    return validatorView(row);
  });
}

export async function listValidators(db: Db, bizId: number, app: string) {
  const s = await loadService(db, bizId, app);
  const rows = await db.select().from(validators).where(eq(validators.serviceId, s.id)).orderBy(asc(validators.id));
  return { items: rows.map(validatorView) };
}

export async function getValidator(db: Db, bizId: number, app: string, id: number) {
  const s = await loadService(db, bizId, app);
  return validatorView(await loadValidator(db, s.id, id));
}

/** Changes apply to versions created afterwards; versions made before keep what they passed. */
export async function updateValidator(db: Db, actor: Actor, bizId: number, app: string, id: number, input: Partial<ValidatorInput>, now: Date) {
  return db.transaction(async (tx) => {
    const s = await loadService(tx, bizId, app, true);
    const before = await loadValidator(tx, s.id, id, true);
    const kind = input.kind ?? before.kind;
    // Changing the kind away from jsonschema drops the schema unless one is given (and refused).
    const schema = input.schema !== undefined ? input.schema : kind === "jsonschema" ? before.schema : null;
    checkInput(kind, schema);
    const [after] = await tx
      .update(validators)
      .set({ kind, schema: kind === "jsonschema" ? schema : null, ...(input.pathGlob !== undefined ? { pathGlob: input.pathGlob } : {}), ...(input.memo !== undefined ? { memo: input.memo } : {}), updatedAt: now })
      .where(eq(validators.id, before.id))
      .returning();
    await recordAudit(tx, actor, { bizId, action: "validator.update", resourceType: "validator", resourceId: id, before: validatorView(before), after: validatorView(after) });
    return validatorView(after);
  });
}

export async function deleteValidator(db: Db, actor: Actor, bizId: number, app: string, id: number) {
  return db.transaction(async (tx) => {
    const s = await loadService(tx, bizId, app, true);
    const v = await loadValidator(tx, s.id, id, true);
    await tx.delete(validators).where(eq(validators.id, v.id));
    await recordAudit(tx, actor, { bizId, action: "validator.delete", resourceType: "validator", resourceId: id, before: validatorView(v) });
    return { id };
  });
}

type DraftFile = { path: string; name: string; sha256: string };
const fullPath = (f: DraftFile) => (f.path === "/" ? `/${f.name}` : `${f.path}/${f.name}`);

/**
 * Runs every validator of the service over the draft files its glob matches. Throws a
 * ValidationError listing every failure; otherwise answers what ran, to be kept on the version
 * (null when the service has no validators). A file that is not UTF-8 text fails every validator
 * that matches it. Each blob is read once, whatever number of validators match it.
 */
export async function runValidators(db: Db, store: BlobStore, bizId: number, serviceId: number, files: DraftFile[]): Promise<ReleaseValidation | null> {
  const rows = await db.select().from(validators).where(eq(validators.serviceId, serviceId)).orderBy(asc(validators.id));
  if (!rows.length) return null;
  const texts = new Map<string, string | null>();
  const textOf = async (sha256: string) => {
    if (!texts.has(sha256)) {
      const bytes = await readBlob(store, bizId, sha256);
      let text: string | null;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        text = null;
      }
      texts.set(sha256, text);
    }
    return texts.get(sha256)!;
  };
  const failures: ValidationFailure[] = [];
  const ran: ReleaseValidation["validators"] = [];
  for (const v of rows) {
    const matches = globMatcher(v.pathGlob);
    const matched = files.filter((f) => matches(fullPath(f)));
    ran.push({ id: v.id, pathGlob: v.pathGlob, kind: v.kind, files: matched.length });
    for (const f of matched) {
      const text = await textOf(f.sha256);
      const problems = text === null ? [{ line: null, column: null, reason: "not UTF-8 text" }] : checkContent(v.kind, f.name, text, v.schema);
      for (const p of problems) failures.push({ file: fullPath(f), validatorId: v.id, kind: v.kind, pathGlob: v.pathGlob, ...p });
    }
  }
  if (failures.length) throw new ValidationError(failures);
  return { validators: ran };
}
