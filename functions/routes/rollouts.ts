import { createRoute, z } from "@hono/zod-openapi";
import * as rollouts from "../core/rollouts";
import { Id, IdParam, intIn } from "../http/input";
import { errorResponses, json, jsonBody, Paging, router } from "../http/openapi";
import { AppParam } from "./services";

const State = z.enum(["running", "paused", "halted", "rolled_back", "aborted", "completed"]).openapi({
  description: "running → completed; running ⇄ paused; running → halted (failures past the threshold) → rolled_back with autoRollback; aborted by an operator. Open: running, paused, halted.",
});
const HookRun = z.object({ exitCode: z.number().int().nullable(), durationMs: z.number(), outputTail: z.string() }).nullable();
const Rollout = z
  .object({
    id: z.number().int(),
    serviceId: z.number().int(),
    version: z.object({ id: z.number().int(), name: z.string() }),
    publishId: z.number().int().nullable().openapi({ description: "The publish that carries the rollout (its `rollout.percent` is the released share)." }),
    state: State,
    reason: z.string().openapi({ description: "Why the state is what it is: the halt's failures, who paused or aborted." }),
    waves: z.array(z.number().int()).openapi({ description: "Cumulative percentages of the targeted clients, e.g. [5, 25, 100]." }),
    currentWave: z.number().int().openapi({ description: "Index in `waves` of the newest released wave." }),
    bakeSeconds: z.number().int(),
    maxFailurePercent: z.number().int(),
    reportTimeoutSeconds: z.number().int(),
    autoRollback: z.boolean(),
    memo: z.string(),
    createdBy: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
    finishedAt: z.string().nullable(),
    nextCheckAt: z.string().nullable().openapi({ description: "When the server looks again by itself (bake or report deadline)." }),
  })
  .openapi("Rollout");
const WaveProgress = z
  .object({
    index: z.number().int(),
    percent: z.number().int(),
    released: z.boolean(),
    releasedAt: z.string().nullable(),
    targeted: z.number().int().openapi({ description: "Known clients inside this wave's share (earlier waves' clients included: a client stays in every later wave)." }),
    succeeded: z.number().int(),
    failed: z.number().int().openapi({ description: "Reported FAILED, or online and silent past reportTimeoutSeconds." }),
    pending: z.number().int().openapi({ description: "Online, no report yet (in an unreleased wave: not yet given the version)." }),
    offline: z.number().int().openapi({ description: "Not seen within the online window and no report: not waited for." }),
    failing: z
      .array(z.object({ uid: z.string(), labels: z.record(z.string(), z.string()), wave: z.number().int(), reason: z.string(), preHook: HookRun, postHook: HookRun, reportedAt: z.string().nullable() }))
      .openapi({ description: "Failing clients (at most 50) with the agent's reason and each hook's exit code and output tail." }),
  })
  .openapi("RolloutWave");
const RolloutDetail = Rollout.extend({ progress: z.array(WaveProgress) }).openapi("RolloutDetail");

const Percent = intIn(0, 100);
/** Waves and gates, shared by POST .../rollouts and `rollout` webhooks (the rules beyond ranges: core/rollouts.ts `checkSettings`). */
export const RolloutGates = z.object({
  waves: z.array(intIn(1, 100)).min(1).max(20).openapi({ description: "Strictly increasing cumulative percentages ending at 100.", example: [5, 25, 100] }),
  bakeSeconds: intIn(0, 604800).default(60).openapi({ description: "Wait after a wave's last report before the next wave." }),
  maxFailurePercent: Percent.default(0).openapi({ description: "Failures allowed in a wave, percent of its clients; more halts the rollout." }),
  reportTimeoutSeconds: intIn(1, 604800).default(300).openapi({ description: "An online client silent this long after its wave went out counts as failed." }),
  autoRollback: z.boolean().default(true).openapi({ description: "On a halt, give the released waves' clients the version they had before." }),
});
const CreateRollout = RolloutGates.extend({
  versionId: Id,
  groups: z.array(Id).max(100).optional().openapi({ description: "Group ids; none = every client." }),
  memo: z.string().max(4096).optional(),
}).strict();
const tags = ["rollouts"];
const RolloutParam = AppParam.extend({ id: IdParam.openapi({ param: { name: "id", in: "path" } }) });

const control = (action: rollouts.Control, description: string) =>
  createRoute({
    method: "post",
    path: `/bizs/{biz}/apps/{app}/rollouts/{id}/${action}`,
    tags,
    description,
    request: {
      params: RolloutParam,
      ...(action === "abort"
        ? { body: { required: false, content: { "application/json": { schema: z.object({ rollback: z.boolean().optional().openapi({ description: "Also give the released waves back what they had before (state rolled_back)." }) }).strict() } } } }
        : {}),
    },
    responses: { 200: json(Rollout), ...errorResponses },
  });

export const rolloutRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/apps/{app}/rollouts",
      tags,
      description:
        "Starts a progressive publish: wave k reaches `waves[k]` % of the clients the groups match (stable by uid and rollout id); each wave waits for its online clients' reports, `bakeSeconds`, and at most `maxFailurePercent` failures. 409 while another rollout of the service is open.",
      request: { params: AppParam, body: jsonBody(CreateRollout) },
      responses: { 201: json(Rollout, "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await rollouts.createRollout(c.var.deps, c.var.actor, p.biz, p.app, c.req.valid("json")), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/rollouts",
      tags,
      description: "The service's rollouts, newest first.",
      request: { params: AppParam, query: z.object({ ...Paging, state: State.optional() }) },
      responses: { 200: json(z.object({ items: z.array(Rollout), total: z.number().int(), limit: z.number().int(), offset: z.number().int() })), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await rollouts.listRollouts(c.var.deps.db, p.biz, p.app, c.req.valid("query")), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bizs/{biz}/apps/{app}/rollouts/{id}",
      tags,
      description: "One rollout with per-wave progress (targeted, succeeded, failed, pending, offline) and the failing clients with reason and hook output tail.",
      request: { params: RolloutParam },
      responses: { 200: json(RolloutDetail), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await rollouts.getRollout(c.var.deps, p.biz, p.app, p.id), 200);
    },
  )
  .openapi(control("pause", "Stops stepping; released waves keep the version. Only when running."), async (c) => {
    const p = c.req.valid("param");
    return c.json(await rollouts.controlRollout(c.var.deps, c.var.actor, p.biz, p.app, p.id, "pause"), 200);
  })
  .openapi(control("resume", "Running again (from paused or halted; a halted rollout is judged again at once)."), async (c) => {
    const p = c.req.valid("param");
    return c.json(await rollouts.controlRollout(c.var.deps, c.var.actor, p.biz, p.app, p.id, "resume"), 200);
  })
  .openapi(control("advance", "Releases the next wave now, whatever the gate says (after the last wave: completed)."), async (c) => {
    const p = c.req.valid("param");
    return c.json(await rollouts.controlRollout(c.var.deps, c.var.actor, p.biz, p.app, p.id, "advance"), 200);
  })
  .openapi(control("abort", "Stops the rollout for good; clients keep what they have unless `rollback: true`."), async (c) => {
    const p = c.req.valid("param");
    return c.json(await rollouts.controlRollout(c.var.deps, c.var.actor, p.biz, p.app, p.id, "abort", (c.req.valid("json" as never) as { rollback?: boolean } | undefined) ?? {}), 200);
  });
