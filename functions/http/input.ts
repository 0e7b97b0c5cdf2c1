/**
 * Shared pieces for input at the edge, so every route refuses the same hostile values the same
 * way (400 naming the field) before they reach Postgres, which would answer them with a 5xx-class
 * driver error: integers past int4 (22003), NUL in text or jsonb (22021 / 22P05); or would silently
 * change: lone UTF-16 surrogates, which UTF-8 stores as U+FFFD.
 */
import { z } from "@hono/zod-openapi";

/** Largest value of a Postgres `integer` (int4) column, which every id and count here is. */
export const MAX_INT32 = 2_147_483_647;

/**
 * A whole number in a JSON body, from `min` to `max`. The range is checked before `.int()`:
 * zod's int check also carries the safe-integer bound (2^53 − 1), and placed first it would be the
 * message a client reads for `1e20` ("expected int to be <=9007199254740991") instead of the
 * field's own bound. A fraction is still refused ("expected int").
 */
export const intIn = (min: number, max: number) => z.number().min(min).max(max).int();

/** Digits only, no sign, no leading zero: the one spelling of a whole number in a URL. */
const CANONICAL_INT = /^(0|[1-9][0-9]*)$/;

/**
 * A whole number in a path or query string, from `min` to `max`. Only its canonical decimal
 * spelling is taken: `+10`, `010`, ` 10`, `1e1`, `0x0a` and `10.0` are 400s naming the parameter,
 * not aliases of 10 (a URL that names a resource has one spelling, so caches, audit lines and
 * allow-lists that compare URLs see the same id the handler does).
 */
export function intParam(min: number, max = MAX_INT32) {
  return z
    .string()
    .regex(CANONICAL_INT, "must be a decimal integer (digits only, no sign or leading zero)")
    .transform(Number)
    // No `.int()`: the digits-only spelling is a whole number already, and the int check's own
    // bound (2^53 − 1) would answer `99999999999999999999` instead of the parameter's `max`.
    .pipe(z.number().min(min).max(max))
    .openapi({ type: "integer", minimum: min, maximum: max, pattern: undefined });
}

/** {@link intParam} that is optional and reads `fallback` when left out (documented as the default). */
export const intParamOr = (min: number, max: number, fallback: number) => intParam(min, max).default(fallback).openapi({ default: fallback });

/** An id in a path or query string (`"42"`): a positive int4, canonical decimal only. */
export const IdParam = intParam(1);
/** An id in a JSON body: a positive int4 (no strings, no fractions). */
export const Id = intIn(1, MAX_INT32);
/** A count or size in a JSON body that lands in an int4 column. */
export const Count = intIn(0, MAX_INT32);

/** `?limit=&offset=` of list routes. */
export const Paging = {
  limit: intParamOr(1, 500, 50),
  offset: intParamOr(0, MAX_INT32, 0),
};

const NUL = "\u0000";
/** Half of a UTF-16 surrogate pair without its other half: no Unicode character, so no UTF-8 either. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/** Why a string cannot be stored as it was given, or null when it can. */
function textFault(s: string): string | null {
  if (s.includes(NUL)) return "must not contain a NUL character";
  // JSON's "\ud800" escapes are valid JSON but not text: the database's UTF-8 would silently turn
  // them into U+FFFD, storing something other than what was sent.
  if (LONE_SURROGATE.test(s)) return "must not contain a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair)";
  return null;
}

/**
 * The first place in validated input where a string or an object key cannot be stored as given:
 * a NUL character (Postgres text and jsonb cannot hold one) or a lone UTF-16 surrogate. Answers
 * the field path like `tags.2` and the reason; null when every string is storable text.
 */
export function unstorableText(value: unknown, path: string[] = []): { field: string; message: string } | null {
  // Iterative, depth-first in document order: a body nested thousands of levels deep (JSON.parse
  // accepts it) must be a 400 from the schema, never a stack overflow here.
  const stack: { value: unknown; path: string[] }[] = [{ value, path }];
  while (stack.length) {
    const { value: v, path: at } = stack.pop()!;
    if (typeof v === "string") {
      const fault = textFault(v);
      if (fault) return { field: at.join(".") || "value", message: fault };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], path: [...at, String(i)] });
    } else if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
      const entries = Object.entries(v);
      for (const [k] of entries) {
        const fault = textFault(k);
        if (fault) return { field: [...at, JSON.stringify(k)].join("."), message: `key ${fault}` };
      }
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i][1], path: [...at, entries[i][0]] });
    }
  }
  return null;
}

/** Replaces NUL characters and lone surrogates (a script's output may hold them) so the text can be stored and shown. */
export const withoutNul = (s: string) => s.replaceAll(NUL, "\uFFFD").replace(LONE_SURROGATES, "\uFFFD");

/**
 * Text an agent reports (an event's message, a hook's output): never refused for its content or
 * length, since refusing would lose the event. NUL and lone surrogates become U+FFFD, and past `maxChars` it is cut,
 * keeping the start (`"start"`, a message) or the end (`"end"`, an output tail), marked with "…".
 */
export function agentText(maxChars: number, keep: "start" | "end") {
  return z.string().transform((raw) => {
    const s = withoutNul(raw);
    if (s.length <= maxChars) return s;
    // Cut on a code point boundary: half a surrogate pair would not survive the JSON round trip.
    const cut = keep === "end" ? s.slice(s.length - maxChars + 1).replace(/^[\udc00-\udfff]/, "") : s.slice(0, maxChars - 1).replace(/[\ud800-\udbff]$/, "");
    return keep === "end" ? `…${cut}` : `${cut}…`;
  });
}
