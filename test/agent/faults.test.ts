/**
 * Fault-injection suite for the apply transaction (design: "Agent safety invariants" 1, 2, 4).
 * The real runner, fetcher and cache against a real server process, with the agent's fs seam
 * (agent/fsys.ts) replaced by one that fails the n-th file operation with an errno, or "crashes"
 * there (that call and every later one never answer; a new runner then starts on the same disk,
 * as after kill -9). After every run: `files/` is exactly V1 or V2 (bytes and modes, nothing
 * else), `state` names that version, the last metadata.json event agrees, and a sentinel tree
 * outside the service folder is unchanged. Counts are printed for the report.
 */
import { createHash } from "node:crypto";
import { cp, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeFsys, type Fsys } from "../../agent/fsys";
import { faulty } from "./fault-seam";
import { readLines, snapshot } from "./harness";
import { transactionService, type TransactionService } from "./transaction";
import { expected, V1, V2 } from "./versions";

const BIZ = 31;
const APP = "faults";
const ERRNOS = ["EBUSY", "EXDEV", "EACCES", "EPERM", "ENOSPC", "EROFS", "EIO"];

let svc: TransactionService;
let work: TransactionService["work"];
let manifests: TransactionService["manifests"];
const counts = { runs: 0, faults: 0, crashes: 0, violations: 0 };

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

const runner = (root: string, fsys: Fsys, extra: Record<string, string> = {}) => svc.runner(root, fsys, extra);

/** The invariants; returns what is violated (empty when all hold). */
async function violations(root: string, sentinel: Record<string, string>): Promise<string[]> {
  const app = join(root, String(BIZ), APP);
  const { version, problems: out } = await svc.wholeVersion(root);
  const canon = (x: Record<string, string>) => JSON.stringify(Object.entries(x).sort());
  const events = await readLines(join(app, "metadata.json"));
  const last = events.at(-1);
  const lastSuccess = events.filter((e) => e.status === "SUCCESS").at(-1);
  if (last?.status === "SUCCESS" && last.releaseID !== version) out.push(`last event SUCCESS ${last.releaseID}, disk holds ${version}`);
  if (lastSuccess?.releaseID !== version) out.push(`last SUCCESS event names ${lastSuccess?.releaseID}, disk holds ${version}`);
  const outside = await snapshot(join(root, "sentinel"));
  if (canon(outside) !== canon(sentinel)) out.push("sentinel tree changed");
  return out;
}

/**
 * Right after the attempt, files/ and state hold one whole version; an event the fault kept
 * from metadata.json leaves the journal, and the next start records it: checked after it.
 */
async function afterRestart(root: string, sentinel: Record<string, string>): Promise<string[]> {
  const early = (await violations(root, sentinel)).filter((v) => v.startsWith("files/") || v.startsWith("state") || v.startsWith("sentinel"));
  await runner(root, nodeFsys).start(APP);
  return [...early, ...(await violations(root, sentinel))];
}

let seq = 0;
let template: string | null = null;
/** A fresh temp_dir with V1 applied (a copy of one real apply) and a sentinel tree beside it. */
async function prepared(): Promise<{ root: string; sentinel: Record<string, string> }> {
  if (!template) {
    template = join(work.path, "template");
    await mkdir(join(template, "sentinel/etc/app"), { recursive: true });
    await writeFile(join(template, "sentinel/etc/app/main.conf"), "outside\n");
    const first = await runner(template, nodeFsys).apply(APP, manifests.v1);
    expect(first.status, first.message).toBe("SUCCESS");
  }
  const root = join(work.path, `run-${++seq}`);
  await cp(template, root, { recursive: true, preserveTimestamps: true });
  return { root, sentinel: await snapshot(join(root, "sentinel")) };
}

beforeAll(async () => {
  svc = await transactionService({ biz: BIZ, app: APP, uid: "faults" });
  ({ work, manifests } = svc);
}, 120_000);

afterAll(async () => {
  console.log(`fault suite: ${counts.runs} runs, ${counts.faults} errno faults injected, ${counts.crashes} crashes, ${counts.violations} invariant violations`);
  await svc?.stop();
});

