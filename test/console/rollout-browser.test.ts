/**
 * Rollouts in the console, in a real Chromium: start one from the publish form (defaults shown),
 * the rollout page's bar per wave, failing hosts with reason and output tail, the controls (each
 * saying what it did), the service screens naming the open rollout, and no console error (CSP).
 * Clients are made through the feed as agents would (heartbeats, events), on a real server.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApi } from "../helpers/app";
import { chromiumMissing, consoleSession } from "../helpers/browser";

if (chromiumMissing) console.log(chromiumMissing);

const BIZ = 14;
const APP = "edge_web";
const CLIENTS = Array.from({ length: 10 }, (_, i) => `web-${String(i + 1).padStart(2, "0")}`);

let session: Awaited<ReturnType<typeof consoleSession>>;
let api: TestApi;
let page: Page;
let agentToken = "";
let v1 = 0;
let v2 = 0;
let rolloutPath = "";
let consoleErrors: string[] = [];

const go = (p: string) => session.go(p);
const shot = (name: string) => session.shot(name);
const svc = `/ui/bizs/${BIZ}/services/${APP}`;
const feed = (p: string, init: RequestInit = {}) => fetch(`${session.server.url}/feed/v1/bizs/${BIZ}/apps/${APP}/${p}`, { ...init, headers: { authorization: `Bearer ${agentToken}`, "content-type": "application/json" } });
const post = (p: string, body: unknown) => feed(p, { method: "POST", body: JSON.stringify(body) });

/** After an action: the next page confirms it on screen with these words. */
async function confirmed(text: string | RegExp) {
  await page.waitForURL(/msg=/);
  await expect.poll(() => page.locator(".flash[role=status]").textContent()).toMatch(text);
}
const state = () => page.locator("[data-rollout-state]").getAttribute("data-rollout-state");
const wave = (n: number, what: string) => page.locator(`tr[data-wave="${n}"] [data-count=${what}]`).textContent();

