/**
 * Reading a kv service's items on the host: `edgeconf-agent get kv --app APP KEY` and, in
 * `watch`, `GET /kv/{app}/{key}` on the metrics port. Both read kv.json as the last apply left it
 * (no request to the server), so they answer while the feed is down.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { EXIT } from "./cli.js";
import { readKvItem } from "./kv.js";

export const GET_HELP = [
  "usage: edgeconf-agent get kv --app=APP [--biz=BIZ] [--temp-dir=DIR] [--json] KEY",
  "",
  "Prints the value of KEY from {temp_dir}/{biz}/{app}/kv.json (the kv service's items as the last",
  "apply wrote them), without asking the server. --json prints {\"type\":…,\"value\":…} instead.",
  "biz, app and temp_dir also come from the environment (default temp_dir /data/bscp).",
  "",
  "exit codes:",
  "  0  printed",
  "  2  bad usage",
  "  4  the key is absent (or no release of the service is applied yet)",
  "  5  kv.json cannot be read (a link, a bad file, no permission)",
].join("\n");

/** `get kv ...` (argv after `get`); resolves with the exit code. */
export async function runGet(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.map((a) => a.replace(/^--temp_dir/, "--temp-dir")),
      options: { app: { type: "string" }, biz: { type: "string" }, "temp-dir": { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    err(`edgeconf-agent: ${(e as Error).message}\nrun 'edgeconf-agent get --help' for usage\n`);
    return EXIT.USAGE;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(GET_HELP + "\n");
    return EXIT.OK;
  }
  const usage = (message: string) => {
    err(`edgeconf-agent: ${message}\nrun 'edgeconf-agent get --help' for usage\n`);
    return EXIT.USAGE;
  };
  const [what, key, ...rest] = positionals;
  if (what !== "kv") return usage(`get: unknown kind "${what ?? ""}"; only "kv"`);
  if (!key) return usage("get kv: missing KEY");
  if (rest.length) return usage(`unexpected argument "${rest[0]}"`);
  const app = values.app ?? env.app;
  if (!app || app.includes(",") || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(app)) return usage("get kv: --app (or app) must name one service");
  const biz = Number(values.biz ?? env.biz);
  if (!Number.isInteger(biz) || biz < 1) return usage("get kv: --biz (or biz) must be a positive whole number");
  const tempDir = values["temp-dir"] ?? env.temp_dir ?? "/data/bscp";
  let item;
  try {
    item = await readKvItem(tempDir, biz, app, key);
  } catch (e) {
    err(`edgeconf-agent: cannot read the items of ${app}: ${(e as Error).message}\n`);
    return EXIT.LOCAL;
  }
  if (!item) {
    err(`edgeconf-agent: key "${key}" is absent from ${app}'s kv.json\n`);
    return EXIT.NO_RELEASE;
  }
  out(values.json ? JSON.stringify(item) + "\n" : item.value.endsWith("\n") ? item.value : item.value + "\n");
  return EXIT.OK;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

export type KvHttpOptions = { tempDir: string; biz: number; apps: string[]; from: "loopback" | "any" | "off"; secrets: boolean };

/**
 * The `/kv/{app}/{key}` handler for the metrics server: the value as text/plain with its type in
 * `X-Edgeconf-Kv-Type`; 404 for an absent key or an app this agent does not serve; 403 to a peer
 * that is not loopback (unless `from` is "any") and for a secret (unless `secrets`). Returns false
 * for other paths.
 */
export function kvHttpHandler(o: KvHttpOptions) {
  return (path: string, req: IncomingMessage, res: ServerResponse): boolean => {
    if (o.from === "off" || !path.startsWith("/kv/")) return false;
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers });
      res.end(body);
    };
    if (o.from === "loopback" && !LOOPBACK.test(req.socket.remoteAddress ?? "")) {
      send(403, "kv items are served to loopback only (kv_http=any to change)\n");
      return true;
    }
    let parts: string[];
    try {
      parts = path.slice(4).split("/").map((s) => decodeURIComponent(s));
    } catch {
      parts = [];
    }
    const [app, key, ...extra] = parts;
    if (!app || !key || extra.length || !o.apps.includes(app)) {
      send(404, "no such service or key\n");
      return true;
    }
    readKvItem(o.tempDir, o.biz, app, key).then(
      (item) => {
        if (!item) send(404, `key "${key}" is absent\n`);
        else if (item.type === "secret" && !o.secrets) send(403, "secret items are not served over HTTP (kv_http_secrets=true to change); read kv.json or use edgeconf-agent get kv\n");
        else send(200, item.value, { "x-edgeconf-kv-type": item.type });
      },
      (e) => send(500, `cannot read kv.json: ${(e as Error).message}\n`),
    );
    return true;
  };
}
