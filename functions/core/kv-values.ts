/**
 * The rules of a kv item's key and value (design.md "Key-value services"). Pure functions, no
 * `node:*`: the `yaml` and `fast-xml-parser` packages run on Node and in workerd alike.
 */
import { XMLValidator } from "fast-xml-parser";
import { parseDocument } from "yaml";
import { invalid } from "./errors";

export const KV_TYPES = ["string", "number", "text", "json", "yaml", "xml", "secret"] as const;
export type KvType = (typeof KV_TYPES)[number];

/**
 * Keys are URL path segments (`.../kvs/{key}`) and JSON keys on the agent: letters, digits, `_`,
 * `.`, `-`, starting with a letter, digit or `_` (so never `.` or `..`), at most 128.
 */
export const KV_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const KV_KEY_RULE = "letters, digits, '_', '.', '-'; starts with a letter, digit or '_'; at most 128";

/** Largest value, in UTF-8 bytes (the JSON body limit is 2 MiB; a version holds many items). */
export const MAX_KV_VALUE_BYTES = 1024 * 1024;
/** Largest `string` or `secret` value: one line of settings, not a document. */
export const MAX_KV_LINE_BYTES = 64 * 1024;
/** Items per service. */
export const MAX_KV_ITEMS = 5000;

/** What every masked secret shows instead of its value. */
export const MASK = "******";

/** Finite decimal numbers as JSON writes them; no hex, no `Infinity`, no blanks. */
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

export function checkKvKey(key: string, field = "key"): string {
  if (!KV_KEY.test(key)) throw invalid(field, KV_KEY_RULE);
  return key;
}

/**
 * The value as stored (text) after checking it against its type; `value` may be a JSON number for
 * `number`. Throws invalid_argument naming `field` with the parser's reason (and line for yaml/xml).
 */
export function checkKvValue(type: KvType, value: unknown, field = "value"): string {
  if (type === "number" && typeof value === "number") {
    if (!Number.isFinite(value)) throw invalid(field, "a number item must be a finite number");
    return String(value);
  }
  if (typeof value !== "string") throw invalid(field, `a ${type} item's value must be a string`);
  const bytes = new TextEncoder().encode(value).byteLength;
  const cap = type === "string" || type === "secret" ? MAX_KV_LINE_BYTES : MAX_KV_VALUE_BYTES;
  if (bytes > cap) throw invalid(field, `a ${type} value is at most ${cap} bytes; this one is ${bytes}`);
  if (value.includes("\u0000")) throw invalid(field, "must not contain a NUL character");
  switch (type) {
    case "string":
      if (/[\r\n]/.test(value)) throw invalid(field, "a string item is one line; use type text for several lines");
      return value;
    case "number":
      if (!NUMBER.test(value.trim()) || !Number.isFinite(Number(value))) throw invalid(field, `'${value.slice(0, 40)}' is not a finite decimal number`);
      return value.trim();
    case "json":
      try {
        JSON.parse(value);
      } catch (e) {
        throw invalid(field, `not valid JSON: ${(e as Error).message}`);
      }
      return value;
    case "yaml": {
      const doc = parseDocument(value, { prettyErrors: true });
      const err = doc.errors[0];
      if (err) throw invalid(field, `not valid YAML: line ${err.linePos?.[0].line ?? "?"}: ${err.message.split("\n")[0]}`);
      return value;
    }
    case "xml": {
      if (!value.trim()) throw invalid(field, "not well-formed XML: empty");
      const r = XMLValidator.validate(value);
      if (r !== true) throw invalid(field, `not well-formed XML: line ${r.err.line}: ${r.err.msg}`);
      return value;
    }
    case "text":
    case "secret":
      return value;
  }
}