describe.skipIf(!!chromiumMissing)("console: progressive rollouts in a browser", () => {
  beforeAll(async () => {
    session = await consoleSession();
    ({ api, page, consoleErrors } = session);

    expect((await api.call("POST", "/api/v1/bizs", { id: BIZ, name: "rollouts" })).status).toBe(201);
    expect((await api.call("POST", `/api/v1/bizs/${BIZ}/apps`, { name: APP, configType: "file" })).status).toBe(201);
    const put = await api.request(`/api/v1/bizs/${BIZ}/apps/${APP}/files/content?path=/etc/web/web.conf`, { method: "PUT", headers: { authorization: `Bearer ${api.adminToken}` }, body: "v=1\n" });
    expect(put.status).toBeLessThan(300);
    v1 = (await api.call("POST", `/api/v1/bizs/${BIZ}/apps/${APP}/versions`, { name: "V1" })).body.id;
    expect((await api.call("POST", `/api/v1/bizs/${BIZ}/apps/${APP}/publishes`, { versionId: v1 })).status).toBe(201);
    await api.request(`/api/v1/bizs/${BIZ}/apps/${APP}/files/content?path=/etc/web/web.conf`, { method: "PUT", headers: { authorization: `Bearer ${api.adminToken}` }, body: "v=2\n" });
    v2 = (await api.call("POST", `/api/v1/bizs/${BIZ}/apps/${APP}/versions`, { name: "V2" })).body.id;
    agentToken = (await api.call("POST", "/api/v1/credentials", { name: "rollout-agents", kind: "agent", bizId: BIZ, apps: [APP] })).body.token;
    // Ten clients on V1, online.
    for (const uid of CLIENTS) {
      expect((await post("events", { uid, releaseId: v1, status: "SUCCESS", agentVersion: "0.1.0", mode: "watch", labels: { role: "web" } })).status).toBe(202);
      expect((await post("heartbeat", { uid, currentReleaseId: v1, labels: { role: "web" } })).status).toBe(204);
    }

    await go("/");
    await page.fill("#token", api.adminToken);
    await page.click("button[type=submit]");
    await page.waitForURL(/\/ui$/);
  }, 60_000);

  afterAll(() => session?.close());

  it("starts a rollout from the publish form: defaults shown, the review states the waves and settings", async () => {
    await go(`${svc}/versions/${v2}`);
    const fields = page.locator("[data-testid=rollout-fields]");
    expect(await fields.locator("#rollout-waves").inputValue()).toBe("5, 25, 100");
    expect(await fields.locator("#rollout-bakeSeconds").inputValue()).toBe("60");
    expect(await fields.locator("#rollout-maxFailurePercent").inputValue()).toBe("0");
    expect(await fields.locator("#rollout-reportTimeoutSeconds").inputValue()).toBe("300");
    expect(await fields.locator("input[name=autoRollback]").isChecked()).toBe(true);

    // A wave list not ending at 100 is refused on the review, naming the field.
    await page.check("input[name=to][value=all]");
    await page.check("input[name=how][value=waves]");
    await page.fill("#rollout-waves", "50, 90");
    await page.click("text=Review and publish…");
    await expect.poll(() => page.locator('[data-error-for="waves"]').textContent()).toContain("last wave must be 100");
    await page.goBack();

    await page.check("input[name=to][value=all]");
    await page.check("input[name=how][value=waves]");
    await page.fill("#rollout-waves", "50, 100");
    await page.fill("#rollout-bakeSeconds", "3600");
    await page.uncheck("input[name=autoRollback]");
    await page.click("text=Review and publish…");
    await expect.poll(() => page.locator("h1").textContent()).toContain(`Roll out ${APP} V2 to all clients in waves?`);
    expect(await page.locator("[data-testid=rollout-settings]").textContent()).toContain("waves 50%, 100% · bake 3600 s · at most 0% failures per wave · report within 300 s · no auto rollback");
    await page.click("form.actions button[type=submit]");
    await confirmed(/Started rollout \d+ of V2: wave 1 of 2 \(50% of the targeted clients\) released\./);
    rolloutPath = new URL(page.url()).pathname;
    expect(rolloutPath).toMatch(new RegExp(`${svc}/rollouts/\\d+$`));
  });

  it("the rollout page shows one bar per wave, and the service screens link to the running rollout", async () => {
    await go(rolloutPath);
    expect(await state()).toBe("running");
    expect(await page.locator("tr[data-wave]").count()).toBe(2);
    expect(await page.locator('tr[data-wave="1"]').getAttribute("data-released")).toBe("true");
    expect(await page.locator('tr[data-wave="2"]').getAttribute("data-released")).toBe("false");
    expect(await wave(2, "targeted")).toBe(String(CLIENTS.length));
    expect(await page.locator('tr[data-wave="1"] svg.bar').count()).toBe(1);
    expect(await page.locator("[data-testid=rollout-controls] button", { hasText: "Pause" }).count()).toBe(1);
    await shot("rollout-01-running");
    for (const screen of [svc, `${svc}/overview`]) {
      await go(screen);
      const banner = page.locator("[data-testid=open-rollout]");
      expect(await banner.textContent()).toMatch(/Rollout \d+ of V2 is running: wave 1 of 2 \(50%\) released\./);
      await banner.locator("a").click();
      await page.waitForURL((u) => u.pathname === rolloutPath);
    }
  });

  it("pause and resume say what they did", async () => {
    await go(rolloutPath);
    await page.click("[data-testid=rollout-controls] button:has-text('Pause')");
    await confirmed(/Paused rollout \d+: no further wave starts; hosts already released keep V2\./);
    expect(await state()).toBe("paused");
    await page.click("[data-testid=rollout-controls] button:has-text('Resume')");
    await confirmed(/Resumed rollout \d+: running again at wave 1 \(50%\)\./);
    expect(await state()).toBe("running");
  });

  it("a failing host of wave 1 halts it: the page names it with the reason and the pre-script's output tail", async () => {
    // Which clients the feed gives V2 now: wave 1.
    const inWave1: string[] = [];
    for (const uid of CLIENTS) {
      const r = await feed(`release?uid=${uid}&labels=role%3Dweb&current=${v1}&wait=0`);
      await r.body?.cancel();
      if (r.headers.get("etag") === `"r${v2}"`) inWave1.push(uid);
    }
    expect(inWave1.length).toBeGreaterThan(0);
    expect(inWave1.length).toBeLessThan(CLIENTS.length);
    const [bad, ...good] = inWave1;
    for (const uid of good) expect((await post("events", { uid, releaseId: v2, status: "SUCCESS", labels: { role: "web" } })).status).toBe(202);
    const preHook = { exitCode: 3, durationMs: 40, outputTail: "checking upstreams\nupstream web-pool unreachable: connection refused" };
    expect((await post("events", { uid: bad, releaseId: v2, status: "FAILED", message: "pre-script exited with code 3", preHook, labels: { role: "web" } })).status).toBe(202);

    await go(rolloutPath);
    await expect.poll(async () => (await page.reload(), await state()), { timeout: 15_000 }).toBe("halted");
    const row = page.locator(`tr[data-failing="${bad}"]`);
    expect(await row.textContent()).toContain("pre-script exited with code 3");
    expect(await row.locator("pre.tail").textContent()).toContain("upstream web-pool unreachable: connection refused");
    expect(await wave(1, "failed")).toBe("1");
    expect(await wave(1, "succeeded")).toBe(String(good.length));
    await shot("rollout-02-halted");
  });

  it("advance and abort go through a confirm step and say what they did; an ended rollout has no controls", async () => {
    await page.click("#advance summary");
    expect(await page.locator("#advance .confirm-box").textContent()).toContain("Release wave 2 (100% of the clients) now?");
    await page.click("#advance button[type=submit]");
    await confirmed(/Advanced rollout \d+: wave 2 \(100%\) released\./);
    expect(await page.locator('tr[data-wave="2"]').getAttribute("data-released")).toBe("true");
    await page.click("#abort summary");
    await page.click("#abort button[type=submit]");
    await confirmed(/Aborted rollout \d+: hosts already released keep V2\./);
    expect(await state()).toBe("aborted");
    expect(await page.locator("[data-testid=rollout-controls]").count()).toBe(0);
    await go(svc);
    expect(await page.locator("[data-testid=open-rollout]").count()).toBe(0);
    // The publish history names the rollout that made the publish, with a link to it.
    expect(await page.locator(`tr[data-publish=V2] a[href="${rolloutPath}"]`).count()).toBe(1);
    await go(`${svc}/rollouts`);
    expect(await page.locator("tr[data-rollout] .badge").first().textContent()).toBe("aborted");
    await shot("rollout-03-list");
  });

  it("logged no console error on any rollout screen (no CSP violation)", () => {
    expect(consoleErrors).toEqual([]);
  });
});
