/**
 * The rollback after a refused post-script (`on_post_failure=rollback`) under faults: it is a second
 * transaction, and when its swap and then its undo fail, its journal must stay for the next start,
 * as the first transaction's does (design: "Agent safety invariants" 1, 2). The real runner against
 * a real server process, the fs seam failing a window of consecutive calls (test/agent/fault-seam.ts);
 * after the faulted apply and a restart on the plain fs: `files/` is exactly V1 or V2, the state
 * names that version, no journal and no temp file is left.
 */
import { cp, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeFsys, type Fsys } from "../../agent/fsys";
import { faulty } from "./fault-seam";
import { transactionService, type TransactionService } from "./transaction";

const BIZ = 32;
const APP = "rollback_faults";

let svc: TransactionService;
const runner = (root: string, fsys: Fsys, onPostFailure: "rollback" | "report" = "rollback") => svc.runner(root, fsys, { on_post_failure: onPostFailure });
const wholeVersion = async (root: string) => (await svc.wholeVersion(root)).problems;

let template: string;
let seq = 0;
/** A fresh temp_dir holding V1, applied for real once and copied. */
async function prepared(): Promise<string> {
  const root = join(svc.work.path, `run-${++seq}`);
  await cp(template, root, { recursive: true, preserveTimestamps: true });
  return root;
}

beforeAll(async () => {
  // V1's post-script passes, V2's refuses: the agent rolls V2 back.
  svc = await transactionService({ biz: BIZ, app: APP, uid: "rb", post: { v1: "#!/bin/bash\nexit 0\n", v2: "#!/bin/bash\nexit 7\n" } });
  template = join(svc.work.path, "template");
  await mkdir(template, { recursive: true });
  const first = await runner(template, nodeFsys).apply(APP, svc.manifests.v1);
  expect(first.status, first.message).toBe("SUCCESS");
}, 120_000);

afterAll(() => svc?.stop());

describe("rollback under faults", () => {
  it("error: whichever calls of the rollback fail (a window of 3: its swap and then its undo too), the next start leaves one whole version", async () => {
    // The calls of the apply alone (the rollback's come after them): faults.test.ts covers those.
    const reportOnly = await prepared();
    const applyOnly = faulty({ at: Number.POSITIVE_INFINITY });
    expect((await runner(reportOnly, applyOnly, "report").apply(APP, svc.manifests.v2)).status).toBe("FAILED");
    await rm(reportOnly, { recursive: true, force: true });
    const root = await prepared();
    const counting = faulty({ at: Number.POSITIVE_INFINITY });
    const plain = await runner(root, counting).apply(APP, svc.manifests.v2);
    expect(plain.status).toBe("FAILED");
    expect(plain.message).toMatch(/rolled back to V1/);
    expect(await wholeVersion(root)).toEqual([]);
    const total = counting.calls();
    await rm(root, { recursive: true, force: true });
    const bad: string[] = [];
    // Windows of 3 two calls apart cover every pair of consecutive calls (a swap's failing step and its undo's).
    for (let at = Math.max(0, applyOnly.calls() - 40); at < total; at += 2) {
      const root = await prepared();
      const outcome = await runner(root, faulty({ at, until: at + 3, errno: "EIO" })).apply(APP, svc.manifests.v2);
      await runner(root, nodeFsys).start(APP);
      for (const v of await wholeVersion(root)) bad.push(`calls ${at}–${at + 2} failed (${outcome.status}: ${outcome.message}): ${v}`);
      await rm(root, { recursive: true, force: true });
    }
    expect(bad).toEqual([]);
  }, 300_000);
});
