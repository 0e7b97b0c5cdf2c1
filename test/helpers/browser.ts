import { existsSync, mkdirSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { serve } from "@hono/node-server";
import { chromium, type Browser, type Page } from "playwright-core";
import { createApp } from "../../functions/app";
import type { TestApi } from "./app";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const chromiumMissing = existsSync(CHROMIUM) ? null : `browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;

const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/**
 * The test app over real HTTP on loopback (agents and the browser talk to it): on the worker runtime
 * the Worker already listens; on Node it is served on a free port.
 */
export async function startServer(api: TestApi): Promise<{ url: string; port: number; close(): Promise<void> }> {
  if (api.baseUrl) return { url: api.baseUrl, port: Number(new URL(api.baseUrl).port), close: async () => {} };
  const app = createApp(api.deps);
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        port: info.port,
        close: () => new Promise<void>((done) => (server.closeAllConnections?.(), server.close(() => done()))),
      });
    }) as import("node:http").Server;
  });
}

/** Where screenshots go (gitignored); printed by the tests. */
export function screensDir(): string {
  const dir = path.resolve("test-results/screens");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Collects every console error the page logs: CSP violations ("Refused to apply inline style…"),
 * failed loads (a missing favicon), script errors. A refused form answering 4xx is on purpose
 * (the page shows why) and is left out; a 4xx on an asset is not.
 */
export function collectConsoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const refusedPage = /Failed to load resource: the server responded with a status of 4\d\d/.test(m.text()) && !/\/(favicon\.ico|ui\/assets\/)/.test(m.location().url);
    if (!refusedPage) errors.push(`${page.url()}: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));
  return errors;
}

/**
 * A browser suite's start: a fresh test app served over loopback, Chromium with one 1280×900 page
 * whose console errors are collected, and the screenshots folder. `go(path)` opens a page of the
 * server, `shot(name)` saves `<name>.png`; `close()` ends all of it.
 */
export async function consoleSession() {
  const { createTestApi } = await import("./app");
  const api = await createTestApi();
  const server = await startServer(api);
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleErrors = collectConsoleErrors(page);
  const shots = screensDir();
  return {
    api,
    server,
    browser,
    page,
    consoleErrors,
    shots,
    go: (p: string) => page.goto(server.url + p),
    shot: (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true }),
    async close() {
      await browser.close();
      await server.close();
      await api.close();
    },
  };
}
