import { sql } from "drizzle-orm";
import type { NodeDatabase } from "../../db/drivers/node";
import type { ReleaseNotifier } from "../core/ports";
import { inProcessNotifier } from "./in-process-notifier";
import { errorFields, log } from "../core/log";

export const RELEASE_CHANNEL = "edgeconf_release";
/** Revocations: `'<credentialId>:<origin>'`; every instance drops the token and ends the polls held with it. */
export const CREDENTIAL_CHANNEL = "edgeconf_credential";

export type PgNotifier = ReleaseNotifier & {
  /** Waiters held in this process (all services, or one). */
  waiting(serviceId?: number): number;
  /**
   * Runs synchronously before local waiters wake, so caches are dropped before anyone re-reads them;
   * `gone` when the service was deleted (`removeService`).
   */
  onNotify(listener: (serviceId: number, gone: boolean) => void): () => void;
  onRevoke(listener: (credentialId: number) => void): () => void;
  close(): Promise<void>;
};

/**
 * Postgres `NOTIFY edgeconf_release, '<serviceId>:<origin>[:gone]'` on publish (`:gone`: on deletion) and `LISTEN` on the same channel, so
 * every instance on one database wakes its own in-process waiters. The publishing instance also
 * wakes its waiters at once (not only when its own notification comes back), so a broken LISTEN
 * connection never delays the local case. PGlite has LISTEN/NOTIFY too: one code path for both.
 * Revocations travel the same way on `edgeconf_credential`: every instance forgets the token and
 * ends the polls held with it.
 */
export async function pgNotifier(database: Pick<NodeDatabase, "db" | "listen">): Promise<PgNotifier> {
  const local = inProcessNotifier();
  const listeners = new Set<(serviceId: number, gone: boolean) => void>();
  const wakeHere = (serviceId: number, gone = false) => {
    for (const l of listeners) {
      try {
        l(serviceId, gone);
      } catch (err) {
        log("ERROR", "notify listener failed", errorFields(err));
      }
    }
    if (gone) local.endService(serviceId);
    else local.wake(serviceId);
  };
  // Our own NOTIFY comes back to us too; its origin tag lets us skip it (we woke our waiters already).
  const origin = crypto.randomUUID();
  const unlisten = await database.listen(RELEASE_CHANNEL, (payload) => {
    const [id, from, what] = payload.split(":");
    const serviceId = Number(id);
    if (from !== origin && Number.isInteger(serviceId) && serviceId > 0) wakeHere(serviceId, what === "gone");
  });
  const unlistenRevocations = await database.listen(CREDENTIAL_CHANNEL, (payload) => {
    const [id, from] = payload.split(":");
    const credentialId = Number(id);
    if (from !== origin && Number.isInteger(credentialId) && credentialId > 0) local.revokeHere(credentialId);
  });
  return {
    async notify(serviceId) {
      wakeHere(serviceId);
      await database.db.execute(sql`select pg_notify(${RELEASE_CHANNEL}, ${`${serviceId}:${origin}`})`);
    },
    async removeService(serviceId) {
      wakeHere(serviceId, true);
      await database.db.execute(sql`select pg_notify(${RELEASE_CHANNEL}, ${`${serviceId}:${origin}:gone`})`);
    },
    async revoke(credentialId) {
      local.revokeHere(credentialId);
      await database.db.execute(sql`select pg_notify(${CREDENTIAL_CHANNEL}, ${`${credentialId}:${origin}`})`);
    },
    wait: (serviceId, timeoutMs, signal, holder) => local.wait(serviceId, timeoutMs, signal, holder),
    hold: (serviceId, timeoutMs, holder, done) => local.hold(serviceId, timeoutMs, holder, done),
    waiting: (serviceId) => local.waiting(serviceId),
    onNotify(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onRevoke: (listener) => local.onRevoke(listener),
    async close() {
      await unlisten();
      await unlistenRevocations();
    },
  };
}
