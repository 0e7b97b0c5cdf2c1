/**
 * What the agent trusts of `.edgeconf/` and of files it checked once (agent/integrity.ts): the
 * business container shares the service folder and can write there. The real runner, fetcher
 * and cache against a real server, in process (as test/agent/faults.test.ts). Cases:
 * a forged journal (writes/removes outside, a post-script at restart), a forged state (a script
 * run by a rollback), a sealed journal whose plan breaks the rules, a token change, a file
 * tampered with its mtime put back, and a source rewritten between its check and its copy.
 * Replays: a journal or state the agent itself sealed for an earlier apply, put back (freshness,
 * agent/state.ts `checkFresh`), and files of the previous agent version; and a post-phase journal
 * refused at restart, kept for the operator.
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile, mkdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlobCache } from "../../agent/cache";
import { loadConfig } from "../../agent/config";
import { Fetcher } from "../../agent/download";
import { FeedClient } from "../../agent/feed";
import { nodeFsys, type Fsys } from "../../agent/fsys";
import { keyOf } from "../../agent/integrity";
import { createLogger } from "../../agent/log";
import { Runner } from "../../agent/runner";
import { appPaths, writeJournal, writeState } from "../../agent/state";
import { Admin, readLines, sha256, startServer, tempDir, until, type ServerHandle } from "./harness";

const BIZ = 37;
const APP = "integrity";
const BIG_APP = "integrity-big";
/** Over 1 MiB: received into a file (the cache's or the staging folder's), not into memory. */
const BIG = "a".repeat(1_500_000);

let work: Awaited<ReturnType<typeof tempDir>>;
let server: ServerHandle;
let token: string;
let otherToken: string;
const manifests: Record<"v1" | "v2" | "v3" | "big", any> = {} as never;

beforeAll(async () => {
  work = await tempDir("edgeconf-integrity-");
  server = await startServer({ dataDir: join(work.path, "server") });
  const admin = new Admin(server.url);
  await admin.biz(BIZ);
  await admin.service(BIZ, APP);
  token = await admin.agentToken(BIZ, ["*"]);
  otherToken = await admin.agentToken(BIZ, ["*"]);
  const feed = new FeedClient({ addrs: [server.url], token, biz: BIZ, uid: "probe", labels: {}, mode: "pull", log: createLogger({ write: () => undefined }) });
  const publish = async (name: string, app = APP) => {
    await admin.release(BIZ, app, name);
    return ((await feed.release(app, { current: null, wait: 0 })) as { manifest: unknown }).manifest;
  };
  await admin.file(BIZ, APP, "/etc/app/main.conf", "main v1\n", { privilege: "644" });
  await admin.file(BIZ, APP, "/etc/app/mode.conf", "same\n", { privilege: "644" });
  manifests.v1 = await publish("V1");
  await admin.file(BIZ, APP, "/etc/app/mode.conf", "same\n", { privilege: "600" });
  manifests.v2 = await publish("V2");
  await admin.file(BIZ, APP, "/etc/app/main.conf", "main v3\n", { privilege: "644" });
  await admin.hooks(BIZ, APP, null, await admin.script(BIZ, "refuse", "shell", "exit 1\n"));
  manifests.v3 = await publish("V3");
  await admin.service(BIZ, BIG_APP);
  await admin.file(BIZ, BIG_APP, "/data/big.bin", BIG, { privilege: "644" });
  manifests.big = await publish("B1", BIG_APP);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await work?.remove();
});

let seq = 0;

/** A runner on `root` (fs seam `fsys`), its log lines collected. */
function runner(root: string, options: { fsys?: Fsys; token?: string; extra?: Record<string, string>; lines?: string[] } = {}) {
  const t = options.token ?? token;
  const config = loadConfig(new Map(), { biz: String(BIZ), app: APP, feed_addrs: server.url, token: t, temp_dir: root, uid: "integrity", file_cache_dir: join(root, "..", "cache"), ...options.extra });
  const log = createLogger({ write: (line) => void options.lines?.push(line) });
  const feed = new FeedClient({ addrs: config.feedAddrs, token: t, biz: BIZ, uid: "integrity", labels: {}, mode: "pull", log });
  const cache = new BlobCache(config.cacheDir, config.cacheThresholdBytes, true, log);
  const fetcher = new Fetcher({ feed, cache, concurrency: 4, log });
  return new Runner({ config, feed: { postEvent: async () => undefined }, fetcher, log, mode: "pull", fsys: options.fsys ?? nodeFsys });
}

