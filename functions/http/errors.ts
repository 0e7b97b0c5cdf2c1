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

/** An error as the API answers it: status and `{error:{code,message,requestId}}` body. */
export type ErrorAnswer = { status: ContentfulStatusCode; body: { error: { code: ErrorCode; message: string; requestId: string; failures?: unknown } } };

/**
 * Maps any thrown value to its answer (the one mapping for `onError` and the Node long-poll fast
 * path); unexpected errors are logged with the request's id, method and path, and answer 500.
 */
export function errorAnswer(err: unknown, req: { requestId: string; method: string; path: string }): ErrorAnswer {
  const { requestId } = req;
  const answer = (code: ErrorCode, message: string, status: ContentfulStatusCode = statusOf[code]): ErrorAnswer => ({ status, body: { error: { code, message, requestId } } });
  if (err instanceof ApiError) return answer(err.code, err.message, err.status as ContentfulStatusCode);
  // A refused version lists every failing file, so the user fixes them in one round.
  if (err instanceof ValidationError) return { status: statusOf[err.code], body: { error: { code: err.code, message: err.message, requestId, failures: err.failures } } };
  if (err instanceof DomainError) return answer(err.code, err.message);
  if (err instanceof ZodError) return answer("invalid_argument", zodMessage(err), 400);
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code: ErrorCode =
      status === 413 || status === 431 ? "payload_too_large" : status === 401 ? "unauthenticated" : status === 403 ? "permission_denied" : status === 404 ? "not_found" : status === 429 ? "too_many_requests" : status >= 500 ? "internal" : "invalid_argument";
    return answer(code, err.message || "request refused", status);
  }
  if (isUniqueViolation(err)) return answer("already_exists", "a resource with that name already exists", 409);
  const dataError = invalidInputCode(err);
  if (dataError) {
    // A value the edge let through: a 400 for the client, one line (no stack) for whoever fixes the edge.
    log("WARN", "database refused a value", { sqlstate: dataError, requestId, path: req.path });
    return answer("invalid_argument", "request: a value is out of range or holds characters that cannot be stored", 400);
  }
  log("ERROR", "unhandled error", { requestId, method: req.method, path: req.path, ...errorFields(err) });
  return answer("internal", "internal error", 500);
}

export function renderError(err: unknown, c: Context<AppEnv>) {
  const a = errorAnswer(err, { requestId: c.get("requestId") ?? "", method: c.req.method, path: c.req.path });
  return c.json(a.body, a.status);
}
