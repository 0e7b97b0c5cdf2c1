import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApi } from "../helpers/app";
import { signedInConsole, type FormClient } from "../helpers/console";

let api: TestApi;
let web: FormClient;
const base = "/ui/bizs/10/scripts";

beforeAll(async () => {
  ({ api, web } = await signedInConsole());
});
afterAll(() => api?.close());

const pre = "#!/bin/bash\nrm -f ${bk_bscp_app_temp_dir}/tag\n";

async function createScript(name: string, extra: Record<string, string> = {}) {
  const r = await web.post(`${base}/new`, { name, type: "shell", tags: "tag, cleanup", memo: "removes the tag", versionName: "", content: pre, ...extra });
  expect(r.status, r.html).toBe(303);
  return Number(/scripts\/(\d+)/.exec(r.headers.get("location")!)![1]);
}

describe("console scripts: happy paths", () => {
  it("creates a script through the form; the list shows its category, online version and usage", async () => {
    const id = await createScript("clean_tag");
    const api1 = await api.call("GET", `/api/v1/bizs/10/scripts/${id}`);
    expect(api1.body).toMatchObject({ name: "clean_tag", tags: ["tag", "cleanup"], memo: "removes the tag", usageCount: 0 });
    expect(api1.body.onlineVersion.name).toMatch(/^v\d{14}$/);
    const list = await web.get(`${base}?tag=cleanup`);
    expect(list.html).toContain("clean_tag");
    expect(list.html).toContain(api1.body.onlineVersion.name);
    const none = await web.get(`${base}?search=nomatch`);
    expect(none.html).not.toContain(">clean_tag<");
  });

  it("makes a new version prefilled from the online one, publishes it after a diff, and rolls back", async () => {
    const id = await createScript("write_tag");
    const form = await web.get(`${base}/${id}/versions/new`);
    expect(form.html).toContain("rm -f ${bk_bscp_app_temp_dir}/tag");
    const made = await web.post(`${base}/${id}/versions/new`, { name: "v2", memo: "", content: pre + "echo done\r\n" });
    expect(made.status, made.html).toBe(303);
    const vid = Number(/versions\/(\d+)/.exec(made.headers.get("location")!)![1]);
    const confirm = await web.get(`${base}/${id}/versions/${vid}/publish`);
    expect(confirm.html).toContain('<span class="add">+echo done</span>');
    expect((await web.post(`${base}/${id}/versions/${vid}/publish`, {})).status).toBe(303);
    const v = await api.call("GET", `/api/v1/bizs/10/scripts/${id}/versions/${vid}`);
    expect(v.body).toMatchObject({ state: "deployed", content: pre + "echo done\n" });
    const versions = await api.call("GET", `/api/v1/bizs/10/scripts/${id}/versions`);
    const first = versions.body.items.find((x: any) => x.id !== vid);
    expect(first.state).toBe("shutdown");
    const rollback = await web.get(`${base}/${id}/versions/${first.id}/publish`);
    expect(rollback.html).toContain("Roll back");
    expect((await web.post(`${base}/${id}/versions/${first.id}/publish`, {})).status).toBe(303);
    expect((await api.call("GET", `/api/v1/bizs/10/scripts/${id}`)).body.onlineVersion.id).toBe(first.id);
  });
});

describe("console scripts: errors", () => {
  it("keeps every typed value and shows the message next to the field on a validation error", async () => {
    const r = await web.post(`${base}/new`, { name: "../evil", type: "python", tags: "a, b", memo: "kept memo", versionName: "", content: "print(1)" });
    expect(r.status).toBe(400);
    expect(r.html).toMatch(/data-error-for="name">name: /);
    expect(r.html).toContain('value="../evil"');
    expect(r.html).toContain('value="kept memo"');
    expect(r.html).toContain("print(1)</textarea>");
    expect(r.html).toMatch(/<option value="python" selected/);
  });

  it("shows the verb's refusal in words: duplicate name, empty content", async () => {
    await createScript("dup_name");
    const dup = await web.post(`${base}/new`, { name: "dup_name", type: "shell", tags: "", memo: "", versionName: "", content: pre });
    expect(dup.status).toBe(409);
    expect(dup.html).toMatch(/data-error-for="name">name: a script named &#39;dup_name&#39; exists already/);
    const empty = await web.post(`${base}/new`, { name: "empty_one", type: "shell", tags: "", memo: "", versionName: "", content: "  " });
    expect(empty.status).toBe(400);
    expect(empty.html).toMatch(/data-error-for="content">content: script content must not be empty/);
  });

  it("says why an online version cannot be edited, and the verb refuses a forced edit with the reason", async () => {
    const id = await createScript("locked");
    const s = await api.call("GET", `/api/v1/bizs/10/scripts/${id}`);
    const page = await web.get(`${base}/${id}/versions/${s.body.onlineVersion.id}`);
    expect(page.html).toContain("This version is online, and an online version is immutable");
    expect(page.html).not.toContain("<textarea");
    const forced = await web.post(`${base}/${id}/versions/${s.body.onlineVersion.id}`, { name: "x", memo: "", content: "echo x" });
    expect(forced.status).toBe(422);
    expect(forced.html).toContain("it is online, and an online version is immutable");
  });

  it("refuses a second not-deployed version with the reason on the form", async () => {
    const id = await createScript("pending");
    expect((await web.post(`${base}/${id}/versions/new`, { name: "", memo: "", content: "echo 1" })).status).toBe(303);
    const second = await web.post(`${base}/${id}/versions/new`, { name: "", memo: "", content: "echo 2" });
    expect(second.status).toBe(422);
    expect(second.html).toContain("already has a not-deployed version");
    expect(second.html).toContain("echo 2</textarea>");
  });
});