/** A fresh world `{base}/temp` with V1 applied; `{base}/x/sentinel2` lies outside the service folder. */
async function withV1(): Promise<{ base: string; root: string; app: string }> {
  const base = join(work.path, `w${++seq}`);
  const root = join(base, "temp");
  await mkdir(join(base, "x"), { recursive: true });
  await mkdir(root);
  await writeFile(join(base, "x/sentinel2"), "outside\n");
  const first = await runner(root).apply(APP, manifests.v1);
  expect(first.status, first.message).toBe("SUCCESS");
  return { base, root, app: join(root, String(BIZ), APP) };
}

const exists = (path: string) => stat(path).then(() => true, () => false);
const forgedPost = (marker: string) => ({ type: "shell", content: `touch ${marker}\n` });

/** Rewrites a file's bytes in place (same inode, same size) and puts its times back to the nanosecond (`dd conv=notrunc` + `touch -r`). */
async function tamper(path: string, bytes: string): Promise<void> {
  const ref = `${path}.times`;
  await writeFile(ref, "");
  execFileSync("touch", ["-r", path, ref]);
  await writeFile(path, bytes, { flag: "r+" });
  execFileSync("touch", ["-r", ref, path]);
  await rm(ref);
}

describe("forged bookkeeping in .edgeconf/ is never acted on", () => {
  it("security: a forged switch journal (the pentester's repro) writes and removes nothing outside; the pull is FAILED naming it; the disk stays as is", async () => {
    const { base, root, app } = await withV1();
    await writeFile(join(app, "files/etc/app/.z.edgeconf-tmp-evil"), "evil\n");
    const plan = {
      id: "x",
      writes: [{ rel: "files/../../../../x/owned", tmp: "files/etc/app/.z.edgeconf-tmp-evil", backup: null, mode: 420, owner: { uid: 0, gid: 0 } }],
      removes: [{ rel: "files/../../../../x/sentinel2", backup: ".edgeconf/previous/x-0" }],
      backedUp: false,
    };
    const journal = JSON.stringify({ phase: "switch", manifest: manifests.v1, previous: null, startedAt: new Date().toISOString(), plan });
    await writeFile(join(app, ".edgeconf/journal.json"), journal);
    const started = await runner(root).start(APP);
    const outcome = await runner(root).apply(APP, manifests.v1);
    expect(await exists(join(base, "x/owned"))).toBe(false);
    expect(await readFile(join(base, "x/sentinel2"), "utf8")).toBe("outside\n");
    expect(started).toBeNull();
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toContain(join(app, ".edgeconf/journal.json"));
    expect(outcome.message).toContain("not written by this agent");
    expect(await readFile(join(app, ".edgeconf/journal.json"), "utf8")).toBe(journal);
    expect(await readFile(join(app, "files/etc/app/.z.edgeconf-tmp-evil"), "utf8")).toBe("evil\n");
  });

  it("security: a forged journal at phase post runs no script at restart nor at the next pull", async () => {
    const { base, root, app } = await withV1();
    const marker = join(base, "x/pwned");
    const manifest = { ...manifests.v1, hooks: { pre: null, post: forgedPost(marker), validate: null } };
    await writeFile(join(app, ".edgeconf/journal.json"), JSON.stringify({ phase: "post", manifest, previous: null, startedAt: new Date().toISOString() }));
    await runner(root).start(APP);
    const outcome = await runner(root).apply(APP, manifests.v1);
    expect(await exists(marker)).toBe(false);
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toContain("journal.json");
  });

  it("security: a state.json whose manifest was edited (tag no longer valid) runs no script in a rollback; one warning says it is ignored", async () => {
    const { base, root, app } = await withV1();
    const marker = join(base, "x/pwned");
    const statePath = join(app, ".edgeconf/state.json");
    const state = JSON.parse(await readFile(statePath, "utf8"));
    state.manifest.hooks.post = forgedPost(marker);
    await writeFile(statePath, JSON.stringify(state));
    const lines: string[] = [];
    const outcome = await runner(root, { extra: { on_post_failure: "rollback" }, lines }).apply(APP, manifests.v3);
    expect(await exists(marker)).toBe(false);
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toContain("no previous release to roll back to");
    expect(lines.filter((l) => l.includes("state.json was not written by this agent"))).toHaveLength(1);
  });

  it("security: a journal sealed by the agent whose plan leaves files/ or misplaces a temp file or backup is refused all the same", async () => {
    const bad = [
      { writes: [], removes: [{ rel: "files/etc/../../../x/sentinel2", backup: ".edgeconf/previous/ab-0" }] },
      { writes: [{ rel: "/etc/passwd", tmp: null, backup: null, mode: 420 }], removes: [] },
      { writes: [{ rel: "files/etc/app/main.conf", tmp: "files/etc/.main.conf.edgeconf-tmp-1", backup: null, mode: 420 }], removes: [] },
      { writes: [{ rel: "files/etc/app/main.conf", tmp: null, backup: ".edgeconf/state.json", mode: 420 }], removes: [] },
      { writes: [{ rel: "files/etc//app", tmp: null, backup: null, mode: 420 }], removes: [] },
    ];
    for (const p of bad) {
      const { base, root, app } = await withV1();
      const paths = appPaths(root, BIZ, APP);
      await writeJournal(paths, keyOf({ config: { token } }), { phase: "switch", manifest: manifests.v2, previous: null, startedAt: "", plan: { id: "ab", backedUp: true, ...p } as never });
      const outcome = await runner(root).apply(APP, manifests.v2);
      expect(outcome.status, JSON.stringify(p)).toBe("FAILED");
      expect(outcome.message).toContain("plan is refused");
      expect(await readFile(join(base, "x/sentinel2"), "utf8")).toBe("outside\n");
      expect(await readFile(join(app, "files/etc/app/main.conf"), "utf8")).toBe("main v1\n");
    }
  });

  it("happy: another token makes the old state unverifiable: every file is checked by its hash (nothing rewritten), then the state is the new token's", async () => {
    const { root, app } = await withV1();
    const ino = (await stat(join(app, "files/etc/app/main.conf"))).ino;
    const lines: string[] = [];
    const again = await runner(root, { token: otherToken, lines }).apply(APP, manifests.v1);
    expect(again.status, again.message).toBe("SUCCESS");
    expect(lines.some((l) => l.includes("state.json was not written by this agent"))).toBe(true);
    expect((await stat(join(app, "files/etc/app/main.conf"))).ino).toBe(ino);
    expect((await runner(root, { token: otherToken }).apply(APP, manifests.v1)).status).toBe("SKIPPED");
    // And the first token now sees a state it cannot verify.
    expect((await runner(root).apply(APP, manifests.v1)).status).toBe("SUCCESS");
  });
});

