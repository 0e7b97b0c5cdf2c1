/**
 * The README runs as written: its `sh` blocks, in order, in one bash (`set -euo pipefail`), in an
 * empty scratch folder, against a fresh server process. A block that cannot run here (it starts the
 * server, needs Docker, Kubernetes, systemd, S3 or a Cloudflare account) carries the line
 * `<!-- readme-test: skip (reason) -->` just before its fence and is left out.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./helpers/database";
import { startServer, type ServerProcess } from "./helpers/server";

type ReadmeBlock = { line: number; code: string; skip: string | null };

/** Every fenced `sh` block of a Markdown text (indented ones too), with the line it starts on and its skip reason. */
function shellBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split("\n");
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    let end = i + 1;
    while (end < lines.length && !/^\s*```\s*$/.test(lines[end])) end++;
    if (open[2] === "sh") {
      let prev = i - 1;
      while (prev >= 0 && lines[prev].trim() === "") prev--;
      const marker = prev >= 0 ? /<!--\s*readme-test:\s*skip\b\s*(.*?)\s*-->/.exec(lines[prev]) : null;
      const code = lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join("\n");
      blocks.push({ line: i + 1, code, skip: marker ? marker[1] || "marked" : null });
    }
    i = end;
  }
  return blocks;
}

/** One bash script of the runnable blocks; each announces itself on stderr so a failure names its block. */
function script(blocks: ReadmeBlock[]): string {
  return ["set -euo pipefail", ...blocks.map((b) => `echo "@@readme block at line ${b.line}@@" >&2\n${b.code}`)].join("\n");
}

let server: ServerProcess;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let scratch: string;

describe("README walk-through", () => {
  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startServer({ databaseUrl: db?.url });
    scratch = await mkdtemp(path.join(os.tmpdir(), "edgeconf-readme-"));
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("finds the walk-through's blocks, and every block it leaves out says why", async () => {
    const blocks = shellBlocks(await readFile("README.md", "utf8"));
    expect(blocks.filter((b) => !b.skip).length).toBeGreaterThanOrEqual(6);
    for (const b of blocks.filter((x) => x.skip)) expect(b.skip, `block at line ${b.line}`).toMatch(/\(.{3,}\)/);
  });

  it("runs every sh block in order with bash against a fresh server; a failing command fails the test, naming its block", async () => {
    const blocks = shellBlocks(await readFile("README.md", "utf8")).filter((b) => !b.skip);
    const child = spawn("bash", ["-c", script(blocks)], {
      cwd: scratch,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: scratch, LANG: "C.UTF-8", EC: server.url, TOKEN: server.adminToken },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const last = [...err.matchAll(/@@readme block at line (\d+)@@/g)].pop()?.[1];
    expect(code, `README block at line ${last} failed (exit ${code}):\n--- stderr ---\n${err.slice(-3000)}\n--- stdout ---\n${out.slice(-3000)}`).toBe(0);
    expect(Number(last)).toBe(blocks.at(-1)!.line);
    // What the walk-through did is there: the webhook's delivery released V5, and the feed block's publish made V2 current.
    expect(out).toContain('"name":"V5"');
    expect(out).toMatch(/ETag: "r\d+"/i);
  }, 60_000);
});
