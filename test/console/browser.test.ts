/**
 * The seed's walk through the console in a real Chromium: sign in, scripts, a file service with
 * two files and both scripts, a version, a publish, then a real agent `pull` and the clients screen.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApi } from "../helpers/app";
import { chromiumMissing, consoleSession } from "../helpers/browser";

if (chromiumMissing) console.log(chromiumMissing);

let session: Awaited<ReturnType<typeof consoleSession>>;
let api: TestApi;
let server: Awaited<ReturnType<typeof consoleSession>>["server"];
let page: Page;
let tempDir: string;

const shot = (name: string) => session.shot(name);
const go = (p: string) => session.go(p);
/** Every console error the pages logged: CSP violations ("Refused to apply inline style…"), failed loads (a missing favicon), script errors. */
let consoleErrors: string[] = [];
let agentToken = "";

/** Whether the element is on screen now, where the eye is (not below the fold). */
const inView = (selector: string) =>
  page.locator(selector).first().evaluate((e) => {
    const r = e.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
  });

/** After an action: the page confirms it, on screen, with these words. */
async function confirmed(text: string | RegExp) {
  await page.waitForURL(/msg=/);
  expect(new URL(page.url()).searchParams.get("msg")).toBeTruthy(); // in the query, not swallowed by a #fragment
  const flash = page.locator(".flash[role=status]");
  await expect.poll(() => flash.textContent()).toMatch(text);
  expect(await inView(".flash[role=status]")).toBe(true);
}

const PRE = "#!/bin/bash\n# Clean up the tag file, created by the post-script after a pull\nif [[ -f ${bk_bscp_app_temp_dir}/tag ]];then\n  rm -f ";
const POST = "#!/bin/bash\n# Create a tag file after the configuration is pulled\necho \"${bk_bscp_current_version_name}\" >";

