/** Pure-logic pieces of the agent: configuration, log lines, metadata lines, backoff, manifest checks. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { parseCommandLine } from "../../agent/cli";
import { ConfigError, banner, loadConfig, normalizeAddr, parseLabels } from "../../agent/config";
import { Backoff, FeedClient } from "../../agent/feed";
import { createLogger } from "../../agent/log";
import { formatLine } from "../../agent/log";
import { ManifestError, parseManifest } from "../../agent/manifest";
import { eventTime, metadataLine } from "../../agent/metadata";
import { targetPath } from "../../agent/apply";

const base = { biz: "10", app: "service_demo", feed_addrs: "10.0.0.1:31510", token: "ABCDEFGHIJKLMNOPQRSTUVWXYZ1234" };

describe("config", () => {
  it("happy: reads the seed's environment names with defaults", () => {
    const config = loadConfig(new Map(), { ...base, temp_dir: "/data/bscp" });
    expect(config).toMatchObject({
      biz: 10,
      apps: ["service_demo"],
      feedAddrs: ["http://10.0.0.1:31510"],
      tempDir: "/data/bscp",
      cacheDir: "/data/bscp/cache",
      cacheThresholdBytes: 2 * 1024 ** 3,
      hookTimeoutMs: 60_000,
      port: 9616,
      onPostFailure: "report",
    });
    expect(config.uid).toMatch(/.+-[0-9a-f]{12}$/);
  });

  it("happy: flags win over the environment, both spellings", () => {
    const line = parseCommandLine(["pull", "--app=a,b", "--feed_addrs", "https://x.example/feed/,h:1", "--labels", "env=prod,zone=a", "--file-cache-enabled"]);
    if (line.kind !== "run") throw new Error("expected a command");
    expect(line.command).toBe("pull");
    const config = loadConfig(line.flags, base, "pull", line.typed);
    expect(config.apps).toEqual(["a", "b"]);
    expect(config.feedAddrs).toEqual(["https://x.example/feed", "http://h:1"]);
    expect(config.labels).toEqual({ env: "prod", zone: "a" });
    expect(config.cacheEnabled).toBe(true);
  });

  it("happy: labels as JSON", () => {
    expect(parseLabels('{"env":"prod","n":3}')).toEqual({ env: "prod", n: "3" });
  });

  it("error: missing and bad settings name the setting", () => {
    expect(() => loadConfig(new Map(), { ...base, token: "" })).toThrow(/missing token/);
    expect(() => loadConfig(new Map(), { ...base, biz: "x" })).toThrow(/biz/);
    expect(() => loadConfig(new Map(), { ...base, on_post_failure: "pray" })).toThrow(ConfigError);
    expect(() => parseCommandLine(["pull", "--nope=1"])).toThrow(/unknown flag --nope/);
    expect(() => parseLabels("novalue")).toThrow(/k=v/);
    expect(() => normalizeAddr("http://")).toThrow(ConfigError);
  });

  it("security: the banner masks the token", () => {
    const text = banner(loadConfig(new Map(), base), "pull");
    expect(text).toContain("--token=***");
    expect(text).not.toContain(base.token);
    expect(text).toMatch(/Version  : v\d/);
  });
});

describe("log lines", () => {
  it("happy: the seed's time level msg key=value format, quoting only when needed", () => {
    const line = formatLine(new Date("2024-03-08T01:53:52.259Z"), "INFO", "exec hook success", { script: "pre_hook", output: "", n: 3, msg2: 'a "b"' });
    expect(line).toBe('time=2024-03-08T01:53:52.259Z level=INFO msg="exec hook success" script=pre_hook output="" n=3 msg2="a \\"b\\""');
  });
});

describe("metadata.json lines", () => {
  it("happy: the seed's exact shape, seconds precision", () => {
    const event = { releaseID: 376, status: "SUCCESS" as const, message: "", eventTime: eventTime(new Date("2024-03-08T01:53:52.845Z")) };
    expect(metadataLine(event)).toBe('{"releaseID":376,"status":"SUCCESS","message":"","eventTime":"2024-03-08T01:53:52Z"}\n');
    expect(JSON.parse(metadataLine(event, { biz: 10, app: "service_demo" }))).toEqual({ ...event, biz: 10, app: "service_demo" });
  });
});

describe("backoff", () => {
  it("happy: doubles from 0.5 s to 30 s, with jitter in [d/2, d]", () => {
    const low = new Backoff(500, 30_000, () => 0);
    const high = new Backoff(500, 30_000, () => 1);
    const lows = Array.from({ length: 10 }, () => low.next());
    const highs = Array.from({ length: 10 }, () => high.next());
    expect(highs.slice(0, 4)).toEqual([500, 1000, 2000, 4000]);
    expect(highs[9]).toBe(30_000);
    expect(lows[0]).toBe(250);
    expect(lows[9]).toBe(15_000);
    high.reset();
    expect(high.next()).toBe(500);
  });
});

describe("manifest checks", () => {
  const file = (path: string, name: string) => ({ path, name, sha256: "a".repeat(64), size: 1, permission: { user: "root", group: "root", privilege: "644" } });
  const manifest = (files: unknown[]) => ({ biz: 1, app: "a", configType: "file", release: { id: 1, name: "V1" }, files, hooks: { pre: null, post: null } });

  it("happy: accepts absolute paths", () => {
    expect(parseManifest(manifest([file("/etc/nginx", "nginx.conf")])).files).toHaveLength(1);
    expect(targetPath("/data/x/files", { path: "/etc/nginx", name: "nginx.conf" })).toBe("/data/x/files/etc/nginx/nginx.conf");
  });

  it("security: refuses ../, NUL, backslashes, relative paths and bad privileges", () => {
    for (const [path, name] of [["/etc/../..", "passwd"], ["/etc", ".."], ["etc", "x"], ["/etc", "a\\b"], ["/etc\u0000", "x"], ["/etc", "a/b"]]) {
      expect(() => parseManifest(manifest([file(path, name)])), `${path} ${name}`).toThrow(ManifestError);
    }
    expect(() => parseManifest(manifest([{ ...file("/etc", "x"), permission: { privilege: "999" } }]))).toThrow(/privilege/);
    expect(() => targetPath("/data/x/files", { path: "/", name: ".." })).toThrow(ManifestError);
  });
});

describe("release poll query", () => {
  it("sends the publish that brought the applied release (currentPublish) with current, only when it is a valid id", async () => {
    const seen: URLSearchParams[] = [];
    const server = http.createServer((req, res) => {
      seen.push(new URL(req.url ?? "/", "http://x").searchParams);
      res.writeHead(304, { etag: '"r5"' }).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const { port } = server.address() as AddressInfo;
      const feed = new FeedClient({ addrs: [`http://127.0.0.1:${port}`], token: "t".repeat(30), biz: 10, uid: "u1", labels: {}, mode: "watch", log: createLogger({ write: () => undefined }) });
      await feed.release("svc", { current: 5, currentPublish: 9, wait: 0 });
      await feed.release("svc", { current: 5, currentPublish: 2 ** 31, wait: 0 });
      await feed.release("svc", { current: null, currentPublish: 9, wait: 0 });
      expect(seen.map((q) => [q.get("current"), q.get("currentPublish")])).toEqual([
        ["5", "9"],
        ["5", null],
        [null, null],
      ]);
    } finally {
      server.close();
    }
  });
});
