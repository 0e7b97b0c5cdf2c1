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
  // Iterative, depth-first in document order: a body nested thousands of levels deep (JSON.parse
  // accepts it) must be a 400 from the schema, never a stack overflow here.
  const stack: { value: unknown; path: string[] }[] = [{ value, path }];
  while (stack.length) {
    const { value: v, path: at } = stack.pop()!;
    if (typeof v === "string") {
      if (v.includes(NUL)) return at.join(".") || "value";
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], path: [...at, String(i)] });
    } else if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
      const entries = Object.entries(v);
      for (const [k] of entries) if (k.includes(NUL)) return [...at, JSON.stringify(k)].join(".");
      for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i][1], path: [...at, entries[i][0]] });
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
