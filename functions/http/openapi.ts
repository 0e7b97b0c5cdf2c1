import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ApiError, zodMessage } from "./errors";
import { IdParam, nulField } from "./input";

export { Paging } from "./input";

/**
 * Every router is one of these, so validation failures become `{error:{code,message}}` naming the
 * field, and no validated path, query or body value carries a NUL character into the database.
 */
export function router() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw new ApiError("invalid_argument", zodMessage(result.error));
      const at = nulField(result.data);
      if (at !== null) throw new ApiError("invalid_argument", `${at}: must not contain a NUL character`);
    },
  });
}

export const ErrorSchema = z
  .object({ error: z.object({ code: z.string(), message: z.string(), requestId: z.string().optional() }) })
  .openapi("Error");

export const errorResponses = {
  400: { description: "Invalid input", content: { "application/json": { schema: ErrorSchema } } },
  401: { description: "Missing or invalid token", content: { "application/json": { schema: ErrorSchema } } },
  403: { description: "Token not allowed", content: { "application/json": { schema: ErrorSchema } } },
  404: { description: "Not found", content: { "application/json": { schema: ErrorSchema } } },
  409: { description: "Conflict", content: { "application/json": { schema: ErrorSchema } } },
  422: { description: "Rule refused the change", content: { "application/json": { schema: ErrorSchema } } },
  429: { description: "Too many failed tokens from this address; see Retry-After", content: { "application/json": { schema: ErrorSchema } } },
} as const;

export const json = <T extends z.ZodTypeAny>(schema: T, description = "OK") => ({
  description,
  content: { "application/json": { schema } },
});

export const jsonBody = <T extends z.ZodTypeAny>(schema: T) => ({
  required: true,
  content: { "application/json": { schema } },
});

export const BizParam = z.object({ biz: IdParam.openapi({ param: { name: "biz", in: "path" }, example: 10 }) });

/**
 * Characters no name may hold: controls (C0, DEL, C1), line/paragraph separators, bidi controls
 * (U+061C, U+200E/F, U+202A–E, U+2066–9: they make a name read differently from what it is, as in
 * "Trojan Source") and invisible format characters (zero-width, BOM, U+FFF9–B).
 */
export const UNSAFE_NAME_CHARS = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/;

/** The one refinement every user-typed name goes through (scripts, versions, groups, webhooks; service names and label keys are ASCII-only). */
export const noUnsafeChars = (s: string) => !UNSAFE_NAME_CHARS.test(s);
const UNSAFE_MESSAGE = "must not contain control, bidi or invisible formatting characters";

/** Names of things users type: no path characters, no control or bidi characters. */
export const SafeName = z
  .string()
  .min(1)
  .max(128)
  .refine(noUnsafeChars, UNSAFE_MESSAGE)
  .regex(/^[A-Za-z0-9\u00C0-\uFFFF][A-Za-z0-9_.\-\u00C0-\uFFFF ]*$/, "letters, digits, '_', '-', '.', spaces; no path characters")
  .refine((s) => !s.includes(".."), "must not contain '..'");
