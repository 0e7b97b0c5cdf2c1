import { gte, inArray } from "drizzle-orm";
import { credentials, services } from "../../db/schema/index";
import type { NodeDatabase } from "../../db/drivers/node";
import type { ReleaseNotifier } from "../core/ports";
import { inProcessNotifier } from "./in-process-notifier";
import { causeFields, errorFields, log } from "../core/log";

export const RELEASE_CHANNEL = "edgeconf_release";
/** Revocations: `'<credentialId>:<origin>'`; every instance drops the token and ends the polls held with it. */
export const CREDENTIAL_CHANNEL = "edgeconf_credential";

export type PgNotifier = ReleaseNotifier & {
  /** Waiters held in this process (all services, or one). */
  waiting(serviceId?: number): number;
  /**
   * Runs synchronously inside `notify` (or when another instance's notification arrives), before local
   * waiters wake, so caches are dropped (or given the new list) before anyone re-reads them;
   * `gone` when the service was deleted (`removeService`).
   */
  onNotify(listener: (serviceId: number, gone: boolean) => void): () => void;
  onRevoke(listener: (credentialId: number) => void): () => void;
  /** Runs when notifications may have been missed (the LISTEN connection was lost): drop every cached publish list. */
  onResync(listener: () => void): () => void;
  close(): Promise<void>;
};

/**
 * `LISTEN edgeconf_release` for `'<serviceId>:<origin>[:gone]'`, sent by the database's triggers
 * when a change to a service's publishes commits (`:gone`: the service was deleted; see
 * db/migrations/0006_notify_triggers.sql), so every instance on one database wakes its own
 * in-process waiters, and no instance can commit a publish and die before telling the others. The
 * writing instance wakes its own waiters itself through `notify` (news tagged with its own origin,
 * `database.origin`, is skipped when it comes back), so a broken LISTEN connection never delays the
 * local case. PGlite has LISTEN/NOTIFY and triggers too: one code path for both.
 * Revocations travel the same way on `edgeconf_credential`: every instance forgets the token and
 * ends the polls held with it.
 */
export async function pgNotifier(database: Pick<NodeDatabase, "db" | "listen" | "onListenGap" | "origin">): Promise<PgNotifier> {
  const local = inProcessNotifier();
  const listeners = new Set<(serviceId: number, gone: boolean) => void>();
  const tell = (serviceId: number, gone: boolean) => {
    for (const l of listeners) {
      try {
        l(serviceId, gone);
      } catch (err) {
        log("ERROR", "notify listener failed", errorFields(err));
      }
    }
  };
  const wakeHere = (serviceId: number, gone = false) => {
    tell(serviceId, gone);
    if (gone) local.endService(serviceId);
    else local.wake(serviceId);
  };
  // Our own news comes back to us too; its origin tag lets us skip it (we woke our waiters already).
  const { origin } = database;
  // Notifications lost while the LISTEN connection was down (or a TRUNCATE, which names no rows):
  // every publish list may be stale (drop them all and let every held poll look again), a service
  // held on may be gone, and, after a gap, a revocation may have been missed (take again every
  // revocation since a minute before the loss; doing one twice is harmless).
  const resyncListeners = new Set<() => void>();
  const resync = (revokedSince: Date | null) => {
    for (const l of resyncListeners) l();
    // A service deleted meanwhile: its polls end 404 ("gone"), not woken onto its empty publish list.
    const held = local.heldServices();
    void (held.length ? database.db.select({ id: services.id }).from(services).where(inArray(services.id, held)) : Promise.resolve([]))
      .then(
        (rows) => {
          const live = new Set(rows.map((r) => r.id));
          for (const id of held) if (!live.has(id)) wakeHere(id, true);
        },
        (err) => log("ERROR", "could not read which services were deleted while LISTEN was down", causeFields(err)),
      )
      .finally(() => local.wakeAll());
    if (revokedSince)
      void database.db
        .select({ id: credentials.id })
        .from(credentials)
        .where(gte(credentials.revokedAt, revokedSince))
        .then(
          (rows) => rows.forEach((r) => local.revokeHere(r.id)),
          (err) => log("ERROR", "could not read the revocations made while LISTEN was down", causeFields(err)),
        );
  };
  const unlisten = await database.listen(RELEASE_CHANNEL, (payload) => {
    const [id, from, what] = payload.split(":");
    const serviceId = Number(id);
    if (from === origin) return;
    if (what === "all") resync(null);
    else if (Number.isInteger(serviceId) && serviceId > 0) wakeHere(serviceId, what === "gone");
  });
  const unlistenRevocations = await database.listen(CREDENTIAL_CHANNEL, (payload) => {
    const [id, from, what] = payload.split(":");
    const credentialId = Number(id);
    if (from === origin || !Number.isInteger(credentialId) || credentialId <= 0) return;
    // "changed": its scope or kind was edited; the token is verified again at its next use.
    if (what === "changed") local.forgetHere(credentialId);
    else local.revokeHere(credentialId);
  });
  database.onListenGap?.((lostAt) => resync(new Date(lostAt.getTime() - 60_000)));
  return {
    /**
     * This process only (the commit told the other instances): caches take the news at once (a poll
     * arriving now answers from it), then the waiters held here wake once the caller's turn is over,
     * so a publish's own answer is not queued behind the thousands of answers its wake writes (issue 11).
     */
    async notify(serviceId) {
      tell(serviceId, false);
      setImmediate(() => local.wake(serviceId));
    },
    async removeService(serviceId) {
      wakeHere(serviceId, true);
    },
    async revoke(credentialId) {
      local.revokeHere(credentialId);
    },
    wait: (serviceId, timeoutMs, signal, holder) => local.wait(serviceId, timeoutMs, signal, holder),
    hold: (serviceId, timeoutMs, holder, done) => local.hold(serviceId, timeoutMs, holder, done),
    waiting: (serviceId) => local.waiting(serviceId),
    onNotify(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onRevoke: (listener) => local.onRevoke(listener),
    onResync(listener) {
      resyncListeners.add(listener);
      return () => resyncListeners.delete(listener);
    },
    async close() {
      await unlisten();
      await unlistenRevocations();
    },
  };
}