describe("apply transaction under faults", () => {
  it("happy: with no fault V2 replaces V1 whole; the number of file operations is known", async () => {
    const { root, sentinel } = await prepared();
    const seam = faulty({ at: Number.POSITIVE_INFINITY });
    const outcome = await runner(root, seam).apply(APP, manifests.v2);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await violations(root, sentinel)).toEqual([]);
    expect(seam.calls()).toBeGreaterThan(30);
    total = seam.calls(); console.log("TOTAL", total);
  });

  let total = 0;

  it("error: every errno at every position of the apply leaves one whole version (exhaustive positions)", async () => {
    for (let at = 0; at < total; at++) {
      const errno = ERRNOS[at % ERRNOS.length];
      const { root, sentinel } = await prepared();
      const seam = faulty({ at, errno });
      const outcome = await runner(root, seam).apply(APP, manifests.v2);
      counts.runs++;
      if (seam.hit()) counts.faults++;
      const bad = await afterRestart(root, sentinel);
      counts.violations += bad.length;
      expect(bad, `${errno} at call ${at}: ${outcome.status} ${outcome.message}`).toEqual([]);
      await rm(root, { recursive: true, force: true });
    }
  }, 300_000);

  it("error: random errnos at random positions (fast-check)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: Math.max(0, total - 1) }), fc.constantFrom(...ERRNOS), async (at, errno) => {
        const { root, sentinel } = await prepared();
        const seam = faulty({ at, errno });
        await runner(root, seam).apply(APP, manifests.v2);
        counts.runs++;
        if (seam.hit()) counts.faults++;
        const bad = await afterRestart(root, sentinel);
        counts.violations += bad.length;
        await rm(root, { recursive: true, force: true });
        return bad.length === 0;
      }),
      { numRuns: 20 },
    );
  }, 300_000);

  it("error: a crash at any file operation is completed or undone by the next start", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: Math.max(0, total - 1) }), async (at) => {
        const { root, sentinel } = await prepared();
        const seam = faulty({ at, crash: true });
        void runner(root, seam).apply(APP, manifests.v2); // never settles once frozen
        for (let i = 0; i < 500 && !seam.hit(); i++) await new Promise((r) => setTimeout(r, 2));
        counts.runs++;
        counts.crashes++;
        // The frozen process is gone: its lock with it (a dead holder's lock is taken over).
        await rm(join(root, String(BIZ), APP, ".edgeconf/lock.json"), { force: true });
        await runner(root, nodeFsys).start(APP);
        const bad = await violations(root, sentinel);
        counts.violations += bad.length;
        await rm(root, { recursive: true, force: true });
        return bad.length === 0;
      }),
      { numRuns: 30 },
    );
  }, 300_000);

  it("security: a link planted after a crash mid-swap: the restart (and a new apply) refuses it naming it and keeps the plan; once it is gone the plan is finished or undone, then the release applied", async () => {
    let resumed = 0;
    for (const at of [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85].map((f) => Math.floor(total * f))) {
      const { root, sentinel } = await prepared();
      const seam = faulty({ at, crash: true });
      void runner(root, seam).apply(APP, manifests.v2);
      for (let i = 0; i < 500 && !seam.hit(); i++) await new Promise((r) => setTimeout(r, 2));
      counts.runs++;
      counts.crashes++;
      const app = join(root, String(BIZ), APP);
      await rm(join(app, ".edgeconf/lock.json"), { force: true });
      const journal = join(app, ".edgeconf/journal.json");
      // Mid-swap only: a crash before the journal, or after the swap (a "post" journal), is another case.
      const phase = await readFile(journal, "utf8").then((t) => JSON.parse(t).phase as string, () => null);
      if (phase !== "switch") continue;
      resumed++;
      const planted = join(app, "files/etc/app/planted");
      await symlink(join(root, "sentinel/etc/app"), planted);
      const refused = await runner(root, nodeFsys).start(APP);
      expect(refused?.status).toBe("FAILED");
      expect(refused?.message).toContain(planted);
      expect(await stat(journal).catch(() => null)).not.toBeNull();
      // A new release meanwhile (watch): the unfinished plan comes first, still refused.
      expect((await runner(root, nodeFsys).apply(APP, manifests.v2)).status).toBe("FAILED");
      expect(await stat(journal).catch(() => null)).not.toBeNull();
      await rm(planted);
      const after = await runner(root, nodeFsys).apply(APP, manifests.v2);
      expect(after.status, after.message).not.toBe("FAILED");
      const bad = await violations(root, sentinel);
      counts.violations += bad.length;
      expect(bad).toEqual([]);
      expect(await snapshot(join(app, "files"))).toEqual(expected(V2));
    }
    expect(resumed).toBeGreaterThan(0);
  });

  it("error: a target that cannot be renamed over (a bind-mounted file) is written in place; V2 whole", async () => {
    const { root, sentinel } = await prepared();
    const base = faulty({ at: Number.POSITIVE_INFINITY });
    const busy: Fsys = { ...base, rename: (from, to) => (to.endsWith("/main.conf") ? Promise.reject(Object.assign(new Error("EBUSY"), { code: "EBUSY" })) : nodeFsys.rename(from, to)) };
    const outcome = await runner(root, busy).apply(APP, manifests.v2);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await violations(root, sentinel)).toEqual([]);
  });

  it("error: a bind-mounted file that must be removed cannot be: V1 kept whole, FAILED names it", async () => {
    const { root, sentinel } = await prepared();
    // As Node words it: the path the call was given, which below the service folder is /proc/self/fd/N/...
    const ebusy = (path: string) => Object.assign(new Error(`EBUSY: resource busy or locked, unlink '${path}'`), { code: "EBUSY", path });
    const busy: Fsys = { ...nodeFsys, unlink: (path) => (path.endsWith("/gone.conf") ? Promise.reject(ebusy(path)) : nodeFsys.unlink(path)) };
    const outcome = await runner(root, busy).apply(APP, manifests.v2);
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toMatch(/EBUSY/);
    // The message names the file where the operator finds it.
    expect(outcome.message).not.toContain("/proc/self/fd");
    expect(outcome.message).toContain(`${join(root, String(BIZ), APP, "files")}/`);
    expect(await violations(root, sentinel)).toEqual([]);
    expect(JSON.parse(await readFile(join(root, String(BIZ), APP, ".edgeconf/state.json"), "utf8")).releaseId).toBe(manifests.ids[0]);
  });
});

