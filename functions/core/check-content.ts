/**
 * Format checks of config file content, for the server validators (`validators.ts`). Pure: text
 * in, problems out. Every library here runs unchanged on Node and in a Worker (no `node:*`, no
 * `eval`/`new Function`): `yaml` (eemeli), `smol-toml`, `fast-xml-parser`'s XMLValidator, and
 * `@cfworker/json-schema`, which interprets a schema instead of compiling it to code as Ajv does
 * (Workers forbid code generation, and Ajv's precompiled "standalone" mode needs the schema at
 * build time, while ours arrive through the API).
 */
import { Validator, type OutputUnit, type Schema, type SchemaDraft } from "@cfworker/json-schema";
import * as metaSchemaModule from "@json-schema-tools/meta-schema";
import { LineCounter, parseAllDocuments, type Document } from "yaml";
import { parse as parseToml, TomlError } from "smol-toml";
import { XMLValidator } from "fast-xml-parser";

export type ValidatorKind = "json" | "yaml" | "toml" | "xml" | "jsonschema";
export const VALIDATOR_KINDS: ValidatorKind[] = ["json", "yaml", "toml", "xml", "jsonschema"];

/** One problem in one file: 1-based line and column where the format tells them, else null. */
export type Problem = { line: number | null; column: number | null; reason: string };

/** Schema problems reported per file at most; the rest are counted in one last line. */
const MAX_PROBLEMS_PER_FILE = 20;
/** Line numbers for schema problems come from a second, position-keeping parse, skipped past this size. */
const MAX_LOCATE_CHARS = 2 * 1024 * 1024;
/** Deepest nesting a schema may have: the validator recurses, and a deeper one would overflow the stack. */
export const MAX_SCHEMA_DEPTH = 64;

/** The package is CommonJS and declares only types; its one value is the meta-schema object. */
const metaSchema = (metaSchemaModule as unknown as { jsonSchema: Schema }).jsonSchema;

const at = (line: number | null, column: number | null, reason: string): Problem => ({ line, column, reason });

