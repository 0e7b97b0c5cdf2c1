/**
 * Property-based attack on every route: each operation of the OpenAPI document (and the console
 * pages, which are not in it) is driven with generated hostile values in its path, query and body,
 * with an admin token and with an agent token. Whatever comes in: no 5xx, a 4xx is the JSON error
 * shape, and a refused request stores nothing. Bounded (RUNS per operation and token) for CI.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApi, type TestApi } from "../helpers/app";
import { formClient, type FormClient } from "../helpers/console";
import { agentToken, seedGroup, seedPublish, seedRelease, seedService } from "../helpers/seed";
import { hostileInt, hostileText, schemaValue, type Schema } from "../helpers/hostile";
import { storedFingerprint } from "../helpers/fingerprint";

const RUNS = Number(process.env.EDGECONF_FUZZ_RUNS ?? 15);
const BIZ = 10;
/** Longest generated text in a URL: past every field's limit, short of the servers' own URL limits (a 414/431 before our code). */
const URL_TEXT = 4096;

type Operation = { method: string; path: string; params: { name: string; in: string; required?: boolean; schema: Schema }[]; body?: { type: string; schema?: Schema } };

let api: TestApi;
let agent: string;
let doc: any;
const ownCredentialIds: number[] = [];
/** Valid values per path parameter name, so hostile bodies and queries reach the handlers. */
const known: Record<string, string[]> = {};

beforeAll(async () => {
  api = await createTestApi();
  const must = (r: { status: number; body: any }) => {
    if (r.status >= 300) throw new Error(JSON.stringify(r.body));
    return r.body;
  };
  must(await api.call("POST", "/api/v1/bizs", { id: BIZ, name: "fuzz" }));
  await seedService(api, BIZ, "svc", [{ path: "/etc/app/a.conf", content: "a=1\n" }]);
  const script = must(await api.call("POST", `/api/v1/bizs/${BIZ}/scripts`, { name: "s1", type: "shell", content: "echo hi\n" }));
  must(await api.call("PUT", `/api/v1/bizs/${BIZ}/apps/svc/hooks`, { pre: { scriptId: script.id } }));
  const group = await seedGroup(api, BIZ, "g1", "env=prod");
  const v1 = await seedRelease(api, BIZ, "svc", "V1");
  await seedPublish(api, BIZ, "svc", v1.id);
  const files = must(await api.call("GET", `/api/v1/bizs/${BIZ}/apps/svc/files`));
  const hook = must(await api.call("POST", `/api/v1/bizs/${BIZ}/apps/svc/webhooks`, { name: "w1", action: "release" }));
  const agentCredential = await agentToken(api, BIZ, ["*"]);
  agent = agentCredential.token;
  const admin = must(await api.call("GET", "/api/v1/credentials")).items.find((c: any) => c.kind === "admin");
  ownCredentialIds.push(admin.id, agentCredential.id);
  // Deleting credentials is fuzzed on a throwaway one only: revoking our own tokens ends the run.
  const spare = must(await api.call("POST", "/api/v1/credentials", { name: "spare", kind: "agent", bizId: BIZ, apps: ["x"] }));
  Object.assign(known, {
    biz: [String(BIZ)],
    app: ["svc"],
    scriptId: [String(script.id)],
    versionId: [String(script.version.id), String(v1.id)],
    groupId: [String(group.id)],
    fileId: [String(files.items[0].id)],
    id: [String(spare.id), hook.id],
    webhookId: [hook.id],
    uid: ["host-1"],
    sha256: [files.items[0].sha256],
  });
  doc = must(await api.call("GET", "/api/v1/openapi.json", undefined, { token: null }));
});
afterAll(() => api?.close());

function operations(): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const content = op.requestBody?.content ?? {};
      const type = Object.keys(content)[0];
      ops.push({ method: method.toUpperCase(), path, params: op.parameters ?? [], body: type ? { type, schema: content[type].schema } : undefined });
    }
  }
  return ops;
}

/** A path parameter: a known good value (to reach the handler) or a hostile one. */
const pathValue = (op: Operation, name: string, schema: Schema) => {
  // Deleting the seeded resources would leave later runs nothing to reach; hostile values only.
  const good = op.method === "DELETE" && name !== "id" ? [] : (known[name] ?? []);
  let hostile = schema.type === "integer" || schema.type === "number" ? hostileInt() : hostileText(URL_TEXT);
  // " 1" is a valid id 1: never let the run revoke the tokens it calls with.
  if (op.path.startsWith("/api/v1/credentials/")) hostile = hostile.filter((v) => !ownCredentialIds.includes(Number(v)));
  return good.length ? fc.oneof(fc.constantFrom(...good), hostile) : hostile;
};

function requestArb(op: Operation) {
  const path = fc.record(Object.fromEntries(op.params.filter((p) => p.in === "path").map((p) => [p.name, pathValue(op, p.name, p.schema)])));
  const query = fc.record(
    Object.fromEntries(
      op.params
        .filter((p) => p.in === "query")
        .map((p) => [p.name, p.name === "wait" ? fc.constantFrom("0", "-1", "61", "2147483648", "1.5", "\u0000", "x") : fc.oneof(schemaValue(p.schema, doc, URL_TEXT).map(asText), hostileText(URL_TEXT), hostileInt())]),
    ),
    // A long-poll without `wait` would be held 30 s: keep it always present.
    { requiredKeys: op.params.some((p) => p.name === "wait") ? ["wait"] : [] },
  );
  const body = !op.body
    ? fc.constant(undefined)
    : op.body.type === "application/json"
      ? fc.oneof({ weight: 4, arbitrary: schemaValue(op.body.schema ?? {}, doc).map((v) => JSON.stringify(v)) }, fc.jsonValue().map((v) => JSON.stringify(v)), fc.constantFrom("{", "", "\u0000", '{"a":"\\u0000"}'))
      : fc.uint8Array({ maxLength: 64 });
  return fc.record({ path, query, body, token: fc.constantFrom("admin", "agent") });
}

