/**
 * The Worker's floor for `npm run bench:feed -- --runtime worker`: a Worker and one Durable Object
 * in workerd through Miniflare (as the Worker under test runs), with no database, no auth and no
 * validation. The Worker forwards `GET .../release?current=` to the object, which holds it while
 * `current` is the target and answers every held poll with a manifest built once per publish on
 * `POST .../publishes`. `/metrics` reports `edgeconf_feed_waiting`. Loopback only.
 */
import { offlineWranglerEnv, workerdRssBytes } from "../test/helpers/worker";

const script = `
const manifest = (id) => JSON.stringify({ biz: 10, app: "service_bench", configType: "file", wait: 60,
  release: { id, name: "V" + id, publishId: id, publishedAt: new Date().toISOString() },
  files: [{ path: "/etc/bench", name: "app.conf", sha256: "0".repeat(64), size: 12, fileType: "text", permission: { user: "root", group: "root", privilege: "644" } }],
  hooks: { pre: null, post: null } });
export class Waiters {
  constructor() { this.held = new Set(); this.target = 1; this.body = manifest(1); }
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/wait") {
      if (Number(url.searchParams.get("current")) !== this.target) return new Response(this.body, { headers: { "content-type": "application/json" } });
      return new Promise((resolve) => {
        const done = (body) => {
          clearTimeout(timer);
          this.held.delete(done);
          resolve(body === null ? new Response(null, { status: 304 }) : new Response(body, { headers: { "content-type": "application/json" } }));
        };
        const timer = setTimeout(() => done(null), Number(url.searchParams.get("wait") ?? 30) * 1000);
        request.signal?.addEventListener("abort", () => done(null));
        this.held.add(done);
      });
    }
    if (url.pathname === "/notify") {
      this.body = manifest(++this.target);
      for (const done of [...this.held]) done(this.body);
      return Response.json({ id: this.target }, { status: 201 });
    }
    if (url.pathname === "/metrics") return new Response("edgeconf_feed_waiting " + this.held.size + "\\n");
    return new Response("", { status: 404 });
  }
}
export default {
  fetch(request, env) {
    const url = new URL(request.url);
    const stub = env.WAITERS.get(env.WAITERS.idFromName("service_bench"));
    if (url.pathname.endsWith("/release")) return stub.fetch("https://waiters/wait" + url.search, { signal: request.signal });
    if (url.pathname.endsWith("/publishes")) return stub.fetch("https://waiters/notify", { method: "POST" });
    if (url.pathname === "/metrics") return stub.fetch("https://waiters/metrics");
    return new Response("", { status: 404 });
  },
};
`;

/** Starts the floor Worker; `url` without a trailing slash. */
export async function startDurableObjectFloor(): Promise<{ url: string; rssBytes(): Promise<number>; stop(): Promise<void> }> {
  offlineWranglerEnv();
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    modules: true,
    script,
    compatibilityDate: "2026-04-01",
    compatibilityFlags: ["enable_request_signal"],
    durableObjects: { WAITERS: { className: "Waiters", useSQLite: true } },
    durableObjectsPersist: false,
    ...(process.env.EDGECONF_WORKER_INSPECTOR_PORT ? { inspectorPort: Number(process.env.EDGECONF_WORKER_INSPECTOR_PORT) } : {}),
  } as ConstructorParameters<typeof Miniflare>[0]);
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, rssBytes: workerdRssBytes, stop: () => mf.dispose() };
}
