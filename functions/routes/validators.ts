import { createRoute, z } from "@hono/zod-openapi";
import { VALIDATOR_KINDS } from "../core/check-content";
import * as validators from "../core/validators";
import { IdParam } from "../http/input";
import { errorResponses, json, jsonBody, router } from "../http/openapi";
import { AppParam } from "./services";

const Kind = z.enum(VALIDATOR_KINDS as [string, ...string[]]).openapi({ description: "json, yaml, toml, xml: the file must parse. jsonschema: a `.json` file (read as JSON) or any other (read as YAML) must match `schema`." });
const PathGlob = z
  .string()
  .min(1)
  .max(512)
  .openapi({ example: "/etc/app/*.json", description: "A glob with a '/' matches the whole path (`/etc/**/*.yaml`); one without matches the file name anywhere (`*.json`)." });
const Schema = z.unknown().openapi({ description: "JSON Schema (draft 2020-12 unless `$schema` names 4, 7 or 2019-09); required for jsonschema, refused for other kinds." });
const Memo = z.string().max(4096);
const Validator = z
  .object({ id: z.number().int(), serviceId: z.number().int(), pathGlob: z.string(), kind: Kind, schema: z.unknown().nullable(), memo: z.string(), createdAt: z.string(), updatedAt: z.string() })
  .openapi("Validator");
const CreateValidator = z.object({ pathGlob: PathGlob, kind: Kind, schema: Schema.optional(), memo: Memo.optional() }).strict();
const UpdateValidator = z.object({ pathGlob: PathGlob.optional(), kind: Kind.optional(), schema: Schema.optional(), memo: Memo.optional() }).strict();
const ValidatorParams = AppParam.extend({ validatorId: IdParam });
const tags = ["validators"];
type KindT = validators.ValidatorInput["kind"];

export const validatorRoutes = router()
  .openapi(
    createRoute({
      method: "post",
      path: "/bizs/{biz}/apps/{app}/validators",
      tags,
      description: "Adds a check that every later version of this file service must pass (kv services are refused: their items are checked against their type when written). A jsonschema validator's schema must itself be a valid JSON Schema.",
      request: { params: AppParam, body: jsonBody(CreateValidator) },
      responses: { 201: json(Validator, "Created"), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const b = c.req.valid("json");
      return c.json(await validators.createValidator(c.var.deps.db, c.var.actor, p.biz, p.app, { ...b, kind: b.kind as KindT }, c.var.deps.clock()), 201);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/apps/{app}/validators", tags, request: { params: AppParam }, responses: { 200: json(z.object({ items: z.array(Validator) })), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await validators.listValidators(c.var.deps.db, p.biz, p.app), 200);
    },
  )
  .openapi(
    createRoute({ method: "get", path: "/bizs/{biz}/apps/{app}/validators/{validatorId}", tags, request: { params: ValidatorParams }, responses: { 200: json(Validator), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await validators.getValidator(c.var.deps.db, p.biz, p.app, p.validatorId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/bizs/{biz}/apps/{app}/validators/{validatorId}",
      tags,
      description: "Applies to versions created afterwards; versions made before keep what they passed.",
      request: { params: ValidatorParams, body: jsonBody(UpdateValidator) },
      responses: { 200: json(Validator), ...errorResponses },
    }),
    async (c) => {
      const p = c.req.valid("param");
      const b = c.req.valid("json");
      return c.json(await validators.updateValidator(c.var.deps.db, c.var.actor, p.biz, p.app, p.validatorId, { ...b, kind: b.kind as KindT | undefined }, c.var.deps.clock()), 200);
    },
  )
  .openapi(
    createRoute({ method: "delete", path: "/bizs/{biz}/apps/{app}/validators/{validatorId}", tags, request: { params: ValidatorParams }, responses: { 200: json(z.object({ id: z.number().int() })), ...errorResponses } }),
    async (c) => {
      const p = c.req.valid("param");
      return c.json(await validators.deleteValidator(c.var.deps.db, c.var.actor, p.biz, p.app, p.validatorId), 200);
    },
  );
