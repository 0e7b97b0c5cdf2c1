/**
 * The agent's fs seam (agent/fsys.ts) with faults, for the transaction suites (faults,
 * rollback-faults): counts every call (handle methods too); the call numbered `at` fails with
 * `errno` (with `until`, every call from `at` up to but not including `until`), or with `crash`
 * it and every later call never settle (as after kill -9).
 */
import { nodeFsys, type Fsys } from "../../agent/fsys";

export function faulty(plan: { at: number; until?: number; errno?: string; crash?: boolean }): Fsys & { calls: () => number; hit: () => boolean } {
  let n = 0;
  let hit = false;
  const gate = <T>(run: () => Promise<T>): Promise<T> => {
    const index = n++;
    if (plan.crash && index >= plan.at) {
      hit = true;
      return new Promise<T>(() => undefined);
    }
    if (plan.errno && (index === plan.at || (plan.until !== undefined && index >= plan.at && index < plan.until))) {
      hit = true;
      return Promise.reject(Object.assign(new Error(`${plan.errno}: injected at call ${index}`), { code: plan.errno }));
    }
    return run();
  };
  const wrapHandle = (handle: any) =>
    new Proxy(handle, {
      get(target, prop) {
        const value = target[prop];
        if (typeof value !== "function") return value;
        if (["write", "writeFile", "chmod", "chown", "sync", "truncate", "read", "stat", "readFile"].includes(String(prop))) {
          return (...args: unknown[]) => gate(() => value.apply(target, args));
        }
        return value.bind(target);
      },
    });
  const seam: any = {};
  for (const [name, fn] of Object.entries(nodeFsys)) {
    seam[name] = (...args: unknown[]) => gate(() => (fn as any)(...args));
  }
  seam.open = (...args: unknown[]) => gate(() => (nodeFsys.open as any)(...args)).then(wrapHandle);
  seam.calls = () => n;
  seam.hit = () => hit;
  return seam;
}

