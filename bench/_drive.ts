// temporary driver: one server, upload, then run pulls on demand (not committed)
import { randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { Admin, ADMIN_TOKEN, startServer } from "../test/agent/harness";
const BIZ = 77, APP = "bench_files";
const server = await startServer({ dataDir: "/tmp/drive-server" });
const admin = new Admin(server.url);
await admin.biz(BIZ); await admin.service(BIZ, APP);
const contents = Array.from({ length: 1000 }, () => randomBytes(102400));
let next = 0;
await Promise.all(Array.from({ length: 8 }, async () => { while (next < 1000) { const i = next++; await admin.file(BIZ, APP, `/srv/bench/d${i % 20}/f${i}.bin`, contents[i]); } }));
await admin.release(BIZ, APP, "B1");
writeFileSync("/tmp/drive-env.sh", `export biz=${BIZ} app=${APP} feed_addrs=127.0.0.1:${server.port} token=${ADMIN_TOKEN} uid=bench port=0 download_concurrency=8 log_level=WARN\n`);
console.log("ready", server.url);
await new Promise(() => {});