describe("limits", () => {
  const setuid = () => {
    const m = structuredClone(manifests.v2) as { files: { name: string; permission: { privilege: string } }[] };
    m.files.find((f) => f.name === "run.sh")!.permission.privilege = "4755";
    return m;
  };

  it("security: setuid/setgid/sticky refused unless --allow-special-bits; V1 kept whole", async () => {
    const { root, sentinel } = await prepared();
    const outcome = await runner(root, nodeFsys).apply(APP, setuid());
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toMatch(/bin\/run\.sh asks for privilege 4755.*--allow-special-bits/);
    expect(await violations(root, sentinel)).toEqual([]);
    const allowed = await runner(root, nodeFsys, { allow_special_bits: "true" }).apply(APP, setuid());
    expect(allowed.status, allowed.message).toBe("SUCCESS");
    expect((await stat(join(root, String(BIZ), APP, "files/bin/run.sh"))).mode & 0o7777).toBe(0o4755);
  });

  it("security: the cache is private (folder 0700; each blob a 0600 copy or the applied file itself) and state.json is 0600", async () => {
    await prepared();
    const cache = join(work.path, "cache");
    expect((await stat(cache)).mode & 0o777).toBe(0o700);
    const blobs = (await readdir(cache)).filter((n) => /^[0-9a-f]{64}$/.test(n));
    expect(blobs.length).toBeGreaterThan(0);
    // A blob is a 0600 copy, or a hard link to a file applied with those bytes (then its mode,
    // never group/other-writable), reachable only through the 0700 folder.
    const modes = (blob: string) => [...Object.values(V1), ...Object.values(V2)].filter(([content]) => sha(content) === blob).map(([, mode]) => mode);
    let linked = 0;
    for (const blob of blobs) {
      const mode = ((await stat(join(cache, blob))).mode & 0o777).toString(8);
      expect(["600", ...modes(blob)]).toContain(mode);
      expect(Number.parseInt(mode, 8) & 0o022).toBe(0);
      if ((await stat(join(template!, String(BIZ), APP, "files/etc/app/main.conf"))).ino === (await stat(join(cache, blob))).ino) linked++;
    }
    expect(linked).toBe(1);
    expect((await stat(join(template!, String(BIZ), APP, ".edgeconf/state.json"))).mode & 0o777).toBe(0o600);
  });
});

