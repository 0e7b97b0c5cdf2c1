import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

export type S3rverProcess = {
  endpoint: string;
  bucket: string;
  /** Folder where s3rver keeps the objects (to check what was stored). */
  directory: string;
  /** What NodeConfig.s3 / the S3_* variables need. */
  config: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string; forcePathStyle: true };
  env: Record<string, string>;
  stop(): Promise<void>;
};

/**
 * A real S3-protocol server (s3rver) in its own process on a free loopback port, with one bucket.
 * `--openssl-legacy-provider` because its signature code needs MD4 for list paging on Node 20.
 */
export async function startS3rver(bucket = "edgeconf"): Promise<S3rverProcess> {
  const directory = await mkdtemp(path.join(os.tmpdir(), "edgeconf-s3rver-"));
  const child = spawn(
    process.execPath,
    ["--openssl-legacy-provider", path.join(root, "node_modules/s3rver/bin/s3rver.js"), "-d", directory, "-a", "127.0.0.1", "-p", "0", "--silent", "--configure-bucket", bucket],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start in 30 s:\n${out}`)), 30_000);
    child.stdout.on("data", () => {
      const m = /S3rver listening on [^:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with ${code}:\n${out}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  // s3rver accepts these fixed credentials.
  const config = { endpoint, bucket, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", region: "us-east-1", forcePathStyle: true as const };
  return {
    endpoint,
    bucket,
    directory,
    config,
    env: { S3_ENDPOINT: endpoint, S3_BUCKET: bucket, S3_ACCESS_KEY_ID: "S3RVER", S3_SECRET_ACCESS_KEY: "S3RVER", S3_REGION: "us-east-1", S3_FORCE_PATH_STYLE: "true" },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