describe("the key stays the agent's", () => {
  it("security: no file the agent writes (state, journal, scripts, cache, metadata) holds the token", async () => {
    const { base, root } = await withV1();
    expect((await runner(root, { extra: { on_post_failure: "rollback" } }).apply(APP, manifests.v3)).status).toBe("FAILED");
    const files = (await readdir(base, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) expect(await readFile(join(f.parentPath, f.name), "utf8"), join(f.parentPath, f.name)).not.toContain(token);
  });
});

describe("a file checked once is not trusted by its mtime, nor between its check and its copy", () => {
  it("security: bytes changed in place with the mtime put back are not 'already applied': the release is written again", async () => {
    const { root, app } = await withV1();
    const main = join(app, "files/etc/app/main.conf");
    await tamper(main, "MAIN V1\n");
    const outcome = await runner(root).apply(APP, manifests.v1);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await readFile(main, "utf8")).toBe("main v1\n");
  });

  it("security: a mode-only release does not copy bytes changed in place with the mtime put back", async () => {
    const { root, app } = await withV1();
    const mode = join(app, "files/etc/app/mode.conf");
    await tamper(mode, "SAME\n");
    const outcome = await runner(root).apply(APP, manifests.v2);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await readFile(mode, "utf8")).toBe("same\n");
    expect((await stat(mode)).mode & 0o777).toBe(0o600);
  });

  /** A seam that rewrites `victim(path)`'s file once, right before the agent opens it to copy it into a new temp file. */
  function rewriteBeforeCopy(victim: (path: string) => boolean, bytes: string): Fsys & { hit: () => boolean } {
    let armed = false;
    let hit = false;
    return {
      ...nodeFsys,
      open: async (path, flags, mode) => {
        if (path.includes(".edgeconf-tmp-")) armed = true;
        else if (armed && !hit && victim(path)) {
          hit = true;
          await writeFile(path, bytes, { flag: "r+" });
        }
        return nodeFsys.open(path, flags, mode);
      },
      hit: () => hit,
    };
  }

  it("security: a file rewritten between its check and its copy for a mode-only release is downloaded instead", async () => {
    const { root, app } = await withV1();
    const seam = rewriteBeforeCopy((p) => p.endsWith("/mode.conf"), "SAME\n");
    const outcome = await runner(root, { fsys: seam }).apply(APP, manifests.v2);
    expect(seam.hit()).toBe(true);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await readFile(join(app, "files/etc/app/mode.conf"), "utf8")).toBe("same\n");
  });

  it("security: a cache entry rewritten between its check and its copy is dropped and the blob downloaded", async () => {
    const { base } = await withV1();
    const entry = join(base, "cache", sha256("main v1\n"));
    expect(await readFile(entry, "utf8")).toBe("main v1\n");
    const other = join(base, "temp2");
    await mkdir(other);
    // The cache names its entries through its verified folder (/proc/self/fd/N/<sha>).
    const seam = rewriteBeforeCopy((p) => p.endsWith(`/${sha256("main v1\n")}`), "MAIN V1\n");
    const outcome = await runner(other, { fsys: seam }).apply(APP, manifests.v1);
    expect(seam.hit()).toBe(true);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await readFile(join(other, String(BIZ), APP, "files/etc/app/main.conf"), "utf8")).toBe("main v1\n");
  });

  it("security: a large blob's file rewritten between its download and its copy is downloaded again", async () => {
    const root = join(work.path, `w${++seq}`, "temp");
    await mkdir(root, { recursive: true });
    const seam = rewriteBeforeCopy((p) => p.endsWith(`/${sha256(BIG)}`), "b".repeat(BIG.length));
    const outcome = await runner(root, { fsys: seam }).apply(BIG_APP, manifests.big);
    expect(seam.hit()).toBe(true);
    expect(outcome.status, outcome.message).toBe("SUCCESS");
    expect(await readFile(join(root, String(BIZ), BIG_APP, "files/data/big.bin"), "utf8")).toBe(BIG);
  });
});

