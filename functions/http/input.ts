/**
 * Shared pieces for input at the edge, so every route refuses the same hostile values the same
 * way (400 naming the field) before they reach Postgres, which would answer them with a 5xx-class
 * driver error: integers past int4 (22003), NUL in text or jsonb (22021 / 22P05).
 */
import { z } from "@hono/zod-openapi";

/** Largest value of a Postgres `integer` (int4) column, which every id and count here is. */
export const MAX_INT32 = 2_147_483_647;

/** An id in a path or query string (`"42"`): a positive int4. */
export const IdParam = z.coerce.number().int().positive().max(MAX_INT32);
/** An id in a JSON body: a positive int4 (no strings, no fractions). */
export const Id = z.number().int().positive().max(MAX_INT32);
/** A count or size in a JSON body that lands in an int4 column. */
export const Count = z.number().int().min(0).max(MAX_INT32);

/** `?limit=&offset=` of list routes. */
export const Paging = {
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(MAX_INT32).default(0),
};

const NUL = "\u0000";

/**
 * The first place in validated input where a string or an object key holds a NUL character
 * (Postgres text and jsonb cannot store one), as a field path like `tags.2`; null when none.
 */
export function nulField(value: unknown, path: string[] = []): string | null {
  if (typeof value === "string") return value.includes(NUL) ? path.join(".") || "value" : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = nulField(value[i], [...path, String(i)]);
      if (at !== null) return at;
    }
    return null;
  }
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    for (const [k, v] of Object.entries(value)) {
      if (k.includes(NUL)) return [...path, JSON.stringify(k)].join(".");
      const at = nulField(v, [...path, k]);
      if (at !== null) return at;
    }
  }
  return null;
}

/** Replaces NUL characters (a script's output may hold them) so the text can be stored and shown. */
export const withoutNul = (s: string) => s.replaceAll(NUL, "\uFFFD");

/**
 * Text an agent reports (an event's message, a hook's output): never refused for its content or
 * length, since refusing would lose the event. NUL becomes U+FFFD, and past `maxChars` it is cut,
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
