/** @jsxImportSource hono/jsx */
/**
 * The console's part of server validation: the validators section of a service page, the failures
 * of a refused version shown beside the files, and the "passed validation" line of a version.
 */
import { Hono } from "hono";
import { z } from "zod";
import type { ReleaseValidation } from "../../db/schema/index";
import { VALIDATOR_KINDS, type ValidatorKind } from "../core/check-content";
import { invalid } from "../core/errors";
import { createValidator, deleteValidator, listValidators, type ValidationFailure } from "../core/validators";
import { bizOf, done, idParam, submit, type CC, type ConsoleEnv } from "./env";
import { ConfirmButton, Csrf, Empty, FieldError, FormError, TextField, type FormErrors, type FormValues } from "./layout";

const appOf = (c: CC) => c.req.param("app") ?? "";
const serviceUrl = (c: CC) => `/ui/bizs/${bizOf(c)}/services/${encodeURIComponent(appOf(c))}`;

/** The validators of a file service, each with a delete button, and a form to add one. */
export async function ValidatorsSection(p: { c: CC; errors?: FormErrors; values?: FormValues }) {
  const { c } = p;
  const list = await listValidators(c.var.deps.db, bizOf(c), appOf(c));
  const base = serviceUrl(c);
  const values = p.values ?? { kind: "json" };
  return (
    <section>
      <h2 id="validators">Validators</h2>
      <p class="small muted">Checked on the server before a version is created: a file that fails refuses the version, listing every failure.</p>
      {list.items.length ? (
        <div class="scroll">
          <table>
            <thead><tr><th>files</th><th>check</th><th>description</th><th></th></tr></thead>
            <tbody>
              {list.items.map((v) => (
                <tr data-validator={v.pathGlob}>
                  <td><code>{v.pathGlob}</code></td>
                  <td>{v.kind}{v.kind === "jsonschema" ? <details><summary class="small">schema</summary><pre>{JSON.stringify(v.schema, null, 2)}</pre></details> : null}</td>
                  <td class="small">{v.memo}</td>
                  <td><ConfirmButton action={`${base}/validators/${v.id}/delete`} csrf={c.var.session.csrf} label="Delete" confirm={`Delete the ${v.kind} check on ${v.pathGlob}?`} detail="Versions created from now on are no longer checked by it; existing versions keep their record." /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <Empty>No validator: versions are created without checks.</Empty>
      )}
      <details open={!!p.errors}>
        <summary>Add a validator</summary>
        <form method="post" action={`${base}/validators`} class="card">
          <Csrf token={c.var.session.csrf} />
          <FormError errors={p.errors} known={["pathGlob", "kind", "schema", "memo"]} />
          <div class="row">
            <TextField name="pathGlob" id="validator-glob" label="Files" hint="*.json (a name anywhere) or /etc/app/**/*.yaml (a path)" values={values} errors={p.errors} required />
            <div>
              <label for="validator-kind">Check</label>
              <select id="validator-kind" name="kind">
                {VALIDATOR_KINDS.map((k) => <option value={k} selected={values.kind === k}>{k === "jsonschema" ? "jsonschema — JSON or YAML matching a schema" : `${k} — must parse`}</option>)}
              </select>
              <FieldError errors={p.errors} name="kind" />
            </div>
          </div>
          <label for="validator-schema">JSON Schema <span class="hint">for jsonschema only</span></label>
          <textarea id="validator-schema" name="schema" rows={6}>{values.schema ?? ""}</textarea>
          <FieldError errors={p.errors} name="schema" />
          <TextField name="memo" id="validator-memo" label="Description" values={values} errors={p.errors} />
          <div class="actions"><button type="submit">Add validator</button></div>
        </form>
      </details>
    </section>
  );
}

/** Failures of a refused version, keyed by file, for the files table. */
export const failuresByFile = (failures: ValidationFailure[] | undefined) => {
  const m = new Map<string, ValidationFailure[]>();
  for (const f of failures ?? []) m.set(f.file, [...(m.get(f.file) ?? []), f]);
  return m;
};

/** The problems of one file, shown in its row of the files table. */
export const FileFailures = (p: { failures?: ValidationFailure[] }) =>
  p.failures?.length ? (
    <ul class="field-error" role="alert" data-failures-for={p.failures[0].file}>
      {p.failures.map((f) => <li>{f.kind}{f.line ? ` line ${f.line}` : ""}: {f.reason}</li>)}
    </ul>
  ) : null;

/** What a version passed at creation, for the version page and the publish review. */
export const ValidationPassed = (p: { validation: ReleaseValidation | null }) => {
  if (!p.validation) return <p class="small muted" data-testid="validation">No server validator applied when this version was created.</p>;
  const files = p.validation.validators.reduce((n, v) => n + v.files, 0);
  return (
    <p class="small" data-testid="validation">
      ✓ Passed validation: {p.validation.validators.map((v) => `${v.kind} on ${v.pathGlob} (${v.files} file${v.files === 1 ? "" : "s"})`).join(", ")}; {files} check{files === 1 ? "" : "s"} in all.
    </p>
  );
};

const AddValidator = z.object({
  pathGlob: z.string().trim().min(1, "pathGlob: give a glob such as *.json").max(512),
  kind: z.enum(VALIDATOR_KINDS as [ValidatorKind, ...ValidatorKind[]], "kind: choose a check"),
  schema: z.string().max(256 * 1024).optional(),
  memo: z.string().max(4096).optional(),
});

function parseSchema(text: string | undefined): unknown {
  if (!text?.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid("schema", `is not JSON: ${(e as Error).message}`);
  }
}

/** `rerender` shows the service page again with the form's values and errors in this section. */
export function validatorConsoleRoutes(rerender: (c: CC, values: FormValues, errors: FormErrors, status: 400 | 404 | 409 | 413 | 422) => Response | Promise<Response>) {
  return new Hono<ConsoleEnv>()
    .post("/ui/bizs/:biz/services/:app/validators", (c) =>
      submit(
        c,
        AddValidator,
        (d) => createValidator(c.var.deps.db, c.var.session.actor, bizOf(c), appOf(c), { pathGlob: d.pathGlob, kind: d.kind, schema: parseSchema(d.schema), memo: d.memo }, c.var.deps.clock()),
        (values, errors, status) => rerender(c, values, errors, status),
        (v) => done(c, `${serviceUrl(c)}#validators`, `Validator ${v.kind} on ${v.pathGlob} added.`),
      ),
    )
    .post("/ui/bizs/:biz/services/:app/validators/:vid/delete", async (c) => {
      await deleteValidator(c.var.deps.db, c.var.session.actor, bizOf(c), appOf(c), idParam(c, "vid") ?? 0);
      return done(c, `${serviceUrl(c)}#validators`, "Validator deleted.");
    });
}
