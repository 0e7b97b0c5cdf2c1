import type { Context } from "hono";
import type { z } from "zod";
import { DomainError } from "../core/errors";
import type { AppEnv } from "../env";
import { errorsOf } from "./layout";
import type { ConsoleSession } from "./session";
import { IdParam } from "../http/input";

/** The app's environment plus the signed-in session. */
export type ConsoleEnv = {
  Bindings: AppEnv["Bindings"];
  Variables: AppEnv["Variables"] & { session: ConsoleSession };
};

export type CC = Context<ConsoleEnv>;

/** Posted form fields as strings (files are left out; see `formFile`). */
export async function formValues(c: CC): Promise<Record<string, string>> {
  const body = await c.req.parseBody({ all: false });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === "string" && k !== "_csrf") out[k] = v;
  return out;
}

export async function formFile(c: CC, name: string): Promise<File | null> {
  const v = (await c.req.parseBody())[name];
  return v instanceof File && v.size > 0 ? v : null;
}

/** Path parameter as a positive int4 (what the id columns hold), or null. */
export function idParam(c: CC, name: string): number | null {
  const n = IdParam.safeParse(c.req.param(name));
  return n.success ? n.data : null;
}

/** Query parameter as a positive int4, or null. */
export function idQuery(c: CC, name: string): number | null {
  const n = IdParam.safeParse(c.req.query(name));
  return n.success ? n.data : null;
}

export const bizOf = (c: CC) => Number(c.req.param("biz"));

export const commonProps = (c: CC) => ({ csrf: c.var.session.csrf, user: c.var.session.actor.name, flash: c.req.query("msg") });

/**
 * Redirect after a successful POST, with a short message shown on the next page. The message goes
 * in the query, before any `#fragment` (after it, the server would never see it).
 */
export function done(c: CC, to: string, msg?: string) {
  if (!msg) return c.redirect(to, 303);
  const hash = to.indexOf("#");
  const [path, fragment] = hash < 0 ? [to, ""] : [to.slice(0, hash), to.slice(hash)];
  return c.redirect(`${path}${path.includes("?") ? "&" : "?"}msg=${encodeURIComponent(msg)}${fragment}`, 303);
}

export type Rerender = (values: Record<string, string>, errors: Record<string, string>, status: 400 | 404 | 409 | 413 | 422) => Response | Promise<Response>;

/**
 * The shape of every form post: parse the fields, run one domain verb, and on a refusal show the
 * form again with what was typed and the message next to its field.
 */
export async function submit<S extends z.ZodTypeAny, R>(
  c: CC,
  schema: S,
  act: (data: z.output<S>) => Promise<R>,
  rerender: Rerender,
  ok: (r: R) => Response | Promise<Response>,
  opts: { fallbackField?: string; prepare?: (v: Record<string, string>) => void } = {},
): Promise<Response> {
  const values = await formValues(c);
  opts.prepare?.(values);
  const parsed = schema.safeParse(values);
  if (!parsed.success) return rerender(values, errorsOf(parsed.error), 400);
  let result: R;
  try {
    result = await act(parsed.data);
  } catch (e) {
    const errors = errorsOf(e, opts.fallbackField);
    return rerender(values, errors, statusOfError(e));
  }
  return ok(result);
}

function statusOfError(e: unknown): 400 | 404 | 409 | 413 | 422 {
  if (!(e instanceof DomainError)) return 422;
  return e.code === "invalid_argument" ? 400 : e.code === "not_found" ? 404 : e.code === "already_exists" || e.code === "conflict" ? 409 : e.code === "payload_too_large" ? 413 : 422;
}
