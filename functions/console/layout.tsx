/** @jsxImportSource hono/jsx */
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import { ZodError } from "zod";
import { DomainError } from "../core/errors";

export type Nav = "bizs" | "scripts" | "services" | "groups" | "credentials" | "audit" | "";

export type PageProps = PropsWithChildren<{ title: string; csrf?: string; biz?: number; nav?: Nav; user?: string; flash?: string; refresh?: number }>;

export const Layout: FC<PageProps> = ({ title, csrf, biz, nav = "", user, flash, refresh, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{title} · edgeconf</title>
      <link rel="icon" href="/favicon.ico" type="image/svg+xml" />
      <link rel="stylesheet" href="/ui/assets/console.css" />
      <script src="/ui/assets/console.js" defer></script>
    </head>
    <body data-refresh={refresh ? String(refresh) : undefined}>
      {csrf ? (
        <header class="top">
          <a class="brand" href="/ui">edgeconf</a>
          <nav>
            <a class={nav === "bizs" ? "on" : ""} href="/ui">Bizs</a>
            {biz ? (
              <>
                <a class={nav === "scripts" ? "on" : ""} href={`/ui/bizs/${biz}/scripts`}>Scripts</a>
                <a class={nav === "services" ? "on" : ""} href={`/ui/bizs/${biz}/services`}>Services</a>
                <a class={nav === "groups" ? "on" : ""} href={`/ui/bizs/${biz}/groups`}>Groups</a>
              </>
            ) : null}
            <a class={nav === "credentials" ? "on" : ""} href="/ui/credentials">Credentials</a>
            <a class={nav === "audit" ? "on" : ""} href={biz ? `/ui/audit?biz=${biz}` : "/ui/audit"}>Audit log</a>
          </nav>
          {biz ? <span class="small">biz {biz}</span> : null}
          <form method="post" action="/logout">
            <Csrf token={csrf} />
            <button type="submit" title={user ? `signed in as ${user}` : ""}>Sign out</button>
          </form>
        </header>
      ) : null}
      <main>
        {flash ? <div class="flash" role="status">{flash}</div> : null}
        {children}
      </main>
    </body>
  </html>
);

export const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name="_csrf" value={token} />;

/**
 * A destructive action behind a confirm step, without script: the button opens a `<details>` that
 * says what will happen and holds the form that POSTs (with the session's CSRF token) to `action`.
 */
export const ConfirmButton: FC<{ action: string; csrf: string; label: string; confirm: string; detail?: string; id?: string }> = ({ action, csrf, label, confirm, detail, id }) => (
  <details class="confirm" id={id}>
    <summary class="button danger">{label}…</summary>
    <div class="confirm-box" role="group">
      <p><strong>{confirm}</strong></p>
      {detail ? <p class="small">{detail}</p> : null}
      <form method="post" action={action}>
        <Csrf token={csrf} />
        <button type="submit" class="danger">Yes, {label.toLowerCase()}</button>
      </form>
    </div>
  </details>
);

export type FormErrors = Record<string, string>;
export type FormValues = Record<string, string>;

/** Turns a domain or validation error into field errors; anything else is rethrown. */
export function errorsOf(e: unknown, fallbackField = "_form"): FormErrors {
  if (e instanceof DomainError) return { [e.field ?? fieldFromMessage(e.message) ?? fallbackField]: e.message };
  if (e instanceof ZodError) {
    const i = e.issues[0];
    const field = i?.path.join(".") || fallbackField;
    return { [field]: `${field}: ${i?.message ?? "invalid"}` };
  }
  throw e;
}

/** Core messages start with the field they concern ("name: ..."). */
function fieldFromMessage(m: string): string | undefined {
  return /^([A-Za-z][\w.]*): /.exec(m)?.[1];
}

export const FieldError: FC<{ errors?: FormErrors; name: string }> = ({ errors, name }) =>
  errors?.[name] ? <p class="field-error" role="alert" data-error-for={name}>{errors[name]}</p> : null;

/** Errors not tied to a field, shown at the top of a form. */
export const FormError: FC<{ errors?: FormErrors; known?: string[] }> = ({ errors, known = [] }) => {
  if (!errors) return null;
  const rest = Object.entries(errors).filter(([k]) => !known.includes(k));
  return rest.length ? (
    <div class="flash error" role="alert">
      {rest.map(([, m]) => (
        <div>{m}</div>
      ))}
    </div>
  ) : null;
};

export const TextField: FC<{ name: string; id?: string; label: string; hint?: string; values?: FormValues; errors?: FormErrors; placeholder?: string; required?: boolean; type?: string }> = (p) => (
  <div>
    <label for={p.id ?? p.name}>
      {p.label} {p.hint ? <span class="hint">{p.hint}</span> : null}
    </label>
    <input
      type={p.type ?? "text"}
      id={p.id ?? p.name}
      name={p.name}
      value={p.values?.[p.name] ?? ""}
      placeholder={p.placeholder}
      required={p.required}
      class={p.errors?.[p.name] ? "invalid" : ""}
    />
    <FieldError errors={p.errors} name={p.name} />
  </div>
);

export const Badge: FC<{ kind: string; label?: string }> = ({ kind, label }) => <span class={`badge ${kind}`}>{label ?? kind.replace("_", " ")}</span>;

/** A unified diff with added/removed lines coloured. */
export const DiffView: FC<{ diff: string }> = ({ diff }) => (
  <pre class="diff">
    {diff.split("\n").map((l): Child => {
      const cls = l.startsWith("+") && !l.startsWith("+++") ? "add" : l.startsWith("-") && !l.startsWith("---") ? "del" : l.startsWith("@@") ? "hunk" : "";
      return cls ? <span class={cls}>{l}</span> : l + "\n";
    })}
  </pre>
);

export const when = (iso: string | Date | null | undefined) => {
  if (!iso) return "—";
  const d = typeof iso === "string" ? new Date(iso) : iso;
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
};

export const Empty: FC<PropsWithChildren> = ({ children }) => <p class="muted">{children}</p>;