/**
 * The real fs, noting the text of each journal.json the agent puts in place, in order. With
 * `freezeAt` (a journal phase), the rename that puts a journal of that phase in place is done,
 * then it and every later call never answer: the process is as good as killed there (kill -9).
 */
function journalSeam(freezeAt?: string): Fsys & { journals: string[]; frozen: () => boolean } {
  let frozen = false;
  const journals: string[] = [];
  const never = () => new Promise<never>(() => undefined);
  const seam: any = {};
  for (const [name, fn] of Object.entries(nodeFsys)) seam[name] = (...args: unknown[]) => (frozen ? never() : (fn as any)(...args));
  seam.rename = async (from: string, to: string) => {
    if (frozen) return never();
    await nodeFsys.rename(from, to);
    if (!to.endsWith("/journal.json")) return;
    const text = await readFile(to, "utf8");
    journals.push(text);
    if (freezeAt !== undefined && JSON.parse(text).phase === freezeAt) {
      frozen = true;
      return never();
    }
  };
  seam.journals = journals;
  seam.frozen = () => frozen;
  return seam;
}

let variants = 9000;
/** `m` as another release (new id), its post-script `post` (shell), without the file named `drop`. */
function variant(m: any, post: string | null, drop?: string): any {
  const id = ++variants;
  return { ...m, release: { ...m.release, id, name: `R${id}` }, files: m.files.filter((f: any) => f.name !== drop), hooks: { ...m.hooks, post: post === null ? null : { type: "shell", content: post } } };
}

