import Foundation
import Pipeline

/// Versioned, forward-only migrations of the PostgreSQL schema, applied by `pipeline db migrate`
/// as the owner role. Every tenant table has `organization_id`, row-level security enabled and
/// forced, and one policy on `current_setting('app.org_id', true)`. The pipeline connects as a
/// role that is granted `lightsail_app`: it neither owns the tables nor bypasses RLS, and it may
/// only append to evidence and the audit log.
public enum PostgresMigrations {
    public static let appRole = "lightsail_app"
    /// Key of the advisory lock that serializes concurrent `migrate` runs.
    static let lockKey: Int64 = 0x4C_49_47_48_54 // "LIGHT"

    static let tenantTables = ["organizations", "members", "integrations", "runs", "evidence", "run_evidence",
                               "evidence_controls", "check_results", "scores", "exports", "audit_log"]

    public static let all: [(version: Int, name: String, sql: String)] = [
        (1, "tenant schema with row-level security", """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(appRole)') THEN
                CREATE ROLE \(appRole) NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by a migration of another database on the same server
        END $$;

        CREATE TABLE organizations (
            organization_id text PRIMARY KEY,
            name text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE members (
            organization_id text NOT NULL REFERENCES organizations,
            actor text NOT NULL,
            role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, actor)
        );
        CREATE TABLE integrations (
            organization_id text NOT NULL REFERENCES organizations,
            kind text NOT NULL,
            settings jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, kind)
        );
        CREATE TABLE runs (
            organization_id text NOT NULL,
            id text PRIMARY KEY,
            pipeline text NOT NULL,
            actor text NOT NULL,
            as_of timestamptz NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled')),
            message text
        );
        CREATE INDEX runs_org_started ON runs (organization_id, started_at);
        CREATE TABLE evidence (
            organization_id text NOT NULL,
            id text NOT NULL,
            source text NOT NULL,
            operation text NOT NULL,
            resource text NOT NULL,
            request text NOT NULL,
            status integer NOT NULL,
            collected_at timestamptz NOT NULL,
            fresh_until timestamptz NOT NULL,
            sha256 text NOT NULL,
            media_type text NOT NULL,
            size bigint NOT NULL,
            object_key text NOT NULL,
            first_run_id text NOT NULL,
            PRIMARY KEY (organization_id, id)
        );
        -- One row per evidence item a run saw. No unique key: the store writes each item once per
        -- run, and a narrow index keeps bulk loads fast.
        CREATE TABLE run_evidence (
            organization_id text NOT NULL,
            run_id text NOT NULL,
            evidence_id text NOT NULL
        );
        CREATE INDEX run_evidence_run ON run_evidence (organization_id, run_id);
        CREATE TABLE evidence_controls (
            organization_id text NOT NULL,
            evidence_id text NOT NULL,
            control text NOT NULL,
            PRIMARY KEY (organization_id, evidence_id, control)
        );
        CREATE TABLE check_results (
            organization_id text NOT NULL,
            run_id text NOT NULL,
            check_id text NOT NULL,
            status text NOT NULL,
            reason text NOT NULL,
            findings jsonb NOT NULL,
            controls jsonb NOT NULL,
            evidence_ids jsonb NOT NULL,
            PRIMARY KEY (organization_id, run_id, check_id)
        );
        CREATE TABLE scores (
            organization_id text NOT NULL,
            run_id text NOT NULL,
            framework text NOT NULL,
            passed integer NOT NULL,
            failed integer NOT NULL,
            not_verified integer NOT NULL,
            not_applicable integer NOT NULL,
            excepted integer NOT NULL,
            PRIMARY KEY (organization_id, run_id, framework)
        );
        CREATE TABLE exports (
            organization_id text NOT NULL,
            id text NOT NULL,
            run_id text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            artifacts jsonb NOT NULL,
            PRIMARY KEY (organization_id, id)
        );
        CREATE TABLE audit_log (
            organization_id text NOT NULL,
            seq bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            actor text NOT NULL,
            action text NOT NULL,
            entity_type text NOT NULL,
            entity_id text NOT NULL,
            detail text NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_log_org ON audit_log (organization_id, seq);
        """ + tenantTables.map { "\n" + isolated($0) }.joined() + """

        GRANT SELECT, INSERT, UPDATE ON organizations, runs, members, integrations TO \(appRole);
        GRANT DELETE ON members, integrations TO \(appRole);
        GRANT SELECT, INSERT ON evidence, run_evidence, evidence_controls, audit_log TO \(appRole);
        GRANT SELECT, INSERT, UPDATE ON check_results, scores, exports TO \(appRole);
        GRANT USAGE ON SEQUENCE audit_log_seq_seq TO \(appRole);
        GRANT SELECT ON schema_migrations TO \(appRole);
        """),
        (2, "history that cannot be rewritten quietly", """
        -- A run's key includes its organization: another tenant's run ids cannot be probed through
        -- a key collision. Runs record the host and process running them, so a run left 'running'
        -- by a killed process can be told from one still going, and marked abandoned.
        ALTER TABLE runs DROP CONSTRAINT runs_pkey;
        ALTER TABLE runs ADD PRIMARY KEY (organization_id, id);
        ALTER TABLE runs ADD COLUMN host text NOT NULL DEFAULT '';
        ALTER TABLE runs ADD COLUMN pid integer NOT NULL DEFAULT 0;
        ALTER TABLE runs DROP CONSTRAINT runs_status_check;
        ALTER TABLE runs ADD CONSTRAINT runs_status_check
            CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned'));

        -- Results, scores and exports are append-only for the pipeline: a new run adds rows,
        -- nothing rewrites them.
        REVOKE UPDATE, DELETE ON check_results, scores, exports FROM \(appRole);

        -- Every change to members and integrations writes its audit row in the same transaction,
        -- whoever makes it and however (the command line sets app.actor; anyone else is named by
        -- their database role).
        CREATE FUNCTION audit_membership_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            who text := coalesce(nullif(current_setting('app.actor', true), ''), session_user);
        BEGIN
            IF TG_TABLE_NAME = 'members' THEN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, detail)
                    VALUES (NEW.organization_id, who, 'member.added', 'member', NEW.actor, NEW.role);
                ELSIF TG_OP = 'UPDATE' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, detail)
                    VALUES (NEW.organization_id, who, 'member.role_changed', 'member', NEW.actor, OLD.role || ' -> ' || NEW.role);
                ELSE
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (OLD.organization_id, who, 'member.removed', 'member', OLD.actor);
                END IF;
            ELSE
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (NEW.organization_id, who, 'integration.added', 'integration', NEW.kind);
                ELSIF TG_OP = 'UPDATE' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (NEW.organization_id, who, 'integration.changed', 'integration', NEW.kind);
                ELSE
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (OLD.organization_id, who, 'integration.removed', 'integration', OLD.kind);
                END IF;
            END IF;
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER members_audit AFTER INSERT OR DELETE OR UPDATE OF role ON members
            FOR EACH ROW EXECUTE FUNCTION audit_membership_change();
        CREATE TRIGGER integrations_audit AFTER INSERT OR DELETE OR UPDATE ON integrations
            FOR EACH ROW EXECUTE FUNCTION audit_membership_change();
        """),
        (3, "organizations live in the store", """
        -- Integrations carry their credentials sealed (AES-256-GCM) with the id of the key.
        ALTER TABLE integrations ADD COLUMN secret bytea;
        ALTER TABLE integrations ADD COLUMN key_id text;
        -- An organization can be removed (its evidence, runs and audit log stay as history).
        GRANT DELETE ON organizations TO \(appRole);
        -- The scheduler runs every organization, which row-level security hides from the
        -- pipeline's role: a function of the schema's owner lists their ids and names, nothing more.
        CREATE POLICY owner_lists_organizations ON organizations FOR SELECT TO CURRENT_USER USING (true);
        CREATE FUNCTION organization_directory() RETURNS TABLE (organization_id text, name text)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
            AS $$ SELECT organization_id, name FROM organizations ORDER BY organization_id $$;
        REVOKE ALL ON FUNCTION organization_directory() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION organization_directory() TO \(appRole);
        """),
        (4, "credential rotation audited as such", """
        -- Re-sealing an integration's credentials under a new key (pipeline keys rotate, which sets
        -- app.reseal) changes nothing else of it, and is audited as what it is, naming both keys.
        CREATE OR REPLACE FUNCTION audit_membership_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            who text := coalesce(nullif(current_setting('app.actor', true), ''), session_user);
        BEGIN
            IF TG_TABLE_NAME = 'members' THEN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, detail)
                    VALUES (NEW.organization_id, who, 'member.added', 'member', NEW.actor, NEW.role);
                ELSIF TG_OP = 'UPDATE' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, detail)
                    VALUES (NEW.organization_id, who, 'member.role_changed', 'member', NEW.actor, OLD.role || ' -> ' || NEW.role);
                ELSE
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (OLD.organization_id, who, 'member.removed', 'member', OLD.actor);
                END IF;
            ELSE
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (NEW.organization_id, who, 'integration.added', 'integration', NEW.kind);
                ELSIF TG_OP = 'UPDATE' AND current_setting('app.reseal', true) = 'on'
                      AND NEW.settings = OLD.settings AND NEW.key_id IS DISTINCT FROM OLD.key_id THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, detail)
                    VALUES (NEW.organization_id, who, 'integration.resealed', 'integration', NEW.kind,
                            OLD.key_id || ' -> ' || NEW.key_id);
                ELSIF TG_OP = 'UPDATE' THEN
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (NEW.organization_id, who, 'integration.changed', 'integration', NEW.kind);
                ELSE
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id)
                    VALUES (OLD.organization_id, who, 'integration.removed', 'integration', OLD.kind);
                END IF;
            END IF;
            RETURN NULL;
        END
        $$;
        """),
        (5, "risk exceptions", """
        CREATE TABLE exceptions (
            organization_id text NOT NULL REFERENCES organizations (organization_id) ON DELETE CASCADE,
            id text NOT NULL,
            check_id text NOT NULL,
            resource text,
            approver text NOT NULL,
            justification text NOT NULL,
            expires_at timestamptz NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (organization_id, id)
        );
        """ + isolated("exceptions") + """
        GRANT SELECT, INSERT, DELETE ON exceptions TO \(appRole);
        """),
        (6, "weighted scores and changes since the previous run", """
        ALTER TABLE scores ADD COLUMN points integer NOT NULL DEFAULT 0;
        ALTER TABLE scores ADD COLUMN possible integer NOT NULL DEFAULT 0;
        CREATE TABLE run_changes (
            organization_id text NOT NULL,
            run_id text NOT NULL,
            changes jsonb NOT NULL,
            PRIMARY KEY (organization_id, run_id)
        );
        """ + isolated("run_changes") + """
        -- Appended with the run's results; never rewritten.
        GRANT SELECT, INSERT ON run_changes TO \(appRole);
        """),
        (7, "a durable job queue", """
        -- One row per job: an organization's pipeline for a period (a schedule's slot), unique so
        -- that enqueueing the same nightly twice makes one job. Workers take jobs with FOR UPDATE
        -- SKIP LOCKED under a lease their heartbeats extend; a job whose lease ran out is taken
        -- again; after its last attempt a failing job is dead, with its error.
        CREATE TABLE jobs (
            organization_id text NOT NULL REFERENCES organizations (organization_id) ON DELETE CASCADE,
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            queue text NOT NULL CHECK (queue IN ('evidence', 'integration', 'report', 'notification')),
            pipeline text NOT NULL,
            period text NOT NULL,
            as_of timestamptz NOT NULL,
            state text NOT NULL DEFAULT 'available'
                CHECK (state IN ('available', 'running', 'succeeded', 'dead', 'cancelled')),
            attempt integer NOT NULL DEFAULT 0,
            max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
            backoff_ms integer NOT NULL DEFAULT 5000 CHECK (backoff_ms >= 0),
            run_at timestamptz NOT NULL DEFAULT now(),
            locked_by text,
            lease_until timestamptz,
            heartbeat_at timestamptz,
            run_id text,
            last_error text,
            errors jsonb NOT NULL DEFAULT '[]',
            enqueued_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            UNIQUE (organization_id, pipeline, period)
        );
        CREATE INDEX jobs_waiting ON jobs (queue, run_at, id) WHERE state = 'available';
        CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
        """ + isolated("jobs") + """
        GRANT SELECT, INSERT, UPDATE ON jobs TO \(appRole);
        GRANT USAGE ON SEQUENCE jobs_id_seq TO \(appRole);

        -- Workers take jobs of every organization: as with organization_directory(), functions of
        -- the schema's owner do that and nothing more; everything else on a job is done under the
        -- job's organization.
        CREATE POLICY owner_coordinates_jobs ON jobs FOR ALL TO CURRENT_USER USING (true) WITH CHECK (true);

        CREATE FUNCTION claim_jobs(p_queues text[], p_worker text, p_lease_ms integer, p_limit integer)
            RETURNS TABLE (id bigint, organization_id text, queue text, pipeline text, period text, as_of timestamptz,
                           attempt integer, max_attempts integer, enqueued_by text, run_at timestamptz)
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $f$
        BEGIN
            -- A job whose worker stopped heartbeating on its last attempt is dead, not taken again.
            UPDATE jobs j SET state = 'dead', finished_at = now(), lease_until = NULL,
                   last_error = 'worker ' || coalesce(j.locked_by, '?') || ' stopped heartbeating on the last attempt',
                   errors = j.errors || jsonb_build_array(jsonb_build_object('attempt', j.attempt, 'at', now(),
                            'worker', j.locked_by, 'error', 'lease expired: the worker stopped heartbeating'))
             WHERE j.state = 'running' AND j.lease_until < now() AND j.attempt >= j.max_attempts
               AND j.queue = ANY (p_queues);
            RETURN QUERY
            WITH taken AS (
                SELECT c.id FROM jobs c
                 WHERE c.queue = ANY (p_queues)
                   AND ((c.state = 'available' AND c.run_at <= now()) OR (c.state = 'running' AND c.lease_until < now()))
                 ORDER BY c.run_at, c.id
                 LIMIT p_limit
                 FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs j SET
                   errors = CASE WHEN j.state = 'running' THEN j.errors || jsonb_build_array(jsonb_build_object(
                            'attempt', j.attempt, 'at', now(), 'worker', j.locked_by,
                            'error', 'lease expired: the worker stopped heartbeating')) ELSE j.errors END,
                   state = 'running', attempt = j.attempt + 1, locked_by = p_worker,
                   lease_until = now() + p_lease_ms * interval '1 millisecond', heartbeat_at = now(),
                   started_at = now(), finished_at = NULL
              FROM taken WHERE j.id = taken.id
            RETURNING j.id, j.organization_id, j.queue, j.pipeline, j.period, j.as_of, j.attempt, j.max_attempts,
                      j.enqueued_by, j.run_at;
        END
        $f$;
        REVOKE ALL ON FUNCTION claim_jobs(text[], text, integer, integer) FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION claim_jobs(text[], text, integer, integer) TO \(appRole);

        -- Counts for health and metrics: no organization, no pipeline, only how many and how old.
        CREATE FUNCTION job_queue_stats()
            RETURNS TABLE (queue text, state text, jobs bigint, oldest timestamptz)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $f$
            SELECT q.queue, q.state, count(*), min(CASE WHEN q.state = 'available' THEN q.run_at ELSE q.created_at END)
              FROM jobs q WHERE q.state IN ('available', 'running', 'dead') GROUP BY q.queue, q.state
        $f$;
        REVOKE ALL ON FUNCTION job_queue_stats() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION job_queue_stats() TO \(appRole);

        -- Idle workers LISTEN; a job becoming available wakes them.
        CREATE FUNCTION notify_job_available() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN
            PERFORM pg_notify('lightsail_jobs', NEW.queue);
            RETURN NULL;
        END
        $f$;
        CREATE TRIGGER jobs_available AFTER INSERT OR UPDATE OF state ON jobs
            FOR EACH ROW WHEN (NEW.state = 'available') EXECUTE FUNCTION notify_job_available();
        """),
        (8, "integration status", """
        -- How each integration has been doing, run after run (pipeline integrations status).
        CREATE TABLE integration_status (
            organization_id text NOT NULL REFERENCES organizations (organization_id) ON DELETE CASCADE,
            kind text NOT NULL,
            last_attempt_at timestamptz,
            last_success_at timestamptz,
            last_error_at timestamptz,
            last_error text,
            last_run_id text,
            PRIMARY KEY (organization_id, kind)
        );
        """ + isolated("integration_status") + """
        GRANT SELECT, INSERT, UPDATE ON integration_status TO \(appRole);
        """),
        (9, "organization time zones", """
        -- The time zone an organization's schedules are read in (NULL: UTC); the scheduler's
        -- directory of organizations gives it with the name.
        ALTER TABLE organizations ADD COLUMN time_zone text;
        DROP FUNCTION organization_directory();
        CREATE FUNCTION organization_directory() RETURNS TABLE (organization_id text, name text, time_zone text)
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
            AS $$ SELECT organization_id, name, time_zone FROM organizations ORDER BY organization_id $$;
        REVOKE ALL ON FUNCTION organization_directory() FROM PUBLIC;
        GRANT EXECUTE ON FUNCTION organization_directory() TO \(appRole);
        """),
    ]

