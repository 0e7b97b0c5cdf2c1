/** Domain errors know nothing of HTTP; the app maps `code` to a status in one place. */
export type ErrorCode =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "payload_too_large"
  | "conflict"
  | "too_many_requests"
  | "internal";

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = "DomainError";
  }
}

export const invalid = (field: string, message: string) => new DomainError("invalid_argument", `${field}: ${message}`, field);
export const notFound = (what: string) => new DomainError("not_found", `${what} not found`);
export const alreadyExists = (field: string, message: string) => new DomainError("already_exists", `${field}: ${message}`, field);
export const precondition = (message: string, field?: string) => new DomainError("failed_precondition", message, field);

/** Postgres unique violation (23505), as raised by pg, PGlite and Neon alike. */
export function isUniqueViolation(err: unknown): boolean {
  let e: any = err;
  for (let i = 0; e && i < 4; i++, e = e.cause) if (e.code === "23505") return true;
  return false;
}

/**
 * Postgres refused a value as data, not as a conflict: class 22 "data exception" (22P02 bad
 * number text, 22003 out of range, 22021 bad byte such as NUL, 22P05 NUL in jsonb, 22001 too
 * long) and 54000 "program limit exceeded" (a value too big for an index). The SQLSTATE, or null.
 * Validation at the edge should have caught it; this is the last line so input never gives a 500.
 */
export function invalidInputCode(err: unknown): string | null {
  let e: any = err;
  for (let i = 0; e && i < 4; i++, e = e.cause) if (typeof e.code === "string" && (/^22[0-9A-Z]{3}$/.test(e.code) || e.code === "54000")) return e.code;
  return null;
}
