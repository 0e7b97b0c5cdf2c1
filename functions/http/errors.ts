import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";
import { DomainError, invalidInputCode, isUniqueViolation, type ErrorCode } from "../core/errors";
import type { AppEnv } from "../env";
import { errorFields, log } from "../core/log";
import { ValidationError } from "../core/validators";

const statusOf: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  failed_precondition: 422,
  payload_too_large: 413,
  too_many_requests: 429,
  internal: 500,
};

/** An HTTP error with a code from the closed set above; rendered as `{error:{code,message}}`. */
export class ApiError extends HTTPException {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(statusOf[code], { message });
  }
}

export function zodMessage(err: ZodError): string {
  const issue = err.issues[0];
  const field = issue?.path.join(".") || "body";
  return `${field}: ${issue?.message ?? "invalid"}`;
}

export function renderError(err: unknown, c: Context<AppEnv>) {
  const requestId = c.get("requestId") ?? "";
  const body = (code: ErrorCode, message: string) => ({ error: { code, message, requestId } });
  if (err instanceof ApiError) return c.json(body(err.code, err.message), err.status as ContentfulStatusCode);
  // A refused version lists every failing file, so the user fixes them in one round.
  if (err instanceof ValidationError) return c.json({ error: { ...body(err.code, err.message).error, failures: err.failures } }, statusOf[err.code]);
  if (err instanceof DomainError) return c.json(body(err.code, err.message), statusOf[err.code]);
  if (err instanceof ZodError) return c.json(body("invalid_argument", zodMessage(err)), 400);
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code: ErrorCode =
      status === 413 ? "payload_too_large" : status === 401 ? "unauthenticated" : status === 403 ? "permission_denied" : status === 404 ? "not_found" : status === 429 ? "too_many_requests" : status >= 500 ? "internal" : "invalid_argument";
    return c.json(body(code, err.message || "request refused"), status);
  }
  if (isUniqueViolation(err)) return c.json(body("already_exists", "a resource with that name already exists"), 409);
  const dataError = invalidInputCode(err);
  if (dataError) {
    // A value the edge let through: a 400 for the client, one line (no stack) for whoever fixes the edge.
    log("WARN", "database refused a value", { sqlstate: dataError, requestId, path: c.req.path });
    return c.json(body("invalid_argument", "request: a value is out of range or holds characters that cannot be stored"), 400);
  }
  log("ERROR", "unhandled error", { requestId, method: c.req.method, path: c.req.path, ...errorFields(err) });
  return c.json(body("internal", "internal error"), 500);
}