describe("the blob cache links applied files instead of copying them", () => {
  const app = (root: string, rel = "") => join(root, String(BIZ), APP, "files", rel);
  const cached = (content: string) => join(work.path, "cache", sha(content));

  async function freshV1(): Promise<{ root: string; sentinel: Record<string, string> }> {
    const root = join(work.path, `links-${++seq}`);
    await mkdir(join(root, "sentinel"), { recursive: true });
    await writeFile(join(root, "sentinel/keep.conf"), "outside\n");
    await rm(join(work.path, "cache"), { recursive: true, force: true });
    const first = await runner(root, nodeFsys).apply(APP, manifests.v1);
    expect(first.status, first.message).toBe("SUCCESS");
    return { root, sentinel: await snapshot(join(root, "sentinel")) };
  }

  it("happy: a cold apply leaves one file per blob (the cache entry is the applied file); an unchanged file keeps its inode in the next release", async () => {
    const { root, sentinel } = await freshV1();
    const main = await stat(app(root, "etc/app/main.conf"));
    expect(main.nlink).toBe(2);
    expect((await stat(cached("main v1\n"))).ino).toBe(main.ino);
    const run = await stat(app(root, "bin/run.sh"));
    const outcome = await runner(root, nodeFsys).apply(APP, manifests.v2);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await violations(root, sentinel)).toEqual([]);
    expect((await stat(app(root, "bin/run.sh"))).ino).toBe(run.ino);
    // The replaced file lives on as the cache entry of its bytes, unchanged.
    expect(await readFile(cached("main v1\n"), "utf8")).toBe("main v1\n");
  });

  it("error: a linked file that cannot be renamed over is written in place; its cache entry is dropped, never changed", async () => {
    const { root, sentinel } = await freshV1();
    const busy: Fsys = { ...nodeFsys, rename: (from, to) => (to.endsWith("/main.conf") ? Promise.reject(Object.assign(new Error("EBUSY"), { code: "EBUSY" })) : nodeFsys.rename(from, to)) };
    const outcome = await runner(root, busy).apply(APP, manifests.v2);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await violations(root, sentinel)).toEqual([]);
    expect(await readFile(app(root, "etc/app/main.conf"), "utf8")).toBe("main v2\n");
    const entry = await readFile(cached("main v1\n"), "utf8").catch(() => null);
    expect(entry === null || entry === "main v1\n").toBe(true);
  });

  it("error: a full disk while a content is written out empties the cache first, then the write is tried again", async () => {
    const root = join(work.path, `links-${++seq}`);
    await mkdir(root);
    const cache = join(work.path, "cache");
    await rm(cache, { recursive: true, force: true });
    await mkdir(cache, { recursive: true, mode: 0o700 });
    const old = new Date(Date.now() - 86_400_000);
    for (const n of [1, 2, 3]) {
      const junk = join(cache, sha(`junk ${n}`));
      await writeFile(junk, `junk ${n}`, { mode: 0o600 });
      await utimes(junk, old, old);
    }
    let full = 1; // the first new file the apply stages finds the disk full
    const diskFull: Fsys = {
      ...nodeFsys,
      open: (path, flags, mode) =>
        path.includes(".edgeconf-tmp-") && full-- > 0 ? Promise.reject(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" })) : nodeFsys.open(path, flags, mode),
    };
    const outcome = await runner(root, diskFull).apply(APP, manifests.v1);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(full).toBeLessThan(0);
    // Oldest first, until the content fits (each junk blob is smaller than the content).
    const left = (await readdir(cache)).filter((n) => [1, 2, 3].some((k) => n === sha(`junk ${k}`)));
    expect(left.length).toBeLessThan(3);
    expect(await snapshot(app(root))).toEqual(expected(V1));
  });

  it("error: a cache entry changed through the applied file is caught on read and fetched again", async () => {
    const { root } = await freshV1();
    await writeFile(app(root, "etc/app/main.conf"), "tampered\n"); // in place: the cache entry's inode too
    const again = join(work.path, `links-${++seq}`);
    await mkdir(again);
    const outcome = await runner(again, nodeFsys).apply(APP, manifests.v1);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await readFile(app(again, "etc/app/main.conf"), "utf8")).toBe("main v1\n");
  });
});
