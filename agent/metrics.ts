/** `/healthz` and Prometheus `/metrics` for `watch`, on plain `node:http`. */
import http from "node:http";
import { AGENT_VERSION } from "./config.js";

type Labels = Record<string, string>;

function key(name: string, labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))}"`);
  return parts.length ? `${name}{${parts.join(",")}}` : name;
}

export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, number>();
  private readonly help = new Map<string, [string, "counter" | "gauge"]>();
  private healthy = true;
  private healthReason = "";

  constructor() {
    this.describe("edgeconf_agent_info", "gauge", "Agent version");
    this.set("edgeconf_agent_info", { version: AGENT_VERSION }, 1);
  }

  describe(name: string, type: "counter" | "gauge", text: string): void {
    this.help.set(name, [text, type]);
  }

  inc(name: string, labels: Labels = {}, by = 1): void {
    const k = key(name, labels);
    this.counters.set(k, (this.counters.get(k) ?? 0) + by);
  }

  set(name: string, labels: Labels, value: number): void {
    this.gauges.set(key(name, labels), value);
  }

  setHealth(healthy: boolean, reason = ""): void {
    this.healthy = healthy;
    this.healthReason = reason;
  }

  render(): string {
    const lines: string[] = [];
    const byName = new Map<string, string[]>();
    for (const [k, v] of [...this.counters, ...this.gauges]) {
      const name = k.split("{")[0];
      if (!byName.has(name)) byName.set(name, []);
      byName.get(name)!.push(`${k} ${v}`);
    }
    const mem = process.memoryUsage();
    byName.set("process_resident_memory_bytes", [`process_resident_memory_bytes ${mem.rss}`]);
    this.help.set("process_resident_memory_bytes", ["Resident memory size in bytes", "gauge"]);
    for (const [name, samples] of byName) {
      const [text, type] = this.help.get(name) ?? ["", "gauge"];
      if (text) lines.push(`# HELP ${name} ${text}`);
      lines.push(`# TYPE ${name} ${type}`, ...samples);
    }
    return lines.join("\n") + "\n";
  }

  /**
   * Serves until the returned close function is called. Port 0 picks a free port. `extra` answers
   * other paths (true when it did; agent/kv-cli.ts serves `/kv/` this way).
   */
  serve(port: number, host = "0.0.0.0", extra?: (path: string, req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<{ port: number; close: () => Promise<void> }> {
    const server = http.createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (extra?.(path, req, res)) return;
      if (path === "/healthz") {
        res.writeHead(this.healthy ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: this.healthy ? "ok" : "unhealthy", reason: this.healthReason || undefined }));
      } else if (path === "/metrics") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        res.end(this.render());
      } else {
        res.writeHead(404).end();
      }
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        const address = server.address();
        resolve({
          port: typeof address === "object" && address ? address.port : port,
          close: () => new Promise((done) => server.close(() => done())),
        });
      });
    });
  }
}
