/** @jsxImportSource hono/jsx */
import { Hono } from "hono";
import { z } from "zod";
import { listGroups } from "../core/groups";
import { listReleases } from "../core/releases";
import { createWebhook, deleteWebhook, listDeliveries, listWebhooks } from "../core/webhooks";
import { bizOf, commonProps, done, submit, type CC, type ConsoleEnv } from "./env";
import { Badge, ConfirmButton, Csrf, Empty, FieldError, FormError, Layout, TextField, when, type FormErrors, type FormValues } from "./layout";
import { appOf, ServiceHeader, serviceUrl } from "./service-common";
import { loadService } from "../core/services";
import { SafeName } from "../http/openapi";

type Status = 200 | 400 | 404 | 409 | 413 | 422;
type Created = { name: string; url: string; secret: string; format: "edgeconf" | "github" };

const hookUrl = (c: CC, id: string) => `${new URL(c.req.url).origin}/api/v1/webhooks/${id}`;

async function page(c: CC, opts: { values?: FormValues; errors?: FormErrors; status?: Status; created?: Created } = {}) {
  const biz = bizOf(c);
  const app = appOf(c);
  const { db } = c.var.deps;
  const [s, hooks, versions, groups] = await Promise.all([loadService(db, biz, app), listWebhooks(db, biz, app), listReleases(db, biz, app, { limit: 100, offset: 0 }), listGroups(db, biz, { limit: 500, offset: 0 })]);
  const deliveries = await Promise.all(hooks.items.map((w) => listDeliveries(db, biz, app, w.id, { limit: 10 })));
  const values = opts.values ?? { action: "release", format: "edgeconf" };
  const errors = opts.errors;
  return c.html(
    <Layout title={`${app} webhooks`} nav="services" biz={biz} {...commonProps(c)}>
      <ServiceHeader c={c} name={s.name} configType={s.configType} tab="webhooks" />
      {opts.created ? (
        <div class="card" data-testid="new-webhook">
          <h2>Webhook “{opts.created.name}”</h2>
          <p>POST URL: <code>{opts.created.url}</code></p>
          <p>Secret — copy it now, it is shown only this once:</p>
          <div class="secret" id="new-secret">{opts.created.secret}</div>
          {opts.created.format === "github" ? (
            <p class="small muted" data-testid="signing-help">GitHub form: paste the URL and secret into the repository's webhook settings (content type application/json). Each signed body is acted on once; a replay within 30 days is refused.</p>
          ) : (
            <p class="small muted" data-testid="signing-help">
              edgeconf form: send <code>X-Edgeconf-Signature: sha256=&lt;hex HMAC-SHA256 of "&lt;timestamp&gt;.&lt;delivery id&gt;.&lt;raw body&gt;"&gt;</code>, <code>X-Edgeconf-Timestamp</code> (unix seconds) and <code>X-Edgeconf-Delivery</code>; deliveries more than 5 minutes off or repeated are refused.
            </p>
          )}
        </div>
      ) : null}
      {hooks.items.map((w, i) => (
        <div class="card">
          <strong>{w.name}</strong> <Badge kind="type" label={w.action === "release" ? "creates a version" : "publishes"} /> <Badge kind="type" label={w.format === "github" ? "GitHub signature" : "edgeconf signature"} />
          <div class="small">URL <code>{hookUrl(c, w.id)}</code> · created {when(w.createdAt)} by {w.createdBy}</div>
          <h3 class="small">Recent deliveries</h3>
          {deliveries[i].items.length ? (
            <table>
              <tbody>
                {deliveries[i].items.map((d) => (
                  <tr><td class="small">{when(d.createdAt)}</td><td><code>{d.deliveryId}</code></td><td><Badge kind={d.status === "succeeded" ? "SUCCESS" : d.status === "duplicate" ? "type" : "FAILED"} label={d.status} /></td><td class="small">{d.message}</td></tr>
                ))}
              </tbody>
            </table>
          ) : (
            <Empty>No delivery yet.</Empty>
          )}
          <div class="actions">
            <ConfirmButton action={`${serviceUrl(c)}/webhooks/${w.id}/delete`} csrf={c.var.session.csrf} label="Delete webhook" confirm={`Delete webhook ${w.name}?`} detail="Its URL stops accepting deliveries at once; CI jobs that call it will fail." />
          </div>
        </div>
      ))}
      {hooks.items.length === 0 ? <Empty>No webhook yet.</Empty> : null}
      <h2>New webhook</h2>
      <form method="post" action={`${serviceUrl(c)}/webhooks`} class="card">
        <Csrf token={c.var.session.csrf} />
        <FormError errors={errors} known={["name", "action", "format", "versionId", "groups"]} />
        <div class="row">
          <TextField name="name" label="Name" values={values} errors={errors} required />
          <div>
            <label for="action">On delivery</label>
            <select id="action" name="action">
              <option value="release" selected={values.action !== "publish"}>create a version from the draft</option>
              <option value="publish" selected={values.action === "publish"}>publish a version</option>
            </select>
          </div>
          <div>
            <label for="format">Signature <span class="hint">fixed once created</span></label>
            <select id="format" name="format">
              <option value="edgeconf" selected={values.format !== "github"}>edgeconf (timestamp and delivery id signed)</option>
              <option value="github" selected={values.format === "github"}>GitHub (X-Hub-Signature-256)</option>
            </select>
            <FieldError errors={errors} name="format" />
          </div>
        </div>
        <div class="row">
          <div>
            <label for="versionId">Version to publish <span class="hint">publish webhooks; empty: the newest</span></label>
            <select id="versionId" name="versionId">
              <option value="">—</option>
              {versions.items.map((r) => <option value={String(r.id)} selected={values.versionId === String(r.id)}>{r.name}</option>)}
            </select>
            <FieldError errors={errors} name="versionId" />
          </div>
          <div>
            <label for="groups">To group <span class="hint">empty: all clients</span></label>
            <select id="groups" name="groups">
              <option value="">all clients</option>
              {groups.items.map((g) => <option value={String(g.id)} selected={values.groups === String(g.id)}>{g.name}</option>)}
            </select>
            <FieldError errors={errors} name="groups" />
          </div>
        </div>
        <div class="actions"><button type="submit">Create webhook</button></div>
      </form>
    </Layout>,
    opts.status ?? 200,
  );
}

