/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import type { ConsoleEnv } from "./env";
import { Layout } from "./layout";
import { checkLoginCsrf, currentSession, loginCsrf, signIn, signOut } from "./session";

const LoginPage = (p: { csrf: string; error?: string; notice?: string }) => (
  <Layout title="Sign in">
    <div class="login card">
      <h1>edgeconf console</h1>
      {p.notice ? <div class="flash" role="status">{p.notice}</div> : null}
      <form method="post" action="/login" autocomplete="off">
        <input type="hidden" name="_login" value={p.csrf} />
        <label for="token">
          Admin token <span class="hint">printed once at the first start, or made on the Credentials screen</span>
        </label>
        <input type="password" id="token" name="token" required autofocus class={p.error ? "invalid" : ""} />
        {p.error ? <p class="field-error" role="alert" data-error-for="token">{p.error}</p> : null}
        <div class="actions">
          <button type="submit">Sign in</button>
        </div>
      </form>
      <p class="small muted">The token is exchanged for a session cookie and is never kept in the page or the address.</p>
    </div>
  </Layout>
);

/** `/`, `/login`, `/logout`: the only console routes reachable without a session. */
export const authRoutes = new Hono<ConsoleEnv>()
  .get("/", async (c) => c.redirect((await currentSession(c)) ? "/ui" : "/login", 303))
  .get("/login", async (c) => {
    if (await currentSession(c)) return c.redirect("/ui", 303);
    return c.html(<LoginPage csrf={loginCsrf(c)} notice={c.req.query("revoked") ? "You revoked the token you were signed in with, so that session has ended. Sign in with another admin token." : c.req.query("out") ? "Signed out." : undefined} />);
  })
  .post("/login", async (c) => {
    const body = await c.req.parseBody();
    const token = typeof body.token === "string" ? body.token : "";
    if (!checkLoginCsrf(c, typeof body._login === "string" ? body._login : "")) {
      return c.html(<LoginPage csrf={loginCsrf(c)} error="The sign-in form expired; please try again." />, 403);
    }
    if (!token.trim()) return c.html(<LoginPage csrf={loginCsrf(c)} error="token: enter an admin token." />, 400);
    const r = await signIn(c, token);
    if (!r.ok && r.retryAfterSeconds) {
      c.header("Retry-After", String(r.retryAfterSeconds));
      return c.html(<LoginPage csrf={loginCsrf(c)} error={r.reason} />, 429);
    }
    if (!r.ok) return c.html(<LoginPage csrf={loginCsrf(c)} error={r.reason} />, 401);
    return c.redirect("/ui", 303);
  });

/** Sign-out goes through the session's CSRF check like every other POST (mounted behind it). */
export const logoutRoute = new Hono<ConsoleEnv>().post("/logout", async (c) => {
  await signOut(c, c.var.deps.db, c.var.session.idHash);
  return c.redirect("/login?out=1", 303);
});