/** A generated value as query text (generated objects may have no prototype, so no String()). */
const asText = (v: unknown) => (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));

/** Percent-encodes as a client would; a lone surrogate goes out as the invalid UTF-8 bytes a raw client could send. */
const encode = (s: string) => [...s].map((ch) => (/[\ud800-\udfff]/.test(ch) ? "%ED%A0%80" : encodeURIComponent(ch))).join("");

function urlOf(op: Operation, path: Record<string, string>, query: Record<string, unknown>) {
  const p = op.path.replace(/\{(\w+)\}/g, (_, k: string) => encode(String(path[k])));
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, asText(v)])).toString();
  return qs ? `${p}?${qs}` : p;
}

describe("every route, hostile input", () => {
  it("answers no 5xx, the JSON error shape on 4xx, and stores nothing when it refuses", async () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(40);
    // Every operation runs, so one report lists every route that fails.
    const failures: string[] = [];
    for (const op of ops) {
      await fc
        .assert(
        fc.asyncProperty(requestArb(op), async (r) => {
          const url = urlOf(op, r.path, r.query);
          const before = await storedFingerprint(api.deps.db);
          const headers: Record<string, string> = { authorization: `Bearer ${r.token === "admin" ? api.adminToken : agent}` };
          if (op.body) headers["content-type"] = op.body.type;
          const res = await api.request(url, { method: op.method, headers, body: r.body as BodyInit | undefined });
          const text = await res.text();
          const where = `${op.method} ${url} (${r.token}) body=${JSON.stringify(r.body)?.slice(0, 200)} -> ${res.status} ${text.slice(0, 200)}`;
          expect(res.status, where).toBeLessThan(500);
          if (res.status >= 400 && res.status !== 416) {
            const body = JSON.parse(text);
            expect(typeof body.error?.code, where).toBe("string");
            expect(typeof body.error?.message, where).toBe("string");
            expect(await storedFingerprint(api.deps.db), `refused request stored something: ${where}`).toEqual(before);
          }
        }),
        { numRuns: RUNS },
        )
        .catch((err: Error) => failures.push(`${op.method} ${op.path}: ${err.message.split("\n").map((l) => l.slice(0, 300)).slice(0, 14).join("\n")}`));
    }
    expect(failures).toEqual([]);
  });

  describe("console pages (not in the OpenAPI document)", () => {
    let ui: FormClient;
    beforeAll(async () => {
      ui = formClient(api.request);
      expect((await ui.signIn(api.adminToken)).status).toBe(303);
    });
    const pages = [
      "/ui/bizs/{biz}/scripts",
      "/ui/bizs/{biz}/scripts/{scriptId}",
      "/ui/bizs/{biz}/scripts/{scriptId}/versions/{versionId}",
      "/ui/bizs/{biz}/services/{app}",
      "/ui/bizs/{biz}/services/{app}/files/{fileId}",
      "/ui/bizs/{biz}/services/{app}/versions/{versionId}",
      "/ui/bizs/{biz}/services/{app}/versions/diff?from={versionId}&to={versionId}",
      "/ui/bizs/{biz}/services/{app}/clients?label={text}",
    ];
    it("answers no 5xx to hostile ids and names", async () => {
      const ints = ["biz", "scriptId", "versionId", "fileId"];
      const arb = fc.record({
        page: fc.constantFrom(...pages),
        values: fc.record(Object.fromEntries([...ints.map((k) => [k, fc.oneof(fc.constantFrom(...(known[k] ?? ["1"])), hostileInt())]), ["app", fc.oneof(fc.constant("svc"), hostileText(URL_TEXT))], ["text", hostileText(URL_TEXT)]])),
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ page, values }) => {
          const url = page.replace(/\{(\w+)\}/g, (_, k: string) => encode(String((values as Record<string, unknown>)[k])));
          const res = await ui.get(url);
          expect(res.status, `GET ${url} -> ${res.status}`).toBeLessThan(500);
        }),
        { numRuns: RUNS * pages.length },
      );
    });

    const forms: Record<string, string[]> = {
      "/ui/bizs/10/scripts/new": ["name", "type", "content", "memo", "tags", "versionName"],
      "/ui/bizs/10/services": ["name", "configType", "memo"],
      "/ui/bizs/10/groups": ["name", "selector", "percent", "memo"],
      "/ui/credentials": ["name", "kind", "bizId", "apps"],
      "/ui/bizs": ["id", "name"],
    };
    it("answers no 5xx to hostile form fields", async () => {
      const arb = fc.constantFrom(...Object.keys(forms)).chain((page) =>
        fc.record({ page: fc.constant(page), fields: fc.record(Object.fromEntries(forms[page].map((f) => [f, fc.oneof(hostileText(), hostileInt(), fc.constantFrom("shell", "file", "agent", "10"))])), { requiredKeys: [] }) }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ page, fields }) => {
          const res = await ui.post(page, fields as Record<string, string>);
          expect(res.status, `POST ${page} ${JSON.stringify(fields).slice(0, 300)} -> ${res.status}`).toBeLessThan(500);
        }),
        { numRuns: RUNS * Object.keys(forms).length },
      );
    });
  });
});