/** How many times the post-scripts made by `counting` ran. */
const runs = (log: string) => readFile(log, "utf8").then((t) => t.trim().split("\n").filter(Boolean).length, () => 0);
const counting = (log: string) => `echo run >> ${log}\n`;

/** V1 applied, then `manifest` applied by a runner that "dies" once its journal of phase `phase` is in place. */
async function crashedAt(phase: string, manifest: unknown, root: string, app: string): Promise<void> {
  const seam = journalSeam(phase);
  void runner(root, { fsys: seam }).apply(APP, manifest); // never settles once frozen
  await until(() => seam.frozen(), `a journal of phase ${phase}`);
  // The dead process's lock goes with it (a dead holder's lock is taken over).
  await rm(join(app, ".edgeconf/lock.json"), { force: true });
}

describe("a sealed file put back from an earlier apply (replay) is refused", () => {
  it("security: a journal of an earlier apply put back once it finished (switch or post phase) is refused: no file removed, no script run again, FAILED naming it, kept", async () => {
    for (const phase of ["switch", "post"]) {
      const { base, root, app } = await withV1();
      const log = join(base, "x/post.log");
      // A release without mode.conf (the swap removes it), whose post-script counts its runs.
      const less = variant(manifests.v1, counting(log), "mode.conf");
      const seam = journalSeam();
      const first = await runner(root, { fsys: seam }).apply(APP, less);
      expect(first.status, first.message).toBe("SUCCESS");
      const old = seam.journals.find((t) => JSON.parse(t).phase === phase);
      expect(old, phase).toBeDefined();
      // V1 again: mode.conf is back; then the old journal is put back.
      expect((await runner(root).apply(APP, manifests.v1)).status).toBe("SUCCESS");
      const journal = join(app, ".edgeconf/journal.json");
      await writeFile(journal, old!);
      const lines: string[] = [];
      const started = await runner(root, { lines }).start(APP);
      const outcome = await runner(root).apply(APP, manifests.v1);
      expect(started, `${phase}: ${JSON.stringify(started)}`).toBeNull();
      expect(lines.some((l) => l.includes("journal refused"))).toBe(true);
      expect(outcome.status).toBe("FAILED");
      expect(outcome.message).toContain(journal);
      expect(outcome.message).toContain("earlier apply");
      expect(await readFile(join(app, "files/etc/app/mode.conf"), "utf8")).toBe("same\n");
      expect(await runs(log)).toBe(1);
      expect(await readFile(journal, "utf8")).toBe(old);
      expect(JSON.parse(await readFile(join(app, ".edgeconf/state.json"), "utf8")).releaseId).toBe(manifests.v1.release.id);
    }
  });

  it("security: a state.json copied while a release's post-script ran (before its failure was marked), put back, does not make that release 'already applied'", async () => {
    for (const sameRunner of [false, true]) {
      const { base, root, app } = await withV1();
      const log = join(base, "x/post.log");
      const saved = join(base, "x/state.saved");
      const failing = variant(manifests.v2, `${counting(log)}cp ${join(app, ".edgeconf/state.json")} ${saved}\nexit 1\n`);
      const agent = runner(root);
      const first = await agent.apply(APP, failing);
      expect(first.status).toBe("FAILED");
      await writeFile(join(app, ".edgeconf/state.json"), await readFile(saved));
      const again = await (sameRunner ? agent : runner(root)).apply(APP, failing);
      expect(again.status, `same runner: ${sameRunner}`).toBe("FAILED");
      expect(await runs(log)).toBe(2);
    }
  });

  it("security: a state.json of an earlier apply put back while a journal is pending is refused with it: nothing acted on, FAILED naming state.json", async () => {
    const { base, root, app } = await withV1();
    const statePath = join(app, ".edgeconf/state.json");
    const v1State = await readFile(statePath, "utf8");
    expect((await runner(root).apply(APP, manifests.v2)).status).toBe("SUCCESS");
    const log = join(base, "x/post.log");
    const next = variant(manifests.v1, counting(log));
    await crashedAt("post", next, root, app);
    const journal = await readFile(join(app, ".edgeconf/journal.json"), "utf8");
    await writeFile(statePath, v1State);
    const lines: string[] = [];
    const started = await runner(root, { lines }).start(APP);
    const outcome = await runner(root).apply(APP, next);
    expect(started).toBeNull();
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).toContain(statePath);
    expect(await runs(log)).toBe(0);
    expect(await readFile(join(app, ".edgeconf/journal.json"), "utf8")).toBe(journal);
    expect(await readFile(statePath, "utf8")).toBe(v1State);
  });

  it("happy: a state and journal of the previous agent version (no sequence) are resumed once; that journal put back again is refused", async () => {
    const { base, root, app } = await withV1();
    const log = join(base, "x/post.log");
    const next = variant(manifests.v1, counting(log));
    await crashedAt("post", next, root, app);
    // As the previous version wrote them: the same seal, no freshness fields.
    const paths = appPaths(root, BIZ, APP);
    const key = keyOf({ config: { token } });
    const legacy = (path: string) =>
      readFile(path, "utf8").then((t) => {
        const { hmac: _, seq: _s, base: _b, closed: _c, ...body } = JSON.parse(t);
        return body;
      });
    await writeState(paths, key, await legacy(paths.statePath));
    await writeJournal(paths, key, await legacy(paths.journalPath));
    const oldJournal = await readFile(paths.journalPath, "utf8");
    const resumed = await runner(root).start(APP);
    expect(resumed?.status, resumed?.message).toBe("SUCCESS");
    expect(await runs(log)).toBe(1);
    await writeFile(paths.journalPath, oldJournal);
    expect(await runner(root).start(APP)).toBeNull();
    expect((await runner(root).apply(APP, next)).status).toBe("FAILED");
    expect(await runs(log)).toBe(1);
  });
});

