/**
 * The seed's walk through the console in a real Chromium: sign in, scripts, a file service with
 * two files and both scripts, a version, a publish, then a real agent `pull` and the clients screen.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { chromiumMissing, launchBrowser, screensDir, startServer } from "../helpers/browser";

if (chromiumMissing) console.log(chromiumMissing);

let api: TestApi;
let server: Awaited<ReturnType<typeof startServer>>;
let browser: Browser;
let page: Page;
let shots: string;
let tempDir: string;

const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const go = (p: string) => page.goto(server.url + p);

const PRE = "#!/bin/bash\n# Clean up the tag file, created by the post-script after a pull\nif [[ -f ${bk_bscp_app_temp_dir}/tag ]];then\n  rm -f ";
const POST = "#!/bin/bash\n# Create a tag file after the configuration is pulled\necho \"${bk_bscp_current_version_name}\" >";

describe.skipIf(!!chromiumMissing)("console in a browser: the seed's flow", () => {
  beforeAll(async () => {
    api = await createTestApi();
    server = await startServer(api);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    shots = screensDir();
    tempDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-console-agent-"));
    console.log(`screenshots: ${shots}`);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await api?.close();
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  });

  it("signs in, creates a biz and a pre and a post script with a built-in variable inserted by click", async () => {
    await go("/");
    await shot("01-sign-in");
    await page.fill("#token", api.adminToken);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/ui$/);
    expect(page.url()).not.toContain(api.adminToken);
    await page.fill("#id", "10");
    await page.fill("#name", "demo");
    await page.click("text=Create biz");
    await page.waitForURL(/\/ui\/bizs\/10\/services/);

    for (const [name, tag, content, variable] of [
      ["clean_tag", "tag", PRE, "${bk_bscp_app_temp_dir}"],
      ["write_tag", "tag", POST, "${bk_bscp_app_temp_dir}"],
    ] as const) {
      await go("/ui/bizs/10/scripts/new");
      await page.fill("#name", name);
      await page.fill("#tags", `${tag}, seed`);
      await page.fill("#memo", `the seed's ${name}`);
      expect(await page.getAttribute("#versionName", "placeholder")).toMatch(/^v\d{14}$/);
      await page.fill("#content", content);
      await page.click(`button[data-insert="${variable}"]`);
      await page.locator("#content").press("End");
      await page.locator("#content").pressSequentially(name === "clean_tag" ? "/tag\nfi\n" : "/tag\n");
      if (name === "clean_tag") await shot("02-script-create");
      await page.click("text=Create script");
      await page.waitForURL(/\/scripts\/\d+\?msg=/);
    }
    const pre = await api.call("GET", "/api/v1/bizs/10/scripts?search=clean_tag");
    const v = await api.call("GET", `/api/v1/bizs/10/scripts/${pre.body.items[0].id}/versions/${pre.body.items[0].onlineVersion.id}`);
    expect(v.body.content).toBe(PRE + "${bk_bscp_app_temp_dir}/tag\nfi\n");
    await go("/ui/bizs/10/scripts?tag=tag");
    expect(await page.locator("table tbody tr").count()).toBe(2);
    await shot("03-script-list");
  });

  it("shows why an online script version cannot be edited", async () => {
    await go("/ui/bizs/10/scripts");
    await page.click("text=clean_tag");
    await page.locator("tr[data-version] a").first().click();
    await expect.poll(() => page.locator("[data-testid=locked-reason]").textContent()).toContain("an online version is immutable");
    expect(await page.locator("textarea").count()).toBe(0);
    await shot("04-script-version-locked");
  });

  it("creates a file service with two config files, refuses a path-traversal name on the form, binds both scripts", async () => {
    await go("/ui/bizs/10/services");
    await page.fill("#name", "service_demo");
    await page.selectOption("#configType", "file");
    await page.click("text=Create service");
    await page.waitForURL(/\/services\/service_demo/);
    for (const [name, text] of [
      ["nginx.conf", "worker_processes 1;\nevents { worker_connections 1024; }\n"],
      ["mime.types", "types { text/html html; }\n"],
    ]) {
      await page.fill("#path", "/etc/nginx");
      await page.fill("#name", name);
      await page.fill("#content", text);
      await page.click("text=Save file");
      await page.waitForURL(/msg=/);
    }
    await page.fill("#path", "/etc/nginx");
    await page.fill("#name", "..");
    await page.fill("#memo", "kept on error");
    await page.fill("#content", "root::0:0::/:/bin/sh\n");
    await page.click("text=Save file");
    await expect.poll(() => page.locator('[data-error-for="name"]').textContent()).toContain("must not contain '.' or '..' segments");
    expect(await page.inputValue("#memo")).toBe("kept on error");
    await shot("05-file-traversal-refused");

    await go("/ui/bizs/10/services/service_demo");
    const preValue = await page.locator("#pre option", { hasText: "clean_tag" }).getAttribute("value");
    const postValue = await page.locator("#post option", { hasText: "write_tag" }).getAttribute("value");
    expect(await page.locator("#pre option", { hasText: "clean_tag" }).textContent()).toMatch(/online v\d{14}/);
    await page.selectOption("#pre", preValue!);
    await page.selectOption("#post", postValue!);
    await page.click("text=Save scripts");
    await page.waitForURL(/msg=/);
    expect((await api.call("GET", "/api/v1/bizs/10/apps/service_demo/files")).body.items).toHaveLength(2);
    await shot("06-service");
  });

  it("creates a version and publishes it after a confirmation", async () => {
    await page.fill("#version-name", "V1");
    await page.click("text=Create version from the draft");
    await page.waitForURL(/\/versions\/\d+\?msg=/);
    await shot("07-version");
    await page.click("text=Review and publish…");
    await page.waitForURL(/\/publish\?/);
    await expect.poll(() => page.locator("h1").textContent()).toContain("Publish service_demo V1 to all clients?");
    await shot("08-publish-confirm");
    await page.click("form.actions button[type=submit]");
    await page.waitForURL(/#history|msg=/);
    expect(await page.locator("tr[data-publish=V1]").count()).toBe(1);
  });

  it("a real agent pull applies it, and the clients screen shows both scripts' exit codes", async () => {
    await go("/ui/credentials");
    await page.fill("#name", "hosts");
    await page.selectOption("#kind", "agent");
    await page.selectOption("#bizId", "10");
    await page.fill("#apps", "service_*");
    await page.click("text=Create token");
    const token = (await page.locator("#new-token").textContent())!.trim();
    expect(token).toMatch(/^ecg_/);
    await shot("09-credentials-token-once");

    const tsx = path.resolve("node_modules/.bin/tsx");
    const run = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(tsx, ["agent/main.ts", "pull", "--biz=10", "--app=service_demo", `--feed-addrs=127.0.0.1:${server.port}`, `--token=${token}`, `--temp-dir=${tempDir}`, "--labels=env=test", "--uid=host-1"], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as any).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(run.code, run.out).toBe(0);
    expect(await readFile(path.join(tempDir, "10/service_demo/files/etc/nginx/nginx.conf"), "utf8")).toContain("worker_processes 1;");
    expect((await readFile(path.join(tempDir, "10/service_demo/tag"), "utf8")).trim()).toBe("V1");

    await go("/ui/bizs/10/services/service_demo/clients");
    const row = page.locator("tr[data-client=host-1]");
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator("[data-exit=pre]").textContent()).toBe("0");
    expect(await row.locator("[data-exit=post]").textContent()).toBe("0");
    expect(await row.textContent()).toContain("SUCCESS");
    await shot("10-clients");
  });

  it("refuses a CSRF-less POST made from the signed-in page", async () => {
    await go("/ui/bizs/10/groups");
    // The page's own form, with its hidden CSRF field taken out before submitting.
    await page.fill("#name", "x");
    await page.evaluate(() => document.querySelectorAll('form[action="/ui/bizs/10/groups"] input[name=_csrf]').forEach((e) => e.remove()));
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.click("text=Create group")]);
    expect(response.status()).toBe(403);
    expect(await page.textContent("[role=alert]")).toContain("CSRF");
    expect((await api.call("GET", "/api/v1/bizs/10/groups")).body.items).toHaveLength(0);
  });

  it("groups, webhooks (secret once), audit log, and a narrow screen", async () => {
    await go("/ui/bizs/10/groups");
    await page.fill("#name", "prod");
    await page.fill("#selector", "env=prod");
    await page.click("text=Create group");
    await page.waitForURL(/msg=/);
    await shot("11-groups");
    await go("/ui/bizs/10/services/service_demo/webhooks");
    await page.fill("#name", "ci");
    await page.click("text=Create webhook");
    expect((await page.locator("#new-secret").textContent())!.trim().length).toBeGreaterThan(20);
    await shot("12-webhooks");
    await go("/ui/audit?biz=10");
    expect(await page.locator("text=publish.create").count()).toBeGreaterThan(0);
    await shot("13-audit");
    await page.setViewportSize({ width: 390, height: 844 });
    await go("/ui/bizs/10/scripts/new");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot("14-narrow-script-create");
  });
});
