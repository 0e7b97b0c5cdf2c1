/** The runner's script phase: the environment, running a pre/post script, its failure message. */
import { join } from "node:path";
import type { Attempt, HookReport, RunnerDeps } from "./attempt.js";
import { hookEnv, hookFileName, runHook, scriptEnvironment, type HookName, type HookResult } from "./hooks.js";
import type { Manifest } from "./manifest.js";

export function scriptEnv(deps: RunnerDeps, attempt: Attempt, versionName: string, releaseId: number | null): Record<string, string> {
  const { config } = deps;
  return hookEnv({ tempDir: config.tempDir, biz: config.biz, app: attempt.app, appDir: attempt.paths.appDir, versionName, releaseId });
}

/** Runs `manifest`'s `which` script if it has one (null otherwise), logging the result. */
export async function runScript(deps: RunnerDeps, attempt: Attempt, which: HookName, manifest: Manifest, env: Record<string, string>): Promise<HookResult | null> {
  const hook = manifest.hooks[which];
  if (!hook) return null;
  const log = deps.log.with({ app: attempt.app });
  const { lock } = attempt;
  const timeoutMs = deps.config.hookTimeoutMs;
  // What runs is the manifest's content (hooks/ is only a copy to read), without the agent's token.
  const result = await runHook({
    content: hook.content,
    type: hook.type,
    displayPath: join(attempt.paths.hooksDir, hookFileName(which, hook.type)),
    runDir: lock?.runDir ?? join(attempt.paths.privateDir, "run"),
    name: `${which}_hook`,
    cwd: attempt.paths.appDir,
    env: scriptEnvironment(deps.env ?? process.env, [deps.config.token], env),
    timeoutMs,
    spawn: deps.spawn,
    onSpawn: (pid) => lock?.hookStarted(which, pid, timeoutMs),
  });
  await lock?.hookEnded();
  const fields = { script: `${which}_hook`, exitCode: result.exitCode, durationMs: result.durationMs, output: result.output.trimEnd() };
  if (result.exitCode === 0) log.info("exec hook success", fields);
  else log.error(result.timedOut ? "exec hook timed out, process group killed" : "exec hook failed", fields);
  return result;
}

/**
 * The FAILED message of a script: its kind, exit code and the last line of its output. A
 * validate script is named (`validate-script nginx_check@v3`) and gives its last lines (up to
 * 1,000 characters): that output is why the release was refused.
 */
export function scriptFailure(deps: RunnerDeps, which: HookName, result: HookResult, hook?: { scriptName?: string; versionName?: string } | null): string {
  const name = which === "validate" ? `validate-script${hook?.scriptName ? ` ${hook.scriptName}${hook.versionName ? `@${hook.versionName}` : ""}` : ""}` : `${which}-script`;
  if (result.timedOut) return `${name} timed out after ${deps.config.hookTimeoutMs / 1000}s and was killed`;
  const tail = result.outputTail.trim();
  if (which === "validate") return `${name} exited with code ${result.exitCode}, nothing applied${tail ? `: ${tail.length > 1000 ? `…${tail.slice(-999)}` : tail}` : ""}`;
  const last = tail.split("\n").pop() ?? "";
  return `${name} exited with code ${result.exitCode}${last ? `: ${last.slice(0, 200)}` : ""}`;
}

export function hookReport(result: HookResult): HookReport {
  return { exitCode: result.exitCode, durationMs: result.durationMs, outputTail: result.outputTail };
}
