/**
 * fast-check arbitraries for hostile input: the values an attacker or a broken agent sends
 * (NUL and control characters, integers past int32, fractions, huge and non-numeric numbers),
 * mixed with well-formed values so the hostile part reaches the code behind validation.
 */
import fc from "fast-check";

export type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  default?: unknown;
  example?: unknown;
};

const INT32 = 2 ** 31;

/** Numbers outside what an int4 column or a JS safe integer can take, and other non-ids. */
export const hostileNumber = () =>
  fc.oneof(
    fc.constantFrom(INT32, INT32 - 1, -INT32 - 1, -1, 0, 1.5, 1e300, 2 ** 53, 2 ** 63, -0.5, 9_007_199_254_740_993),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  );

/** Id-like strings for paths and queries: past int32, negative, fractional, exponent, hex, empty, NUL. */
export const hostileInt = () =>
  fc.oneof(
    fc.constantFrom("2147483648", "2147483647", "-1", "0", "+1", "01", "1.5", "1e3", "1e308", "99999999999999999999999", "0x10", "NaN", "Infinity", "", " 1", "1\u0000", "\u0000", "١"),
    hostileNumber().map(String),
  );

/**
 * Strings with NUL and other control characters, bidi marks, lone surrogates, and lengths past
 * every limit (up to `longest`; URLs get less, since servers and proxies refuse long ones themselves).
 */
export const hostileText = (longest = 70_000) =>
  fc.oneof(
    fc.constantFrom("\u0000", "a\u0000b", "../../etc/passwd", "\r\nX-Injected: 1", "\u202Eevil", "\ud800", "%00", "*", "a=b,c", "=", "svc\u0000", " "),
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ maxLength: 20 }).map((s) => `${s}\u0000${s}`),
    fc.integer({ min: 129, max: longest }).map((n) => "x".repeat(n)),
  );

function resolve(schema: Schema, doc: any): Schema {
  let s = schema;
  for (let i = 0; s?.$ref && i < 10; i++) s = s.$ref.replace(/^#\//, "").split("/").reduce((o: any, k) => o?.[k], doc) ?? {};
  return s ?? {};
}

/** A value of the schema's shape in which any part may be hostile; depth-bounded; text up to `longest`. */
export function schemaValue(schema: Schema, doc: any, longest = 70_000, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(schema, doc);
  const variants = s.anyOf ?? s.oneOf;
  if (variants) return fc.oneof(...variants.map((v) => schemaValue(v, doc, longest, depth)));
  if (s.allOf?.length) return schemaValue(s.allOf[0], doc, longest, depth);
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (types.length > 1) return fc.oneof(...types.map((t) => schemaValue({ ...s, type: t }, doc, longest, depth)));
  const anything = depth > 2 ? fc.constant(null) : fc.jsonValue({ maxDepth: 2 });
  const hostileAny = fc.oneof(hostileNumber(), hostileText(longest), fc.constant(null), fc.boolean());
  if (s.enum) return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...s.enum) }, hostileAny);
  switch (types[0]) {
    case "integer":
    case "number": {
      const min = Math.max(s.minimum ?? -1000, -1000);
      const max = Math.min(s.maximum ?? 1000, 1000);
      return fc.oneof({ weight: 2, arbitrary: fc.integer({ min: Math.min(min, max), max }) }, { weight: 3, arbitrary: hostileNumber() }, hostileAny);
    }
    case "string":
      return fc.oneof({ weight: 2, arbitrary: fc.string({ maxLength: Math.min(s.maxLength ?? 16, 16) }) }, { weight: 3, arbitrary: hostileText(longest) }, hostileNumber());
    case "boolean":
      return fc.oneof(fc.boolean(), hostileAny);
    case "array":
      if (depth > 2) return fc.constant([]);
      return fc.oneof({ weight: 3, arbitrary: fc.array(schemaValue(s.items ?? {}, doc, longest, depth + 1), { maxLength: 4 }) }, hostileAny);
    case "object": {
      if (depth > 2) return fc.constant({});
      const props = Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, schemaValue(v, doc, longest, depth + 1)]));
      const extra = typeof s.additionalProperties === "object" ? fc.dictionary(hostileText(), schemaValue(s.additionalProperties, doc, longest, depth + 1), { maxKeys: 4 }) : fc.constant({});
      return fc.oneof({ weight: 5, arbitrary: fc.tuple(fc.record(props, { requiredKeys: [] }), extra).map(([a, b]) => ({ ...b, ...a })) }, hostileAny);
    }
    default:
      return anything;
  }
}