const WebhookForm = z.object({
  name: z.string().trim().pipe(SafeName),
  action: z.enum(["release", "publish"], "choose what a delivery does"),
  format: z.enum(["edgeconf", "github"], "choose how deliveries are signed").default("edgeconf"),
  versionId: z.string().optional().transform((s) => (s ? Number(s) : undefined)),
  groups: z.string().optional().transform((s) => (s ? [Number(s)] : [])),
});

export const webhookRoutes = new Hono<ConsoleEnv>()
  .get("/ui/bizs/:biz/services/:app/webhooks", (c) => page(c))
  .post("/ui/bizs/:biz/services/:app/webhooks", (c) =>
    submit(
      c,
      WebhookForm,
      (d) => createWebhook(c.var.deps.db, c.var.session.actor, c.var.deps.secretKey, bizOf(c), appOf(c), d, c.var.deps.clock()),
      (values, errors, status) => page(c, { values, errors, status }),
      (w) => page(c, { created: { name: w.name, url: hookUrl(c, w.id), secret: w.secret, format: w.format } }),
    ),
  )
  .post("/ui/bizs/:biz/services/:app/webhooks/:id/delete", (c) =>
    submit(
      c,
      z.object({}),
      () => deleteWebhook(c.var.deps.db, c.var.session.actor, bizOf(c), appOf(c), c.req.param("id")),
      (_v, errors, status) => page(c, { errors, status }),
      () => done(c, `${serviceUrl(c)}/webhooks`, "Webhook deleted."),
    ),
  );
