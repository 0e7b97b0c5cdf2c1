import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApi } from "../helpers/app";
import { signedInConsole, type FormClient } from "../helpers/console";

let api: TestApi;
let web: FormClient;
const svc = "/ui/bizs/10/services";

beforeAll(async () => {
  ({ api, web } = await signedInConsole());
});
afterAll(() => api?.close());

const file = (fields: Record<string, string>) => ({ path: "/etc/nginx", name: "", user: "root", group: "root", privilege: "644", memo: "", content: "", ...fields });

describe("console services: happy paths", () => {
  it("creates a file service, adds text files, binds a script, creates and compares versions", async () => {
    expect((await web.post(svc, { name: "service_demo", configType: "file", memo: "nginx" })).status).toBe(303);
    const add = await web.post(`${svc}/service_demo/files/content`, file({ name: "nginx.conf", content: "worker_processes 1;\r\n" }));
    expect(add.status, add.html).toBe(303);
    expect((await web.post(`${svc}/service_demo/files/content`, file({ name: "mime.types", content: "types {}\n", privilege: "600" }))).status).toBe(303);
    const files = await api.call("GET", "/api/v1/bizs/10/apps/service_demo/files");
    expect(files.body.items.map((f: any) => `${f.path}/${f.name} ${f.privilege}`).sort()).toEqual(["/etc/nginx/mime.types 600", "/etc/nginx/nginx.conf 644"]);

    const script = await api.call("POST", "/api/v1/bizs/10/scripts", { name: "clean_tag", type: "shell", content: "#!/bin/bash\necho pre\n" });
    const page = await web.get(`${svc}/service_demo`);
    expect(page.html).toContain(`online ${script.body.onlineVersion.name}`);
    expect((await web.post(`${svc}/service_demo/hooks`, { pre: String(script.body.id), post: "" })).status).toBe(303);
    expect((await api.call("GET", "/api/v1/bizs/10/apps/service_demo/hooks")).body.pre.scriptName).toBe("clean_tag");

    const v1 = await web.post(`${svc}/service_demo/versions`, { name: "V1", memo: "" });
    expect(v1.status, v1.html).toBe(303);
    const nginx = files.body.items.find((f: any) => f.name === "nginx.conf");
    const edit = await web.get(`${svc}/service_demo/files/${nginx.id}`);
    expect(edit.html).toContain("worker_processes 1;");
    expect((await web.post(`${svc}/service_demo/files/${nginx.id}`, { user: "root", group: "root", privilege: "644", memo: "", content: "worker_processes 2;\n" })).status).toBe(303);
    expect((await web.post(`${svc}/service_demo/versions`, { name: "V2", memo: "" })).status).toBe(303);
    const versions = await api.call("GET", "/api/v1/bizs/10/apps/service_demo/versions");
    const [b, a] = versions.body.items;
    const diff = await web.get(`${svc}/service_demo/versions/diff?from=${a.id}&to=${b.id}`);
    expect(diff.html).toContain('<span class="del">-worker_processes 1;</span>');
    expect(diff.html).toContain('<span class="add">+worker_processes 2;</span>');
  });

  it("shows why scripts are unavailable on a kv service", async () => {
    expect((await web.post(svc, { name: "kv_demo", configType: "kv", memo: "" })).status).toBe(303);
    const page = await web.get(`${svc}/kv_demo`);
    expect(page.html).toMatch(/data-testid="scripts-unavailable">Scripts are unavailable here: service &#39;kv_demo&#39; is a kv service: scripts apply to file services only/);
  });
});

describe("console services: errors and security", () => {
  it("refuses a path-traversal file name with the message next to the field, keeping the form", async () => {
    expect((await web.post(svc, { name: "trav", configType: "file", memo: "" })).status).toBe(303);
    const r = await web.post(`${svc}/trav/files/content`, file({ name: "..", content: "x", memo: "kept" }));
    expect(r.status).toBe(400);
    expect(r.html).toMatch(/data-error-for="name">name: must not contain &#39;.&#39; or &#39;..&#39; segments/);
    expect(r.html).toContain('value="kept"');
    const dir = await web.post(`${svc}/trav/files/content`, file({ path: "/etc/../root", name: "x" }));
    expect(dir.status).toBe(400);
    expect(dir.html).toMatch(/data-error-for="path">path: /);
    expect((await api.call("GET", "/api/v1/bizs/10/apps/trav/files")).body.items).toEqual([]);
  });

  it("refuses a duplicate service name and a bad one with the message on the form", async () => {
    const dup = await web.post(svc, { name: "service_demo", configType: "file", memo: "" });
    expect(dup.status).toBe(409);
    expect(dup.html).toMatch(/data-error-for="name">name: a service named/);
    const bad = await web.post(svc, { name: "a b", configType: "file", memo: "" });
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('value="a b"');
  });

  it("refuses an empty draft version with the reason", async () => {
    const r = await web.post(`${svc}/trav/versions`, { name: "", memo: "" });
    expect(r.status).toBe(422);
    expect(r.html).toContain("draft is empty");
  });
});