describe.skipIf(!!chromiumMissing)("console in a browser: the seed's flow", () => {
  beforeAll(async () => {
    session = await consoleSession();
    ({ api, server, page, consoleErrors } = session);
    tempDir = await mkdtemp(path.join(os.tmpdir(), "edgeconf-console-agent-"));
    console.log(`screenshots: ${session.shots}`);
  });
  afterAll(async () => {
    await session?.close();
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
      await confirmed(`Added /etc/nginx/${name}.`);
      expect(page.url()).toMatch(/\?msg=[^#]+#files$/);
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
    await confirmed("Scripts saved in the draft.");
    expect((await api.call("GET", "/api/v1/bizs/10/apps/service_demo/files")).body.items).toHaveLength(2);
    await shot("06-service");
    if (process.env.EDGECONF_DOCS_SCREENSHOTS) await page.screenshot({ path: path.resolve("docs/console.png"), fullPage: true });
  });

  it("deletes a file only after a confirm step, and says so where the eye is", async () => {
    await page.fill("#path", "/etc/nginx");
    await page.fill("#name", "extra.conf");
    await page.fill("#content", "# to delete\n");
    await page.click("text=Save file");
    await confirmed("Added /etc/nginx/extra.conf.");
    const row = page.locator('tr[data-file="/etc/nginx/extra.conf"]');
    await row.locator("summary", { hasText: "Delete…" }).click();
    expect(await row.textContent()).toContain("Delete /etc/nginx/extra.conf from the draft?");
    expect((await api.call("GET", "/api/v1/bizs/10/apps/service_demo/files")).body.items).toHaveLength(3); // the first click deleted nothing
    await row.locator("button", { hasText: "Yes, delete" }).click();
    await confirmed("File deleted.");
    expect((await api.call("GET", "/api/v1/bizs/10/apps/service_demo/files")).body.items).toHaveLength(2);
  });

  it("creates a version and publishes it after a review that lists what goes out", async () => {
    await page.fill("#version-name", "V1");
    await page.click("text=Create version from the draft");
    await confirmed("Version V1 created from the draft.");
    await shot("07-version");
    await page.click("text=Review and publish…");
    // Nothing is ticked beforehand: the review refuses to guess a target.
    await expect.poll(() => page.locator('[data-error-for="to"]').textContent()).toContain("tick all clients, or at least one group");
    await page.goBack();
    await page.check('input[name=to][value=all]');
    await page.click("text=Review and publish…");
    await page.waitForURL(/\/publish\?/);
    await expect.poll(() => page.locator("h1").textContent()).toContain("Publish service_demo V1 to all clients?");
    const contents = page.locator("[data-testid=version-contents]");
    expect(await contents.locator("tr[data-file]").allTextContents()).toEqual([expect.stringContaining("/etc/nginx/mime.types"), expect.stringContaining("/etc/nginx/nginx.conf")]);
    expect(await contents.locator("[data-hook=pre]").textContent()).toContain("clean_tag");
    expect(await contents.locator("[data-hook=post]").textContent()).toContain("write_tag");
    await shot("08-publish-confirm");
    await page.click("form.actions button[type=submit]");
    await confirmed("Published V1 to all clients.");
    expect(page.url()).toMatch(/#history$/);
    expect(await page.locator("tr[data-publish=V1]").count()).toBe(1);
  });

  it("refuses to create a version of an empty draft, with the reason in view", async () => {
    await go("/ui/bizs/10/services");
    await page.fill("#name", "empty_one");
    await page.click("text=Create service");
    await confirmed("Service empty_one created.");
    await page.click("text=Create version from the draft");
    await expect.poll(() => page.locator(".flash.error[role=alert]").textContent()).toContain("draft is empty");
    expect(await inView(".flash.error[role=alert]")).toBe(true);
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
    agentToken = token;
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
    expect(await row.locator("[data-state]").getAttribute("data-state")).toBe("applied");
    await shot("10-clients");
  });

  it("shows one status per client (a FAILED of its version is 'failed', never beside 'up to date'), and the fleet overview", async () => {
    const feed = (p: string, body: unknown) =>
      fetch(`${server.url}/feed/v1/bizs/10/apps/service_demo/${p}`, { method: "POST", headers: { authorization: `Bearer ${agentToken}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const v1 = (await api.call("GET", "/api/v1/bizs/10/apps/service_demo/versions")).body.items.find((r: { name: string }) => r.name === "V1").id;
    // host-2 applied V1's files but its post-script failed: current is V1, and it is failed, not applied.
    expect((await feed("events", { uid: "host-2", releaseId: v1, status: "SUCCESS", agentVersion: "0.1.0", mode: "watch", labels: { env: "prod" } })).status).toBe(202);
    expect((await feed("events", { uid: "host-2", releaseId: v1, status: "FAILED", message: "post-script exited with code 3: nginx -t failed", agentVersion: "0.1.0", mode: "watch", labels: { env: "prod" } })).status).toBe(202);
    expect((await feed("heartbeat", { uid: "host-3", currentReleaseId: null, agentVersion: "0.0.9", mode: "pull" })).status).toBe(204);

    await go("/ui/bizs/10/services/service_demo/clients");
    const failed = page.locator("tr[data-client=host-2]");
    await expect.poll(() => failed.count()).toBe(1);
    expect(await failed.locator("[data-state]").allTextContents()).toEqual(["failed"]);
    expect(await failed.textContent()).not.toMatch(/up to date|applied/);
    expect(await page.locator("tr[data-client=host-3] [data-state]").textContent()).toBe("pending");

    await go("/ui/bizs/10/services/service_demo/overview");
    const count = (st: string) => page.locator(`[data-state-count=${st}] strong`).textContent();
    expect([await count("applied"), await count("failed"), await count("pending"), await count("offline")]).toEqual(["1", "1", "1", "0"]);
    const versions = page.locator("[data-chart=versions]");
    expect(await versions.locator('tr[data-label="V1"] [data-count]').textContent()).toBe("2");
    expect(await versions.locator('tr[data-label="none yet"] [data-count]').textContent()).toBe("1");
    expect(await page.locator("[data-chart=failures] tr").first().textContent()).toContain("nginx -t failed");
    expect(await page.locator('[data-chart=agents] tr[data-label="0.1.0 (watch)"] [data-count]').textContent()).toBe("1");
    expect(await page.locator("[data-chart=timeline] li[data-publish=V1]").count()).toBe(1);
    await shot("10b-overview");
    // The README's picture: refreshed on request only, so test runs leave the repository alone.
    if (process.env.EDGECONF_DOCS_SCREENSHOTS) await page.screenshot({ path: path.resolve("docs/overview.png"), fullPage: true });
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
    await confirmed(/Group prod created/);
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
    await go("/ui/bizs/10/services/service_demo/overview");
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await shot("15-narrow-overview");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("publishes to a group only when the group alone is ticked; all clients plus a group is refused", async () => {
    const v1 = (await api.call("GET", "/api/v1/bizs/10/apps/service_demo/versions")).body.items.find((r: { name: string }) => r.name === "V1").id;
    await go(`/ui/bizs/10/services/service_demo/versions/${v1}`);
    await page.check('input[name=to][value=all]');
    await page.locator("label.choice", { hasText: "group prod" }).locator("input").check();
    await page.click("text=Review and publish…");
    await expect.poll(() => page.locator('[data-error-for="to"]').textContent()).toContain("tick either all clients or groups");
    expect(await page.locator("form[method=post] button", { hasText: "Publish" }).count()).toBe(0);
    await page.goBack();
    await page.uncheck('input[name=to][value=all]');
    await page.click("text=Review and publish…");
    await expect.poll(() => page.locator("h1").textContent()).toContain("to prod (env=prod)?");
    await page.click("form.actions button[type=submit]");
    await confirmed("Published V1 to prod (env=prod).");
    const latest = (await api.call("GET", "/api/v1/bizs/10/apps/service_demo/publishes")).body.items[0];
    expect([latest.toAll, latest.groups.map((g: { name: string }) => g.name)]).toEqual([false, ["prod"]]);
  });

  it("Save and publish… on an edited script version keeps the typed text and shows it in the review", async () => {
    const pre = (await api.call("GET", "/api/v1/bizs/10/scripts?search=clean_tag")).body.items[0];
    await go(`/ui/bizs/10/scripts/${pre.id}/versions/new`);
    await page.click("text=Create version");
    await confirmed(/created \(not deployed\)/);
    await page.locator("#content").press("Control+End");
    await page.locator("#content").pressSequentially("echo edited-before-publish\n");
    await page.click("text=Save and publish…");
    await confirmed("Saved; review the change and publish.");
    expect(page.url()).toMatch(/\/publish\?msg=/);
    expect(await page.locator("pre.diff").textContent()).toContain("+echo edited-before-publish");
    await page.click("form.actions button[type=submit]");
    await confirmed(/is online; .* was shut down\./);
  });

  it("revokes only after a confirm step; revoking your own token says so at sign-in", async () => {
    await go("/ui/credentials");
    await page.fill("#name", "ops");
    await page.selectOption("#kind", "admin");
    await page.click("text=Create token");
    const ops = (await page.locator("#new-token").textContent())!.trim();
    const own = (await api.call("GET", "/api/v1/credentials")).body.items.find((k: { name: string; kind: string }) => k.kind === "admin" && k.name !== "ops");
    const revoke = page.locator(`#revoke-${own.id}`);
    await revoke.locator("summary").click();
    expect(await revoke.textContent()).toContain("This is the token you signed in with");
    await shot("16-revoke-confirm");
    await revoke.locator("button", { hasText: "Yes, revoke" }).click();
    await page.waitForURL(/\/login\?revoked=1/);
    expect(await page.locator(".flash[role=status]").textContent()).toContain("You revoked the token you were signed in with");
    await page.fill("#token", ops);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/ui$/);
  });

  it("logged no console error on any screen: no CSP violation, no missing favicon", async () => {
    const favicon = await fetch(`${server.url}/favicon.ico`);
    expect([favicon.status, favicon.headers.get("content-type")]).toEqual([200, "image/svg+xml"]);
    expect(consoleErrors).toEqual([]);
  });
});
