-- Cross-instance news as part of the commit (issue 11): a NOTIFY sent inside a transaction is delivered
-- when, and only when, it commits, so a server killed between its commit and a NOTIFY of its own can no
-- longer leave the other instances serving a stale publish list (up to 60 s) or a revoked token. The
-- payloads are those functions/adapters/pg-notifier.ts LISTENs for: '<id>:<origin>[:gone]'. <origin> is
-- the writing instance's tag, set per transaction by db/drivers/node.ts (set_config('edgeconf.origin',
-- ..., true)), so the writer skips its own news (it told its own process already); a write made
-- outside edgeconf (psql) carries none, and every instance takes it.
CREATE OR REPLACE FUNCTION edgeconf_origin() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce(current_setting('edgeconf.origin', true), '')
$$;
--> statement-breakpoint
-- Any change to a service's publishes (a publish, a rollback, a rollout's next wave, a cascade).
CREATE OR REPLACE FUNCTION edgeconf_notify_publishes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('edgeconf_release', (CASE WHEN TG_OP = 'DELETE' THEN OLD.service_id ELSE NEW.service_id END)::text || ':' || edgeconf_origin());
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER publishes_notify AFTER INSERT OR UPDATE OR DELETE ON publishes FOR EACH ROW EXECUTE FUNCTION edgeconf_notify_publishes();
--> statement-breakpoint
-- A deleted service (or its biz): polls held on it end with 404 everywhere.
CREATE OR REPLACE FUNCTION edgeconf_notify_service_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('edgeconf_release', OLD.id::text || ':' || edgeconf_origin() || ':gone');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER services_notify_gone AFTER DELETE ON services FOR EACH ROW EXECUTE FUNCTION edgeconf_notify_service_gone();
--> statement-breakpoint
-- A revoked (or deleted) credential: every instance forgets the token and ends the polls held with it.
-- With the argument 'changed' (its scope or kind edited; psql, the API never edits them): every
-- instance forgets its copy of the token and verifies it again at its next use; polls held with it go on.
CREATE OR REPLACE FUNCTION edgeconf_notify_credential() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('edgeconf_credential', OLD.id::text || ':' || edgeconf_origin() || coalesce(':' || TG_ARGV[0], ''));
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER credentials_notify_revoked AFTER UPDATE OF revoked_at ON credentials FOR EACH ROW WHEN (NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS DISTINCT FROM NEW.revoked_at) EXECUTE FUNCTION edgeconf_notify_credential();
--> statement-breakpoint
CREATE TRIGGER credentials_notify_deleted AFTER DELETE ON credentials FOR EACH ROW EXECUTE FUNCTION edgeconf_notify_credential();
--> statement-breakpoint
CREATE TRIGGER credentials_notify_changed AFTER UPDATE OF kind, biz_id, apps, token_hash ON credentials FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind OR OLD.biz_id IS DISTINCT FROM NEW.biz_id OR OLD.apps IS DISTINCT FROM NEW.apps OR OLD.token_hash IS DISTINCT FROM NEW.token_hash) EXECUTE FUNCTION edgeconf_notify_credential('changed');
--> statement-breakpoint
-- TRUNCATE names no rows: every instance reads everything again, as after a lost LISTEN connection.
CREATE OR REPLACE FUNCTION edgeconf_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('edgeconf_release', '0:' || edgeconf_origin() || ':all');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER publishes_notify_truncate AFTER TRUNCATE ON publishes FOR EACH STATEMENT EXECUTE FUNCTION edgeconf_notify_truncate();
--> statement-breakpoint
CREATE TRIGGER services_notify_truncate AFTER TRUNCATE ON services FOR EACH STATEMENT EXECUTE FUNCTION edgeconf_notify_truncate();
