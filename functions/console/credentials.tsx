/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { listBizs, requireBiz } from "../core/bizs";
import { createCredential, listCredentials, revokeCredential } from "../core/credentials";
import { announceRevocation } from "../core/token-cache";
import { commonProps, done, formValues, idParam, type CC, type ConsoleEnv } from "./env";
import { Badge, Csrf, errorsOf, FieldError, FormError, Layout, TextField, when, type FormErrors, type FormValues, ConfirmButton } from "./layout";

type Created = { name: string; kind: string; token: string };

async function page(c: CC, opts: { values?: FormValues; errors?: FormErrors; created?: Created; status?: 200 | 400 | 404 | 409 | 422 } = {}) {
  const { values = { kind: "agent", apps: "*" }, errors, created } = opts;
  const [creds, bizs] = await Promise.all([listCredentials(c.var.deps.db), listBizs(c.var.deps.db)]);
  return c.html(
    <Layout title="Credentials" nav="credentials" {...commonProps(c)}>
      <h1>Credentials</h1>
      {created ? (
        <div class="card" data-testid="new-token">
          <h2>Token for “{created.name}” ({created.kind})</h2>
          <p>Copy it now: it is shown only this once, and only its SHA-256 is stored.</p>
          <div class="secret" id="new-token">{created.token}</div>
        </div>
      ) : null}
      <div class="scroll">
        <table>
          <thead><tr><th>name</th><th>kind</th><th>scope</th><th>prefix</th><th>created</th><th>last used</th><th></th></tr></thead>
          <tbody>
            {creds.map((k) => (
              <tr>
                <td>{k.name}</td>
                <td><Badge kind={k.kind} /></td>
                <td class="small">{k.kind === "agent" ? `biz ${k.bizId}: ${k.apps.join(", ")}` : "everything"}</td>
                <td><code>{k.tokenPrefix}…</code></td>
                <td class="small">{when(k.createdAt)} by {k.createdBy}</td>
                <td class="small">{when(k.lastUsedAt)}</td>
                <td>
                  {k.revokedAt ? (
                    <Badge kind="revoked" label={`revoked ${when(k.revokedAt)}`} />
                  ) : (
                    <ConfirmButton
                      action={`/ui/credentials/${k.id}/revoke`}
                      csrf={c.var.session.csrf}
                      label="Revoke"
                      id={`revoke-${k.id}`}
                      confirm={`Revoke ${k.name}?`}
                      detail={
                        k.id === c.var.session.actor.credentialId
                          ? "This is the token you signed in with: revoking it ends this session, and you sign in again with another admin token."
                          : k.kind === "agent"
                            ? "Agents using it can no longer read the feed."
                            : "Whoever uses it can no longer call the API or sign in."
                      }
                    />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>New credential</h2>
      <form method="post" action="/ui/credentials" class="card">
        <Csrf token={c.var.session.csrf} />
        <FormError errors={errors} known={["name", "kind", "bizId", "apps"]} />
        <div class="row">
          <TextField name="name" label="Name" hint="who or what uses it" values={values} errors={errors} required />
          <div>
            <label for="kind">Kind</label>
            <select id="kind" name="kind">
              <option value="agent" selected={values.kind !== "admin"}>agent — reads the feed of one biz</option>
              <option value="admin" selected={values.kind === "admin"}>admin — manages everything, signs in here</option>
            </select>
            <FieldError errors={errors} name="kind" />
          </div>
        </div>
        <div class="row">
          <div>
            <label for="bizId">Biz <span class="hint">agent tokens only</span></label>
            <select id="bizId" name="bizId" class={errors?.bizId ? "invalid" : ""}>
              <option value="">—</option>
              {bizs.map((b) => (
                <option value={String(b.id)} selected={values.bizId === String(b.id)}>{b.id} · {b.name}</option>
              ))}
            </select>
            <FieldError errors={errors} name="bizId" />
          </div>
          <TextField name="apps" label="Services" hint="comma-separated globs, e.g. service_*" values={values} errors={errors} />
        </div>
        <div class="actions"><button type="submit">Create token</button></div>
      </form>
    </Layout>,
    opts.status ?? 200,
  );
}

const glob = /^[A-Za-z0-9_.*?-]+$/;

export const credentialRoutes = new Hono<ConsoleEnv>()
  .get("/ui/credentials", (c) => page(c))
  .post("/ui/credentials", async (c) => {
    const v = await formValues(c);
    const name = (v.name ?? "").trim();
    const kind = v.kind === "admin" ? "admin" : v.kind === "agent" ? "agent" : null;
    const apps = (v.apps ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    const bizId = v.bizId ? Number(v.bizId) : undefined;
    const bad = (errors: FormErrors) => page(c, { values: v, errors, status: 400 });
    if (!name || name.length > 128) return bad({ name: "name: 1 to 128 characters" });
    if (!kind) return bad({ kind: "kind: choose admin or agent" });
    if (bizId !== undefined && !(Number.isInteger(bizId) && bizId > 0)) return bad({ bizId: "bizId: choose a biz" });
    const badGlob = apps.find((a) => !glob.test(a) || a.length > 128);
    if (badGlob) return bad({ apps: `apps: '${badGlob}' is not a service-name glob (letters, digits, _ . - * ?)` });
    try {
      if (bizId !== undefined) await requireBiz(c.var.deps.db, bizId);
      const created = await createCredential(c.var.deps.db, c.var.session.actor, { name, kind, bizId: kind === "agent" ? bizId : undefined, apps });
      return page(c, { created: { name: created.name, kind: created.kind, token: created.token } });
    } catch (e) {
      return page(c, { values: v, errors: errorsOf(e), status: 422 });
    }
  })
  .post("/ui/credentials/:id/revoke", async (c) => {
    const id = idParam(c, "id");
    try {
      if (!id) throw new Error("bad id");
      await announceRevocation(c.var.deps, await revokeCredential(c.var.deps.db, c.var.session.actor, id, c.var.deps.clock()));
    } catch (e) {
      return page(c, { errors: e instanceof Error && e.message === "bad id" ? { _form: "credential not found" } : errorsOf(e), status: 404 });
    }
    // The session was this credential's: it has ended with it, so the sign-in page says what happened.
    if (id === c.var.session.actor.credentialId) return c.redirect("/login?revoked=1", 303);
    return done(c, "/ui/credentials", "Credential revoked.");
  });