    /// Row-level security enabled and forced on a tenant table, with its one policy: rows of the
    /// organization the unit of work names (`app.org_id`), and no other.
    static func isolated(_ table: String) -> String {
        """
        ALTER TABLE \(table) ENABLE ROW LEVEL SECURITY;
        ALTER TABLE \(table) FORCE ROW LEVEL SECURITY;
        CREATE POLICY tenant_isolation ON \(table)
            USING (organization_id = current_setting('app.org_id', true))
            WITH CHECK (organization_id = current_setting('app.org_id', true));

        """
    }

    public static var latest: Int { all.map(\.version).max() ?? 0 }

    /// Applies every migration not yet applied, each in its own transaction, under an advisory
    /// lock so that processes starting together apply each exactly once. Returns the versions applied.
    public static func migrate(_ connection: PostgresConnection) async throws -> [Int] {
        try await connection.run { db in
            try db.execute("SELECT pg_advisory_lock($1)", [String(lockKey)])
            defer { _ = try? db.execute("SELECT pg_advisory_unlock($1)", [String(lockKey)]) }
            try db.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())
                """)
            let applied = Set(try db.execute("SELECT version FROM schema_migrations").values.compactMap { $0[0].flatMap(Int.init) })
            var done: [Int] = []
            for migration in all where !applied.contains(migration.version) {
                try db.execute("BEGIN")
                do {
                    try db.executeScript(migration.sql)
                    try db.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                   [String(migration.version), migration.name])
                    try db.execute("COMMIT")
                } catch {
                    _ = try? db.execute("ROLLBACK")
                    let reason = (error as? PipelineError)?.message ?? "\(error)"
                    throw PipelineError(.database, "migration \(migration.version) (\(migration.name)) failed: \(reason)")
                }
                done.append(migration.version)
            }
            return done
        }
    }
}
