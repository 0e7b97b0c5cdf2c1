import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";

let api: TestApi;

beforeAll(async () => {
  api = await createTestApi();
});
afterAll(() => api?.close());

describe("errors and self-description", () => {
  it("answers unknown routes with a JSON 404", async () => {
    const res = await api.call("GET", "/api/v1/nothing-here");
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: "not_found" });
    const root = await api.call("DELETE", "/no/such/route", undefined, { token: null });
    expect(root.status).toBe(404);
    expect(root.body.error.code).toBe("not_found");
  });

  it("refuses oversized JSON bodies with 413 and stores nothing", async () => {
    const big = JSON.stringify({ id: 77, name: "x".repeat(3 * 1024 * 1024) });
    const res = await api.call("POST", "/api/v1/bizs", big, { headers: { "content-type": "application/json" } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("payload_too_large");
    const bizs = await api.call("GET", "/api/v1/bizs");
    expect(bizs.body.items.find((b: any) => b.id === 77)).toBeUndefined();
  });

  it("refuses malformed JSON and wrong content with 400, and never shows a stack trace", async () => {
    const res = await api.call("POST", "/api/v1/bizs", "{not json", { headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_argument");
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
    const wrongType = await api.call("POST", "/api/v1/bizs", { id: "ten", name: "x" });
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error.message).toMatch(/^id: /);
  });

  it("refuses a duplicate biz", async () => {
    expect((await api.call("POST", "/api/v1/bizs", { id: 5, name: "five" })).status).toBe(201);
    const dup = await api.call("POST", "/api/v1/bizs", { id: 5, name: "five again" });
    expect(dup.status).toBe(409);
    expect(dup.body.error.message).toMatch(/^id: /);
  });

  it("serves health, the OpenAPI document and a reference page without a token", async () => {
    const health = await api.call("GET", "/healthz", undefined, { token: null });
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("ok");
    const doc = await api.call("GET", "/api/v1/openapi.json", undefined, { token: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    for (const p of [
      "/api/v1/bizs/{biz}/scripts",
      "/api/v1/bizs/{biz}/scripts/{scriptId}/versions/{versionId}/publish",
      "/api/v1/credentials",
      "/api/v1/audit",
      "/feed/v1/bizs/{biz}/apps/{app}/release",
      "/feed/v1/bizs/{biz}/blobs/{sha256}",
    ]) {
      expect(Object.keys(doc.body.paths)).toContain(p);
    }
    expect(doc.body.components.schemas.Script.properties.name).toBeDefined();
    const page = await api.request("/api/v1/reference");
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("openapi.json");
    expect(html).not.toMatch(/https?:\/\/(?!127\.)/);
  });
});
