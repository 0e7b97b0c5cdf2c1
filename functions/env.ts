import type { Actor } from "./core/audit";
import type { AppDeps } from "./core/ports";

/** The one Hono environment type. Handlers read `c.var.deps`, never `c.env`. */
export type AppEnv = {
  Bindings: Record<string, unknown>;
  Variables: {
    deps: AppDeps;
    actor: Actor;
    requestId: string;
    /** The fleet-facing listener of a two-listener Node server: agent tokens only (app.ts `surface: "feed"`). */
    agentsOnly?: boolean;
  };
};