describe("a journal kept for the operator", () => {
  it("security: a post-phase journal refused at restart (a link planted in files/ after the swap) is kept, FAILED naming the link, the post-script not run; once the link is gone it is finished", async () => {
    const { base, root, app } = await withV1();
    const log = join(base, "x/post.log");
    const next = variant(manifests.v1, counting(log));
    await crashedAt("post", next, root, app);
    const journal = join(app, ".edgeconf/journal.json");
    const planted = join(app, "files/etc/app/planted");
    await symlink(join(base, "x"), planted);
    const refused = await runner(root).start(APP);
    expect(refused?.status).toBe("FAILED");
    expect(refused?.message).toContain(planted);
    expect(await exists(journal)).toBe(true);
    expect((await readLines(join(app, "metadata.json"))).at(-1)).toMatchObject({ status: "FAILED", releaseID: next.release.id });
    const again = await runner(root).apply(APP, next);
    expect(again.status).toBe("FAILED");
    expect(again.message).toContain(planted);
    expect(await exists(journal)).toBe(true);
    expect(await runs(log)).toBe(0);
    await rm(planted);
    const after = await runner(root).apply(APP, next);
    expect(after.status, after.message).not.toBe("FAILED");
    expect(await runs(log)).toBe(1);
    expect(await exists(journal)).toBe(false);
    expect(JSON.parse(await readFile(join(app, ".edgeconf/state.json"), "utf8")).releaseId).toBe(next.release.id);
  });
});

describe("errors about the cache folder name real paths", () => {
  it("error: a blob that cannot be moved into the cache (a folder stands at its entry) is FAILED naming the cache's real path, not /proc/self/fd/N", async () => {
    const base = join(work.path, `w${++seq}`);
    const root = join(base, "temp");
    // A folder, not empty, where the large blob's cache entry goes: the rename into it fails.
    await mkdir(join(base, "cache", sha256(BIG), "x"), { recursive: true });
    await mkdir(root, { recursive: true });
    const outcome = await runner(root).apply(BIG_APP, manifests.big);
    expect(outcome.status).toBe("FAILED");
    expect(outcome.message).not.toContain("/proc/self/fd");
    expect(outcome.message).toContain(join(base, "cache", sha256(BIG)));
  });
});
