import { describe, expect, it } from "vitest";
import { inPercent, matchSelector, parseSelector, percentBucket } from "../../functions/core/selector";
import { resolveTarget } from "../../functions/core/targeting";

describe("selector: parse and match (pure)", () => {
  const cases: [string, Record<string, string>, boolean][] = [
    ["", {}, true],
    ["env=prod", { env: "prod" }, true],
    ["env=prod", { env: "test" }, false],
    ["env=prod", {}, false],
    ["env==prod", { env: "prod" }, true],
    ["env!=prod", { env: "test" }, true],
    ["env!=prod", {}, true],
    ["env!=prod", { env: "prod" }, false],
    ["zone in (a,b)", { zone: "b" }, true],
    ["zone in (a, b)", { zone: "c" }, false],
    ["zone in (a,b)", {}, false],
    ["zone notin (a,b)", { zone: "c" }, true],
    ["zone notin (a,b)", {}, true],
    ["zone notin (a,b)", { zone: "a" }, false],
    ["canary", { canary: "" }, true],
    ["canary", {}, false],
    ["!canary", {}, true],
    ["!canary", { canary: "yes" }, false],
    ["env=prod,zone in (a,b),!canary", { env: "prod", zone: "a" }, true],
    ["env=prod,zone in (a,b),!canary", { env: "prod", zone: "a", canary: "1" }, false],
    ["env=prod, zone in (a,b)", { env: "prod", zone: "z" }, false],
    ["app.kubernetes.io/name=nginx", { "app.kubernetes.io/name": "nginx" }, true],
  ];
  it.each(cases)("%j against %j → %s", (sel, labels, want) => {
    expect(matchSelector(parseSelector(sel), labels)).toBe(want);
  });

  const bad = ["=prod", "env=prod,", ",env=prod", "env=prod,,zone=a", "zone in ()", "zone in (a,b", "zone in a,b)", "env=pr od", "env=prod\n", "!", "en v", "zone in (a,,b)"];
  it.each(bad)("refuses %j with a message naming the field", (sel) => {
    expect(() => parseSelector(sel)).toThrow(/^selector: /);
  });
  it("accepts an empty value with '=' (the Kubernetes meaning: label present and empty)", () => {
    expect(matchSelector(parseSelector("env="), { env: "" })).toBe(true);
  });
});

describe("percent: stable and monotonic (pure)", () => {
  const uids = Array.from({ length: 5000 }, (_, i) => `host-${i}`);
  it("gives the same answer for the same uid and group", () => {
    for (const uid of uids.slice(0, 100)) expect(inPercent(uid, 7, 30)).toBe(inPercent(uid, 7, 30));
    expect(percentBucket("a", 1)).toBe(percentBucket("a", 1));
  });
  it("only grows as the percentage grows", () => {
    let prev = new Set<string>();
    for (const p of [0, 1, 5, 10, 25, 50, 75, 99, 100]) {
      const cur = new Set(uids.filter((u) => inPercent(u, 3, p)));
      for (const u of prev) expect(cur.has(u)).toBe(true);
      prev = cur;
    }
    expect(prev.size).toBe(uids.length);
  });
  it("takes roughly the asked share", () => {
    const share = uids.filter((u) => inPercent(u, 3, 20)).length / uids.length;
    expect(share).toBeGreaterThan(0.17);
    expect(share).toBeLessThan(0.23);
  });
  it("treats null as the whole group and 0 as nobody", () => {
    expect(uids.every((u) => inPercent(u, 1, null))).toBe(true);
    expect(uids.some((u) => inPercent(u, 1, 0))).toBe(false);
  });
});

describe("resolveTarget (pure)", () => {
  const all = { id: 1, releaseId: 100, groups: [] };
  const prod = { id: 2, releaseId: 200, groups: [{ id: 9, name: "prod", selector: "env=prod", percent: null }] };
  const canary = { id: 3, releaseId: 300, groups: [{ id: 8, name: "canary", selector: "env=prod", percent: 0 }] };
  it("picks the newest matching publish, falling back to older ones", () => {
    expect(resolveTarget([canary, prod, all], { uid: "u", labels: { env: "prod" } })?.releaseId).toBe(200);
    expect(resolveTarget([canary, prod, all], { uid: "u", labels: { env: "test" } })?.releaseId).toBe(100);
    expect(resolveTarget([prod], { uid: "u", labels: {} })).toBeNull();
    expect(resolveTarget([], { uid: "u", labels: {} })).toBeNull();
  });
  it("matches a client in any of a publish's groups", () => {
    const two = { id: 4, releaseId: 400, groups: [prod.groups[0], { id: 10, name: "zone-a", selector: "zone=a", percent: null }] };
    expect(resolveTarget([two, all], { uid: "u", labels: { zone: "a" } })?.releaseId).toBe(400);
  });
  it("ignores a stored selector that no longer parses", () => {
    const broken = { id: 5, releaseId: 500, groups: [{ id: 11, name: "b", selector: "zone in (", percent: null }] };
    expect(resolveTarget([broken, all], { uid: "u", labels: { zone: "a" } })?.releaseId).toBe(100);
  });
});
