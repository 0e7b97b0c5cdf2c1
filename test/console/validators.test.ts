import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestApi } from "../helpers/app";
import { signedInConsole, type FormClient } from "../helpers/console";
import { seedService } from "../helpers/seed";

let api: TestApi;
let web: FormClient;
const svc = "/ui/bizs/10/services";

beforeAll(async () => {
  ({ api, web } = await signedInConsole());
});
afterAll(() => api?.close());

describe("console validators", () => {
  it("adds validators on the service page, shows a refused version's failures beside the files, and the passed checks in the publish review", async () => {
    await seedService(api, 10, "web", [
      { path: "/etc/app/server.json", content: '{\n  "port": 70000\n}\n' },
      { path: "/etc/app/extra.yaml", content: "a: [1\n" },
    ]);
    const schema = JSON.stringify({ type: "object", properties: { port: { type: "integer", maximum: 65535 } } });
    expect((await web.post(`${svc}/web/validators`, { pathGlob: "*.json", kind: "jsonschema", schema, memo: "port range" })).status).toBe(303);
    expect((await web.post(`${svc}/web/validators`, { pathGlob: "*.yaml", kind: "yaml", schema: "", memo: "" })).status).toBe(303);
    const page = await web.get(`${svc}/web`);
    expect(page.html).toContain('data-validator="*.json"');
    expect(page.html).toContain('data-validator="*.yaml"');

    const refused = await web.post(`${svc}/web/versions`, { name: "V1", memo: "" });
    expect(refused.status).toBe(422);
    expect(refused.html).toMatch(/data-failures-for="\/etc\/app\/server.json"><li>jsonschema line 2: \/port: 70000 is greater than 65535.<\/li>/);
    expect(refused.html).toContain('data-failures-for="/etc/app/extra.yaml"');
    expect((await api.call("GET", "/api/v1/bizs/10/apps/web/versions")).body.total).toBe(0);

    await api.call("PUT", `/api/v1/bizs/10/apps/web/files/content?path=${encodeURIComponent("/etc/app/server.json")}`, '{"port": 443}');
    await api.call("PUT", `/api/v1/bizs/10/apps/web/files/content?path=${encodeURIComponent("/etc/app/extra.yaml")}`, "a: [1]\n");
    expect((await web.post(`${svc}/web/versions`, { name: "V1", memo: "" })).status).toBe(303);
    const v = (await api.call("GET", "/api/v1/bizs/10/apps/web/versions")).body.items[0];
    const review = await web.get(`${svc}/web/versions/${v.id}/publish?to=all`);
    expect(review.html).toMatch(/data-testid="validation">✓ Passed validation: jsonschema on \*.json \(1 file\), yaml on \*.yaml \(1 file\)/);
  });

  it("refuses a schema that is not JSON or not a JSON Schema next to the field, and deletes a validator", async () => {
    await seedService(api, 10, "other");
    const notJson = await web.post(`${svc}/other/validators`, { pathGlob: "*.json", kind: "jsonschema", schema: "{type:", memo: "" });
    expect(notJson.status).toBe(400);
    expect(notJson.html).toMatch(/data-error-for="schema">schema: is not JSON/);
    const notSchema = await web.post(`${svc}/other/validators`, { pathGlob: "*.json", kind: "jsonschema", schema: '{"type":"strin"}', memo: "" });
    expect(notSchema.status).toBe(400);
    expect(notSchema.html).toMatch(/data-error-for="schema">schema: is not a valid JSON Schema/);
    expect((await web.post(`${svc}/other/validators`, { pathGlob: "*.toml", kind: "toml", schema: "", memo: "" })).status).toBe(303);
    const [v] = (await api.call("GET", "/api/v1/bizs/10/apps/other/validators")).body.items;
    expect((await web.post(`${svc}/other/validators/${v.id}/delete`, {})).status).toBe(303);
    expect((await api.call("GET", "/api/v1/bizs/10/apps/other/validators")).body.items).toEqual([]);
  });
});
