/** Agent pieces that touch the disk and run processes, on temp folders (no server). */
import { createHash } from "node:crypto";
import { mkdtemp, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobCache } from "../../agent/cache";
import { createLogger } from "../../agent/log";

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
    // A path naming the entry through the verified folder (/proc/self/fd/N/<sha> on Linux).
    const path = await cache.get(sha(good));
    expect(path && (await readFile(path, "utf8"))).toBe("hello");
    await writeFile(join(cacheDir, sha(good)), "tampered");
    expect(await cache.get(sha(good))).toBeNull();
    expect(await readdir(cacheDir)).toEqual([]);
  });
});
