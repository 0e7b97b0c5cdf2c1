/**
 * The service the agent's transaction suites (faults, rollback-faults) apply: a real server
 * process, `biz`/`app` with an agent token, V1 then V2 published (test/agent/versions.ts; V2 drops
 * `/etc/old/gone.conf`), each with its post-script when `post` gives one; in-process runners over
 * any fs seam; and the check every run ends with: `files/` holds one whole version, the state
 * names it, no journal and no temp file is left.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobCache } from "../../agent/cache";
import { loadConfig } from "../../agent/config";
import { Fetcher } from "../../agent/download";
import { FeedClient } from "../../agent/feed";
import type { Fsys } from "../../agent/fsys";
import { createLogger } from "../../agent/log";
import { Runner } from "../../agent/runner";
import { Admin, snapshot, startServer, tempDir } from "./harness";
import { expected, tempFilesLeft, V1, V2, type Files } from "./versions";

export type TransactionService = Awaited<ReturnType<typeof transactionService>>;

/** Starts the server and publishes V1 and V2; `post`: the post-script each version carries (shell). */
export async function transactionService(opts: { biz: number; app: string; uid: string; post?: { v1: string; v2: string } }) {
  const { biz, app, uid } = opts;
  const work = await tempDir(`edgeconf-${app}-`);
  const server = await startServer({ dataDir: join(work.path, "server") });
  const admin = new Admin(server.url);
  await admin.biz(biz);
  await admin.service(biz, app);
  const token = await admin.agentToken(biz, ["*"]);
  const feed = new FeedClient({ addrs: [server.url], token, biz, uid: "probe", labels: {}, mode: "pull", log: createLogger({ write: () => undefined }) });
  const publish = async (files: Files, name: string, post: string | undefined, drop: string[] = []) => {
    if (post !== undefined) await admin.hooks(biz, app, null, await admin.script(biz, `${app}_${name}_post`, "shell", post));
    for (const path of drop) await admin.removeFile(biz, app, path);
    for (const [path, [content, privilege]] of Object.entries(files)) await admin.file(biz, app, path, content, { privilege });
    const id = await admin.release(biz, app, name);
    return { id, manifest: ((await feed.release(app, { current: null, wait: 0 })) as { manifest: unknown }).manifest };
  };
  const one = await publish(V1, "V1", opts.post?.v1);
  const two = await publish(V2, "V2", opts.post?.v2, ["/etc/old/gone.conf"]);
  const ids: [number, number] = [one.id, two.id];
  return {
    work,
    manifests: { v1: one.manifest, v2: two.manifest, ids },
    /** The real runner on `root` as temp_dir, over `fsys`; `extra`: more agent settings. */
    runner(root: string, fsys: Fsys, extra: Record<string, string> = {}) {
      const config = loadConfig(new Map(), { biz: String(biz), app, feed_addrs: server.url, token, temp_dir: root, uid, file_cache_dir: join(work.path, "cache"), ...extra });
      const log = createLogger({ write: () => undefined });
      const feed = new FeedClient({ addrs: config.feedAddrs, token, biz, uid, labels: {}, mode: "pull", log });
      const fetcher = new Fetcher({ feed, cache: new BlobCache(config.cacheDir, config.cacheThresholdBytes, true, log), concurrency: 4, log });
      return new Runner({ config, feed: { postEvent: async () => undefined }, fetcher, log, mode: "pull", fsys });
    },
    /**
     * The version `files/` under `root` holds whole (V1's or V2's id, null for a mix), and what is
     * wrong: a mix, a state naming another version, a journal or a temp file left behind.
     */
    async wholeVersion(root: string): Promise<{ version: number | null; problems: string[] }> {
      const dir = join(root, String(biz), app);
      const canon = (x: Record<string, string>) => JSON.stringify(Object.entries(x).sort());
      const disk = await snapshot(join(dir, "files"));
      const version = canon(disk) === canon(expected(V1)) ? ids[0] : canon(disk) === canon(expected(V2)) ? ids[1] : null;
      const problems: string[] = [];
      if (version === null) problems.push(`files/ is neither V1 nor V2: ${JSON.stringify(disk)}`);
      const state = JSON.parse(await readFile(join(dir, ".edgeconf/state.json"), "utf8"));
      if (state.releaseId !== version) problems.push(`state names ${state.releaseId}, disk holds ${version}`);
      if (await readFile(join(dir, ".edgeconf/journal.json")).then(() => true, () => false)) problems.push("journal left behind");
      const temps = await tempFilesLeft(dir);
      if (temps.length) problems.push(`temp files left behind: ${temps.join(", ")}`);
      return { version, problems };
    },
    async stop() {
      await server.stop();
      await work.remove();
    },
  };
}
