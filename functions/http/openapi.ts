import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ApiError, zodMessage } from "./errors";
import { IdParam, unstorableText } from "./input";
import { noUnsafeChars, UNSAFE_MESSAGE } from "../core/text";

export { Paging } from "./input";

/**
 * Every router is one of these, so validation failures become `{error:{code,message}}` naming the
 * field, and no validated path, query or body value carries a NUL character or a lone surrogate
 * into the database.
 */
export function router() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw new ApiError("invalid_argument", zodMessage(result.error));
      const fault = unstorableText(result.data);
      if (fault) throw new ApiError("invalid_argument", `${fault.field}: ${fault.message}`);
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

/** Names of things users type: no path characters, no control or bidi characters. */
export const SafeName = z
  .string()
  .min(1)
  .max(128)
  .refine(noUnsafeChars, UNSAFE_MESSAGE)
  .regex(/^[A-Za-z0-9\u00C0-\uFFFF][A-Za-z0-9_.\-\u00C0-\uFFFF ]*$/, "letters, digits, '_', '-', '.', spaces; no path characters")
  .refine((s) => !s.includes(".."), "must not contain '..'");
