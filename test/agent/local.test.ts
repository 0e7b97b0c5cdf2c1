/** Agent pieces that touch the disk and run processes, on temp folders (no server). */
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyFiles, listFiles, OwnerResolver } from "../../agent/apply";
import { BlobCache } from "../../agent/cache";
import { createLogger } from "../../agent/log";
import type { ManifestFile } from "../../agent/manifest";

const sha = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");
let dir: string;
let lines: string[];
const log = () => createLogger({ write: (line) => lines.push(line) });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "edgeconf-agent-"));
  lines = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("cache", () => {
  it("happy: cleans oldest-first to 90% of the threshold; blobs over 10% are not accepted", async () => {
    const cacheDir = join(dir, "cache");
    await mkdir(cacheDir);
    const threshold = 10_000;
    const cache = new BlobCache(cacheDir, threshold, true, log());
    expect(cache.accepts(1000)).toBe(true);
    expect(cache.accepts(1001)).toBe(false);
    const names: string[] = [];
    for (let i = 0; i < 12; i++) {
      const data = Buffer.alloc(1000, i);
      const name = sha(data);
      names.push(name);
      await writeFile(join(cacheDir, name), data);
      const t = new Date(Date.UTC(2024, 0, 1, 0, i));
      await utimes(join(cacheDir, name), t, t);
    }
    const result = await cache.cleanup();
    expect(result).toEqual({ sizeBefore: 12_000, sizeAfter: 9000, removed: 3 });
    const left = await readdir(cacheDir);
    expect(left.sort()).toEqual(names.slice(3).sort());
    expect(lines.some((l) => l.includes('msg="calculate current cache directory size"'))).toBe(true);
  });

  it("security: a corrupt cached blob is dropped on read", async () => {
    const cacheDir = join(dir, "cache");
    await mkdir(cacheDir);
    const cache = new BlobCache(cacheDir, 1e9, true, log());
    const good = Buffer.from("hello");
    await writeFile(join(cacheDir, sha(good)), good);
    expect(await cache.get(sha(good))).toBe(join(cacheDir, sha(good)));
    await writeFile(join(cacheDir, sha(good)), "tampered");
    expect(await cache.get(sha(good))).toBeNull();
    expect(await readdir(cacheDir)).toEqual([]);
  });
});

describe("apply", () => {
  async function blob(content: string): Promise<[string, string]> {
    const path = join(dir, "src-" + sha(content));
    await writeFile(path, content);
    return [sha(content), path];
  }
  const file = (path: string, name: string, content: string, privilege = "644", user = "root", group = "root"): ManifestFile => ({
    path, name, sha256: sha(content), size: Buffer.byteLength(content), permission: { user, group, privilege },
  });

  it("happy: writes, sets privileges, removes files no longer listed, prunes empty folders", async () => {
    const filesDir = join(dir, "files");
    const v1 = [file("/etc/nginx", "nginx.conf", "a"), file("/etc/old/deep", "gone.conf", "b"), file("/usr/bin", "run", "c", "755")];
    const sources = new Map(await Promise.all(["a", "b", "c"].map(blob)));
    const r1 = await applyFiles({ filesDir, files: v1, sources, previous: {}, log: log() });
    expect(r1).toMatchObject({ written: 3, unchanged: 0, removed: 0 });
    expect((await stat(join(filesDir, "usr/bin/run"))).mode & 0o777).toBe(0o755);
    await writeFile(join(filesDir, "etc/nginx/.nginx.conf.edgeconf-tmp-dead"), "half");
    const v2 = [file("/etc/nginx", "nginx.conf", "a"), file("/usr/bin", "run", "d", "700")];
    sources.set(...(await blob("d")));
    const r2 = await applyFiles({ filesDir, files: v2, sources, previous: r1.records, log: log() });
    expect(r2).toMatchObject({ written: 1, unchanged: 1, removed: 2 });
    expect((await listFiles(filesDir)).sort()).toEqual(["etc/nginx/nginx.conf", "usr/bin/run"]);
    expect(await readdir(join(filesDir, "etc"))).toEqual(["nginx"]);
    expect(await readFile(join(filesDir, "usr/bin/run"), "utf8")).toBe("d");
    expect((await stat(join(filesDir, "usr/bin/run"))).mode & 0o777).toBe(0o700);
  });

  it("happy: as root, sets owners; warns clearly when the user or group does not exist", async () => {
    const etc = join(dir, "etc");
    await mkdir(etc);
    await writeFile(join(etc, "passwd"), "root:x:0:0:root:/root:/bin/bash\nnginx:x:101:101::/:/bin/false\n");
    await writeFile(join(etc, "group"), "root:x:0:\nnginx:x:101:\n");
    const filesDir = join(dir, "files");
    const files = [file("/a", "known", "k", "640", "nginx", "nginx"), file("/a", "unknown", "u", "644", "ghost", "phantom")];
    const sources = new Map(await Promise.all(["k", "u"].map(blob)));
    await applyFiles({ filesDir, files, sources, previous: {}, log: log(), owners: new OwnerResolver(etc) });
    if (process.getuid?.() === 0) {
      const known = await stat(join(filesDir, "a/known"));
      expect([known.uid, known.gid]).toEqual([101, 101]);
      expect(lines.some((l) => l.includes("user does not exist") && l.includes("user=ghost"))).toBe(true);
      expect(lines.some((l) => l.includes("group does not exist") && l.includes("group=phantom"))).toBe(true);
    }
  });

  it("security: backups of replaced files are kept for a rollback", async () => {
    const filesDir = join(dir, "files");
    const backupDir = join(dir, "previous");
    const sources = new Map(await Promise.all(["one", "two"].map(blob)));
    const r1 = await applyFiles({ filesDir, files: [file("/x", "f", "one")], sources, previous: {}, log: log() });
    await applyFiles({ filesDir, files: [file("/x", "f", "two")], sources, previous: r1.records, backupDir, log: log() });
    expect(await readFile(join(backupDir, sha("one")), "utf8")).toBe("one");
  });
});
