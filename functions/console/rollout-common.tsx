/** @jsxImportSource hono/jsx */
/**
 * Rollout pieces other screens use: the rollout fields of the publish form (with the server's
 * defaults shown), reading them back from a query or a posted form, the settings in one line, and
 * the banner that names a service's open rollout on its screens.
 */
import { checkSettings, listRollouts, type RolloutSettings } from "../core/rollouts";
import type { CC } from "./env";
import { Badge, FieldError, errorsOf, type FormErrors } from "./layout";
import { serviceUrl } from "./service-common";

/** The server's defaults (design.md, "Rollouts"), shown in the form. */
export const ROLLOUT_DEFAULTS = { waves: "5, 25, 100", bakeSeconds: "60", maxFailurePercent: "0", reportTimeoutSeconds: "300" };
export const OPEN_ROLLOUT_STATES = ["running", "paused", "halted"];

export const rolloutsUrl = (c: CC) => `${serviceUrl(c)}/rollouts`;

/** A form field as the user typed it: the query of the review page, or the posted form. */
type Field = (name: string) => string | undefined;

/** Whether the form asked for a rollout (`how=waves`) rather than a publish at once. */
export const wantsRollout = (field: Field) => field("how") === "waves";

/**
 * The rollout settings from the form's fields, checked by the server's own rule (`checkSettings`),
 * or the field errors (keyed `waves`, `bakeSeconds`, ...). Empty fields take the defaults.
 */
export function rolloutSettingsOf(field: Field): { settings: RolloutSettings } | { errors: FormErrors } {
  const text = (name: keyof typeof ROLLOUT_DEFAULTS) => (field(name) ?? "").trim() || ROLLOUT_DEFAULTS[name];
  const whole = (name: keyof typeof ROLLOUT_DEFAULTS) => (/^\d{1,9}$/.test(text(name)) ? Number(text(name)) : NaN);
  const waves = text("waves").split(/[\s,%]+/).filter(Boolean).map((w) => (/^\d{1,3}$/.test(w) ? Number(w) : NaN));
  const settings: RolloutSettings = {
    waves,
    bakeSeconds: whole("bakeSeconds"),
    maxFailurePercent: whole("maxFailurePercent"),
    reportTimeoutSeconds: whole("reportTimeoutSeconds"),
    autoRollback: field("autoRollback") === "on",
  };
  try {
    checkSettings(settings);
    return { settings };
  } catch (e) {
    const errors = errorsOf(e, "waves");
    // `waves.2` (one wave out of range) is shown beside the waves field.
    return { errors: Object.fromEntries(Object.entries(errors).map(([k, v]) => [k.startsWith("waves") ? "waves" : k, v.startsWith(k) ? v : `${k}: ${v}`])) };
  }
}

/** "waves 5%, 25%, 100% · bake 60 s · at most 0% failures · report within 300 s · auto rollback" */
export const settingsLine = (s: RolloutSettings) =>
  `waves ${s.waves.map((w) => `${w}%`).join(", ")} · bake ${s.bakeSeconds} s · at most ${s.maxFailurePercent}% failures per wave · report within ${s.reportTimeoutSeconds} s · ${s.autoRollback ? "auto rollback on a halt" : "no auto rollback"}`;

/** The settings as hidden fields, for the review page's POST. */
export const SettingsHidden = ({ s }: { s: RolloutSettings }) => (
  <>
    <input type="hidden" name="how" value="waves" />
    <input type="hidden" name="waves" value={s.waves.join(",")} />
    <input type="hidden" name="bakeSeconds" value={String(s.bakeSeconds)} />
    <input type="hidden" name="maxFailurePercent" value={String(s.maxFailurePercent)} />
    <input type="hidden" name="reportTimeoutSeconds" value={String(s.reportTimeoutSeconds)} />
    {s.autoRollback ? <input type="hidden" name="autoRollback" value="on" /> : null}
  </>
);

const NumberField = (p: { name: keyof typeof ROLLOUT_DEFAULTS; label: string; hint: string; errors?: FormErrors }) => (
  <div>
    <label for={`rollout-${p.name}`}>{p.label} <span class="hint">{p.hint}</span></label>
    <input type="text" inputmode={p.name === "waves" ? undefined : "numeric"} id={`rollout-${p.name}`} name={p.name} value={ROLLOUT_DEFAULTS[p.name]} class={p.errors?.[p.name] ? "invalid" : ""} />
    <FieldError errors={p.errors} name={p.name} />
  </div>
);

/** The publish form's "how" choice: at once, or in waves with the rollout's settings (defaults filled in). */
export const RolloutFields = (p: { errors?: FormErrors }) => (
  <fieldset class="target" data-testid="rollout-fields">
    <legend>How</legend>
    <label class="choice"><input type="radio" name="how" value="now" checked /> at once: every targeted client gets it now</label>
    <label class="choice"><input type="radio" name="how" value="waves" /> progressive rollout: in waves, each gated on its hosts' reports</label>
    <div class="row">
      <NumberField name="waves" label="Waves" hint="% of the targeted clients, increasing, ending at 100" errors={p.errors} />
      <NumberField name="bakeSeconds" label="Bake" hint="seconds a wave stays healthy after its last report" errors={p.errors} />
    </div>
    <div class="row">
      <NumberField name="maxFailurePercent" label="Max failures" hint="% of a wave allowed to fail; more halts" errors={p.errors} />
      <NumberField name="reportTimeoutSeconds" label="Report timeout" hint="seconds; a silent host then counts as failed" errors={p.errors} />
    </div>
    <label class="choice"><input type="checkbox" name="autoRollback" value="on" checked /> auto rollback: on a halt, the wave's hosts get back the version they had</label>
  </fieldset>
);

/** A rollout's state as a badge (colours in the stylesheet, `badge rollout-<state>`). */
export const RolloutState = ({ state }: { state: string }) => <Badge kind={`rollout-${state}`} label={state.replace("_", " ")} />;

/** On a service's screens: its open rollout (running, paused or halted), if any, with a link to it. */
export async function OpenRolloutBanner({ c, biz, app }: { c: CC; biz: number; app: string }) {
  const newest = (await listRollouts(c.var.deps.db, biz, app, { limit: 1, offset: 0 })).items[0];
  if (!newest || !OPEN_ROLLOUT_STATES.includes(newest.state)) return null;
  const wave = newest.currentWave;
  return (
    <p class="flash rollout-banner" data-testid="open-rollout">
      Rollout {newest.id} of {newest.version.name} is <RolloutState state={newest.state} />: wave {wave + 1} of {newest.waves.length} ({newest.waves[wave]}%) released.{" "}
      <a href={`${rolloutsUrl(c)}/${newest.id}`}>Follow and control it →</a>
    </p>
  );
}
