import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { formClient } from "../helpers/console";

let api: TestApi;
let agentToken: string;

beforeAll(async () => {
  api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" })).status).toBe(201);
  const agent = await api.call("POST", "/api/v1/credentials", { name: "hosts", kind: "agent", bizId: 10 });
  agentToken = agent.body.token;
});
afterAll(() => api?.close());

describe("console sign-in: happy paths", () => {
  it("redirects to the sign-in page without a session, and signs in with an admin token", async () => {
    const web = formClient(api.request);
    expect((await web.get("/")).headers.get("location")).toBe("/login");
    expect((await web.get("/ui/bizs/10/scripts")).headers.get("location")).toBe("/login");
    const r = await web.signIn(api.adminToken);
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/ui");
    const page = await web.get("/ui/bizs/10/scripts");
    expect(page.status).toBe(200);
    expect(page.html).toContain("Pre/post scripts");
    expect(web.csrf.length).toBeGreaterThan(16);
  });

  it("serves its CSS and JS from the app itself, and the API still answers JSON", async () => {
    const css = await api.request("/ui/assets/console.css");
    expect(css.headers.get("content-type")).toMatch(/text\/css/);
    const js = await api.request("/ui/assets/console.js");
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect((await api.call("GET", "/api/v1/nope")).body.error.code).toBe("not_found");
    expect((await api.call("GET", "/healthz", undefined, { token: null })).status).toBe(200);
  });

  it("signs out: the session stops working at once", async () => {
    const web = formClient(api.request);
    await web.signIn(api.adminToken);
    const sessionCookie = web.cookies.get("edgeconf_session")!;
    const out = await web.post("/logout", {});
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toMatch(/^\/login/);
    const again = await api.request("/ui", { headers: { cookie: `edgeconf_session=${sessionCookie}` }, redirect: "manual" });
    expect(again.status).toBe(303);
  });
});

describe("console sign-in: errors", () => {
  it("refuses an unknown token with the reason next to the field", async () => {
    const web = formClient(api.request);
    const r = await web.signIn("eca_not-a-real-token");
    expect(r.status).toBe(401);
    expect(r.html).toContain("unknown or has been revoked");
    expect(web.cookies.has("edgeconf_session")).toBe(false);
  });

  it("refuses agent tokens: they are for the feed", async () => {
    const web = formClient(api.request);
    const r = await web.signIn(agentToken);
    expect(r.status).toBe(401);
    expect(r.html).toContain("Only admin tokens can sign in");
    expect(web.cookies.has("edgeconf_session")).toBe(false);
  });

  it("ends the session when its credential is revoked", async () => {
    const made = await api.call("POST", "/api/v1/credentials", { name: "temp-admin", kind: "admin" });
    const web = formClient(api.request);
    await web.signIn(made.body.token);
    expect((await web.get("/ui")).status).toBe(200);
    await api.call("DELETE", `/api/v1/credentials/${made.body.id}`);
    expect((await web.get("/ui")).status).toBe(303);
  });
});

describe("console sign-in: security", () => {
  it("sets the session cookie HttpOnly, SameSite=Strict, Path=/ — and Secure only over HTTPS", async () => {
    const web = formClient(api.request);
    await web.get("/login");
    const login = await web.get("/login");
    const loginCsrf = /name="_login" value="([^"]+)"/.exec(login.html)![1];
    const r = await web.post("/login", { token: api.adminToken, _login: loginCsrf });
    const cookie = r.headers.getSetCookie().find((c) => c.startsWith("edgeconf_session="))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toMatch(/Secure/);

    const https = formClient(api.request, "https://console.example");
    await https.signIn(api.adminToken);
    const httpsLogin = await https.get("/login");
    expect(httpsLogin.status).toBe(303); // signed in already
    const web2 = formClient(api.request, "https://console.example");
    const l2 = await web2.get("/login");
    const c2 = /name="_login" value="([^"]+)"/.exec(l2.html)![1];
    const r2 = await web2.post("/login", { token: api.adminToken, _login: c2 });
    const cookie2 = r2.headers.getSetCookie().find((c) => c.startsWith("edgeconf_session="))!;
    expect(cookie2).toMatch(/Secure/);
  });

  it("stores only the SHA-256 of the session id, and never puts the token in a page or a URL", async () => {
    const web = formClient(api.request);
    const r = await web.signIn(api.adminToken);
    expect(r.headers.get("location")).not.toContain(api.adminToken);
    const id = web.cookies.get("edgeconf_session")!;
    const rows = (await api.deps.db.execute(`select id_hash from sessions`)) as any;
    const hashes: string[] = (rows.rows ?? rows).map((x: any) => x.id_hash);
    expect(hashes).not.toContain(id);
    const { sha256Hex } = await import("../../functions/core/crypto");
    expect(hashes).toContain(await sha256Hex(id));
    for (const p of ["/ui", "/ui/credentials", "/ui/audit", "/ui/bizs/10/scripts"]) expect((await web.get(p)).html).not.toContain(api.adminToken);
  });

  it("refuses a POST without the CSRF token (403), and one with a wrong token", async () => {
    const web = formClient(api.request);
    await web.signIn(api.adminToken);
    const none = await web.post("/ui/bizs", { id: "11", name: "nocsrf" }, { csrf: false });
    expect(none.status).toBe(403);
    expect(none.html).toContain("CSRF");
    const wrong = await web.post("/ui/bizs", { id: "11", name: "nocsrf", _csrf: "x".repeat(32) });
    expect(wrong.status).toBe(403);
    expect((await api.call("GET", "/api/v1/bizs")).body.items.map((b: any) => b.id)).not.toContain(11);
    const out = await web.post("/logout", {}, { csrf: false });
    expect(out.status).toBe(403);
  });

  it("refuses a cross-site POST by its Origin even with a valid CSRF token", async () => {
    const web = formClient(api.request);
    await web.signIn(api.adminToken);
    const r = await web.post("/ui/bizs", { id: "12", name: "xsite" }, { headers: { origin: "https://evil.example" } });
    expect(r.status).toBe(403);
  });

  it("refuses a sign-in POST without the sign-in form's token", async () => {
    const web = formClient(api.request);
    const r = await web.post("/login", { token: api.adminToken });
    expect(r.status).toBe(403);
    expect(web.cookies.has("edgeconf_session")).toBe(false);
  });

  it("sends a strict Content-Security-Policy and no-store on console pages", async () => {
    const r = await api.request("/login");
    expect(r.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
    expect(r.headers.get("cache-control")).toBe("no-store");
  });
});
