/** A cookie-keeping form client for the console, over `app.request` (no server). */
import { expect } from "vitest";
import { createTestApi, type TestApi } from "./app";

export type FormClient = {
  get(path: string): Promise<{ status: number; html: string; headers: Headers }>;
  post(path: string, fields: Record<string, string>, opts?: { csrf?: boolean; headers?: Record<string, string> }): Promise<{ status: number; html: string; headers: Headers }>;
  csrf: string;
  cookies: Map<string, string>;
  signIn(token: string): Promise<{ status: number; html: string; headers: Headers }>;
};

export function formClient(request: (p: string, init?: RequestInit) => Promise<Response>, base = "http://localhost"): FormClient {
  const cookies = new Map<string, string>();
  const client: FormClient = {
    csrf: "",
    cookies,
    async get(path) {
      return send(path, { method: "GET" });
    },
    async post(path, fields, opts = {}) {
      const body = new URLSearchParams(fields);
      if (opts.csrf !== false && client.csrf && !("_csrf" in fields)) body.set("_csrf", client.csrf);
      return send(path, { method: "POST", body, headers: { "content-type": "application/x-www-form-urlencoded", ...opts.headers } });
    },
    async signIn(token) {
      const login = await client.get("/login");
      const loginCsrf = /name="_login" value="([^"]+)"/.exec(login.html)?.[1] ?? "";
      const r = await client.post("/login", { token, _login: loginCsrf });
      if (r.status === 303) {
        const ui = await client.get("/ui");
        client.csrf = /name="_csrf" value="([^"]+)"/.exec(ui.html)?.[1] ?? "";
      }
      return r;
    },
  };
  async function send(path: string, init: RequestInit & { headers?: Record<string, string> }) {
    const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
    if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await request(new URL(path, base).toString(), { ...init, headers, redirect: "manual" });
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(";");
      const [k, ...v] = pair.split("=");
      const value = v.join("=");
      const expired = attrs.some((a) => /max-age=0/i.test(a.trim())) || !value;
      if (expired) cookies.delete(k.trim());
      else cookies.set(k.trim(), value);
    }
    return { status: res.status, html: await res.text(), headers: res.headers };
  }
  return client;
}

/** The console suites' start: a fresh app with biz 10 ("demo") and a form client signed in with the admin token. */
export async function signedInConsole(): Promise<{ api: TestApi; web: FormClient }> {
  const api = await createTestApi();
  expect((await api.call("POST", "/api/v1/bizs", { id: 10, name: "demo" })).status).toBe(201);
  const web = formClient(api.request);
  expect((await web.signIn(api.adminToken)).status).toBe(303);
  return { api, web };
}