/** Line and column of a character offset, both 1-based. */
function position(text: string, offset: number) {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** JSON.parse's message names a position (`at position 12`) or, in newer V8, a line and column. */
function jsonProblem(text: string, err: unknown): Problem {
  const message = err instanceof Error ? err.message : String(err);
  const lc = /\(line (\d+) column (\d+)\)/.exec(message);
  if (lc) return at(Number(lc[1]), Number(lc[2]), message);
  const pos = /at position (\d+)/.exec(message);
  if (pos) {
    const p = position(text, Number(pos[1]));
    return at(p.line, p.column, message);
  }
  if (/end of (JSON )?input/i.test(message)) {
    const p = position(text, text.length);
    return at(p.line, p.column, message);
  }
  return at(null, null, message);
}

function yamlDocuments(text: string) {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  // parseAllDocuments answers an EmptyStream (no documents) for an empty file.
  return { docs: Array.isArray(docs) ? docs : [], lineCounter };
}

function yamlProblems(text: string): Problem[] {
  const { docs, lineCounter } = yamlDocuments(text);
  return docs.flatMap((d) =>
    d.errors.map((e) => {
      const p = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      return at(p.line, p.col, e.message.split("\n")[0]);
    }),
  );
}

/** The draft a schema asks for through `$schema`; 2020-12 when it names none we know. */
function draftOf(schema: unknown): SchemaDraft {
  const id = schema && typeof schema === "object" ? String((schema as { $schema?: unknown }).$schema ?? "") : "";
  if (id.includes("draft-04")) return "4";
  if (id.includes("draft-07") || id.includes("draft-06")) return "7";
  if (id.includes("2019-09")) return "2019-09";
  return "2020-12";
}

function depth(v: unknown, limit: number): number {
  if (!v || typeof v !== "object") return 0;
  if (limit <= 0) return 1;
  let max = 0;
  for (const x of Object.values(v)) max = Math.max(max, depth(x, limit - 1));
  return max + 1;
}

/**
 * The most specific errors of a validation: an error whose keyword location is the prefix of
 * another error's is only the summary of it ("A subschema had errors").
 */
function leafErrors(errors: OutputUnit[]): OutputUnit[] {
  return errors.filter((e) => !errors.some((o) => o !== e && o.keywordLocation.startsWith(`${e.keywordLocation}/`)));
}

const pointer = (instanceLocation: string) => instanceLocation.replace(/^#/, "") || "/";

/**
 * Why `schema` is not a usable JSON Schema, or null when it is. Checked against the JSON Schema
 * meta-schema of `@json-schema-tools/meta-schema` (draft-07 keywords, open to later ones such as
 * `$defs`), then by running it once, which finds `$ref`s that point nowhere.
 */
export function schemaProblem(schema: unknown): string | null {
  if (typeof schema !== "boolean" && (!schema || typeof schema !== "object" || Array.isArray(schema))) return "must be a JSON Schema: an object (or true/false)";
  if (depth(schema, MAX_SCHEMA_DEPTH + 1) > MAX_SCHEMA_DEPTH) return `nests deeper than ${MAX_SCHEMA_DEPTH} levels`;
  const result = new Validator(metaSchema, "7", false).validate(schema);
  if (!result.valid) {
    const leaves = leafErrors(result.errors).filter((e) => !e.keywordLocation.startsWith("#/oneOf/1/"));
    const worst = leaves.sort((a, b) => b.instanceLocation.length - a.instanceLocation.length)[0] ?? result.errors[0];
    return `is not a valid JSON Schema: at ${pointer(worst.instanceLocation)}: ${worst.error}`;
  }
  try {
    new Validator(schema as Schema, draftOf(schema), false).validate(null);
  } catch (e) {
    return `is not a valid JSON Schema: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
  }
  return null;
}

/** The node a JSON pointer names in a position-keeping YAML document, or its nearest existing parent. */
function locate(doc: Document, instanceLocation: string, lineCounter: LineCounter): { line: number; column: number } | null {
  const segments = pointer(instanceLocation)
    .split("/")
    .slice(1)
    .filter((s) => s !== "")
    .map((s) => decodeURIComponent(s).replace(/~1/g, "/").replace(/~0/g, "~"));
  for (let n = segments.length; n >= 0; n--) {
    const path = segments.slice(0, n).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const node = (n === 0 ? doc.contents : doc.getIn(path, true)) as { range?: [number, number, number] } | undefined;
    if (node?.range) {
      const p = lineCounter.linePos(node.range[0]);
      return { line: p.line, column: p.col };
    }
  }
  return null;
}

function schemaProblems(schema: unknown, values: unknown[], docsForLines: () => { docs: Document[]; lineCounter: LineCounter } | null): Problem[] {
  const validator = new Validator(schema as Schema, draftOf(schema), false);
  const out: Problem[] = [];
  let located: ReturnType<typeof docsForLines> | undefined;
  values.forEach((value, i) => {
    const result = validator.validate(value);
    if (result.valid) return;
    for (const e of leafErrors(result.errors)) {
      if (located === undefined) located = docsForLines();
      const doc = located?.docs[i];
      const p = doc && located ? locate(doc, e.instanceLocation, located.lineCounter) : null;
      const where = values.length > 1 ? `document ${i + 1}, ${pointer(e.instanceLocation)}` : pointer(e.instanceLocation);
      out.push(at(p?.line ?? null, p?.column ?? null, `${where}: ${e.error}`));
    }
  });
  if (out.length <= MAX_PROBLEMS_PER_FILE) return out;
  return [...out.slice(0, MAX_PROBLEMS_PER_FILE), at(null, null, `and ${out.length - MAX_PROBLEMS_PER_FILE} more schema errors`)];
}

/** A `.json` file is read as JSON, any other as YAML (of which JSON is a subset). */
const isJsonName = (name: string) => /\.json$/i.test(name);

/**
 * The problems of one file's text under one validator kind; empty when it passes. `name` picks
 * JSON or YAML for `jsonschema`. A YAML file may hold several documents (`---`); each is checked.
 */
export function checkContent(kind: ValidatorKind, name: string, text: string, schema?: unknown): Problem[] {
  try {
    switch (kind) {
      case "json":
        JSON.parse(text);
        return [];
      case "yaml":
        return yamlProblems(text);
      case "toml":
        parseToml(text);
        return [];
      case "xml": {
        const r = XMLValidator.validate(text);
        return r === true ? [] : [at(r.err.line ?? null, r.err.col ?? null, r.err.msg)];
      }
      case "jsonschema": {
        const locateLater = () => (text.length <= MAX_LOCATE_CHARS ? yamlDocuments(text) : null);
        if (isJsonName(name)) {
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch (e) {
            return [jsonProblem(text, e)];
          }
          return schemaProblems(schema, [value], locateLater);
        }
        const syntax = yamlProblems(text);
        if (syntax.length) return syntax;
        const { docs, lineCounter } = yamlDocuments(text);
        return schemaProblems(schema, docs.map((d) => d.toJS({ maxAliasCount: 100 })), () => ({ docs, lineCounter }));
      }
    }
  } catch (e) {
    if (kind === "json") return [jsonProblem(text, e)];
    if (e instanceof TomlError) return [at(e.line, e.column, e.message.split("\n")[0])];
    return [at(null, null, e instanceof Error ? e.message.split("\n")[0] : String(e))];
  }
}
