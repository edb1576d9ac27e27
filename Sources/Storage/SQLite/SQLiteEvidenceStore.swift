import Foundation
import Pipeline

/// The embedded default store: one SQLite file. SQLite has no row-level security, so this layer
/// enforces the tenant filter itself: every statement names `organization_id`.
public final class SQLiteEvidenceStore: EvidenceStore {
    let db: SQLiteConnection

    public init(path: String) async throws {
        db = try await SQLiteConnection.open(path: path)
        try await migrate()
    }

    /// Forward-only, versioned migrations recorded in `schema_migrations`.
    static let migrations: [(Int, String)] = [
        (1, """
        CREATE TABLE organizations (
            organization_id TEXT PRIMARY KEY,
            name TEXT NOT NULL
        );
        CREATE TABLE runs (
            organization_id TEXT NOT NULL,
            id TEXT NOT NULL PRIMARY KEY,
            pipeline TEXT NOT NULL,
            actor TEXT NOT NULL,
            as_of TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            message TEXT
        );
        CREATE INDEX runs_org ON runs(organization_id, started_at);
        CREATE TABLE evidence (
            organization_id TEXT NOT NULL,
            id TEXT NOT NULL,
            source TEXT NOT NULL,
            operation TEXT NOT NULL,
            resource TEXT NOT NULL,
            request TEXT NOT NULL,
            status INTEGER NOT NULL,
            collected_at TEXT NOT NULL,
            fresh_until TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            media_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            object_key TEXT NOT NULL,
            first_run_id TEXT NOT NULL,
            PRIMARY KEY (organization_id, id)
        );
        CREATE TABLE run_evidence (
            organization_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            evidence_id TEXT NOT NULL,
            PRIMARY KEY (organization_id, run_id, evidence_id)
        );
        CREATE TABLE check_results (
            organization_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            check_id TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            findings TEXT NOT NULL,
            controls TEXT NOT NULL,
            evidence_ids TEXT NOT NULL,
            PRIMARY KEY (organization_id, run_id, check_id)
        );
        CREATE TABLE scores (
            organization_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            framework TEXT NOT NULL,
            passed INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            not_verified INTEGER NOT NULL,
            not_applicable INTEGER NOT NULL,
            excepted INTEGER NOT NULL,
            PRIMARY KEY (organization_id, run_id, framework)
        );
        CREATE TABLE exports (
            organization_id TEXT NOT NULL,
            id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            artifacts TEXT NOT NULL,
            PRIMARY KEY (organization_id, id)
        );
        CREATE TABLE audit_log (
            organization_id TEXT NOT NULL,
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            entity_type TEXT NOT NULL,
            entity_id TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        """),
        (2, """
        CREATE TABLE members (
            organization_id TEXT NOT NULL,
            actor TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
            created_at TEXT NOT NULL,
            PRIMARY KEY (organization_id, actor)
        );
        CREATE TABLE integrations (
            organization_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            settings TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (organization_id, kind)
        );
        CREATE TABLE evidence_controls (
            organization_id TEXT NOT NULL,
            evidence_id TEXT NOT NULL,
            control TEXT NOT NULL,
            PRIMARY KEY (organization_id, evidence_id, control)
        );
        """),
        // Runs are keyed by organization and id (another tenant's ids cannot be probed), and
        // record the host and process running them, so a run left `running` by a killed process
        // can be told from one still going.
        (3, """
        CREATE TABLE runs_new (
            organization_id TEXT NOT NULL,
            id TEXT NOT NULL,
            pipeline TEXT NOT NULL,
            actor TEXT NOT NULL,
            as_of TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned')),
            message TEXT,
            host TEXT NOT NULL DEFAULT '',
            pid INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (organization_id, id)
        );
        INSERT INTO runs_new (organization_id, id, pipeline, actor, as_of, started_at, finished_at, status, message)
            SELECT organization_id, id, pipeline, actor, as_of, started_at, finished_at, status, message FROM runs;
        DROP TABLE runs;
        ALTER TABLE runs_new RENAME TO runs;
        CREATE INDEX runs_org ON runs(organization_id, started_at);
        """),
        // Integrations carry their credentials sealed (AES-256-GCM) with the id of the key.
        (4, """
        ALTER TABLE integrations ADD COLUMN secret BLOB;
        ALTER TABLE integrations ADD COLUMN key_id TEXT;
        """),
        // Risk exceptions: a check (or one resource of it) accepted as failing, until a date.
        (5, """
        CREATE TABLE exceptions (
            organization_id TEXT NOT NULL,
            id TEXT NOT NULL,
            check_id TEXT NOT NULL,
            resource TEXT,
            approver TEXT NOT NULL,
            justification TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (organization_id, id)
        );
        """),
        // Scores weighted by severity, and what changed since the previous run, with each run.
        (6, """
        ALTER TABLE scores ADD COLUMN points INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE scores ADD COLUMN possible INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE run_changes (
            organization_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            changes TEXT NOT NULL,
            PRIMARY KEY (organization_id, run_id)
        );
        """),
        // How each integration has been doing (pipeline integrations status).
        (7, """
        CREATE TABLE integration_status (
            organization_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            last_attempt_at TEXT,
            last_success_at TEXT,
            last_error_at TEXT,
            last_error TEXT,
            last_run_id TEXT,
            PRIMARY KEY (organization_id, kind)
        );
        """),
        // The time zone an organization's schedules are read in (NULL: UTC).
        (8, """
        ALTER TABLE organizations ADD COLUMN time_zone TEXT;
        """),
    ]

    public func recordIntegrationOutcome(_ kind: String, of organization: OrganizationID, run: String, at: Date, error: String?) async throws {
        let time = Timestamp.iso8601(at)
        _ = try await db.transaction { db in
            try db.query("""
                INSERT INTO integration_status (organization_id, kind, last_attempt_at, last_success_at, last_error_at, last_error, last_run_id)
                VALUES (?1, ?2, ?3, CASE WHEN ?4 IS NULL THEN ?3 END, CASE WHEN ?4 IS NOT NULL THEN ?3 END, ?4, ?5)
                ON CONFLICT (organization_id, kind) DO UPDATE SET
                    last_attempt_at = excluded.last_attempt_at, last_run_id = excluded.last_run_id,
                    last_success_at = CASE WHEN ?4 IS NULL THEN ?3 ELSE integration_status.last_success_at END,
                    last_error_at = CASE WHEN ?4 IS NOT NULL THEN ?3 ELSE integration_status.last_error_at END,
                    last_error = CASE WHEN ?4 IS NOT NULL THEN ?4 ELSE integration_status.last_error END
                """, [.text(organization.rawValue), .text(kind), .text(time), error.map { .text($0) } ?? .null, .text(run)])
        }
    }

    public func integrationStatuses(of organization: OrganizationID) async throws -> [IntegrationStatus] {
        try await db.transaction { db in
            try db.query("""
                SELECT kind, last_attempt_at, last_success_at, last_error_at, last_error, last_run_id
                FROM integration_status WHERE organization_id = ? ORDER BY kind
                """, [.text(organization.rawValue)]).map { row in
                IntegrationStatus(kind: row[0].string ?? "", lastAttemptAt: row[1].string.flatMap(Timestamp.parse),
                                  lastSuccessAt: row[2].string.flatMap(Timestamp.parse), lastErrorAt: row[3].string.flatMap(Timestamp.parse),
                                  lastError: row[4].string, lastRunID: row[5].string)
            }
        }
    }

    private func migrate() async throws {
        try await db.transaction { db in
            try db.executeNow("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            let applied = Set(try db.query("SELECT version FROM schema_migrations").compactMap { $0.first?.int })
            for (version, sql) in Self.migrations where !applied.contains(version) {
                try db.executeNow(sql)
                try db.query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                             [.integer(Int64(version)), .text(Timestamp.iso8601(Date()))])
            }
        }
    }

    static func audit(_ db: SQLiteConnection, _ org: OrganizationID, actor: String, action: String,
                      entityType: String, entityID: String, detail: String = "") throws {
        try db.query("""
            INSERT INTO audit_log (organization_id, at, actor, action, entity_type, entity_id, detail)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [.text(org.rawValue), .text(Timestamp.iso8601(Date())), .text(actor), .text(action),
                  .text(entityType), .text(entityID), .text(detail)])
    }

    public func beginRun(_ run: RunRecord) async throws {
        try await db.transaction { db in
            try db.query("""
                INSERT INTO runs (organization_id, id, pipeline, actor, as_of, started_at, status, host, pid)
                VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)
                """, [.text(run.organizationID.rawValue), .text(run.id), .text(run.pipeline), .text(run.actor),
                      .text(Timestamp.iso8601(run.asOf)), .text(Timestamp.iso8601(Date())), .text(run.host),
                      .integer(Int64(run.pid))])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "run.started", entityType: "run",
                           entityID: run.id, detail: run.pipeline)
        }
    }

    @discardableResult
    public func storeEvidence(_ batch: [Evidence], run: RunRecord) async throws -> Int {
        for evidence in batch where evidence.organizationID != run.organizationID {
            throw PipelineError(.database, "evidence \(evidence.id.prefix(12)) belongs to \(evidence.organizationID), not \(run.organizationID)")
        }
        return try await db.transaction { db in
            var inserted = 0
            for evidence in batch {
                let org = Self.text(evidence.organizationID.rawValue)
                try db.query("""
                    INSERT OR IGNORE INTO evidence (organization_id, id, source, operation, resource, request, status,
                        collected_at, fresh_until, sha256, media_type, size, object_key, first_run_id)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [org, .text(evidence.id), .text(evidence.source), .text(evidence.operation),
                          .text(evidence.resource), .text(evidence.request), .integer(Int64(evidence.status)),
                          .text(Timestamp.iso8601(evidence.collectedAt)), .text(Timestamp.iso8601(evidence.freshUntil)),
                          .text(evidence.sha256), .text(evidence.mediaType), .integer(Int64(evidence.size)),
                          .text(evidence.originalKey), .text(run.id)])
                inserted += db.changes
                try db.query("INSERT OR IGNORE INTO run_evidence (organization_id, run_id, evidence_id) VALUES (?, ?, ?)",
                             [org, .text(run.id), .text(evidence.id)])
            }
            if inserted > 0 {
                try Self.audit(db, run.organizationID, actor: run.actor, action: "evidence.stored", entityType: "run",
                               entityID: run.id, detail: "\(inserted) new evidence items")
            }
            return inserted
        }
    }

    public func storeResults(_ results: [CheckResult], scores: ScoreSummary, run: RunRecord) async throws {
        let rows = try results.map { ($0, try ResultColumns($0)) }
        try await db.transaction { db in
            let org = Self.text(run.organizationID.rawValue)
            for (result, columns) in rows {
                try db.query("""
                    INSERT INTO check_results (organization_id, run_id, check_id, status, reason, findings, controls, evidence_ids)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, [org, .text(run.id), .text(result.checkID), .text(result.status.rawValue), .text(result.reason),
                          .text(columns.findings), .text(columns.controls), .text(columns.evidenceIDs)])
            }
            for score in scores.frameworks {
                try db.query("""
                    INSERT INTO scores (organization_id, run_id, framework, passed, failed, not_verified, not_applicable, excepted,
                                        points, possible)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [org, .text(run.id), .text(score.framework), .integer(Int64(score.passed)), .integer(Int64(score.failed)),
                          .integer(Int64(score.notVerified)), .integer(Int64(score.notApplicable)), .integer(Int64(score.excepted)),
                          .integer(Int64(score.points)), .integer(Int64(score.possible))])
            }
        }
    }

    public func storeExport(_ export: ExportRecord, run: RunRecord) async throws {
        guard export.organizationID == run.organizationID else {
            throw PipelineError(.database, "export \(export.id) belongs to \(export.organizationID), not \(run.organizationID)")
        }
        let artifacts = try ResultColumns.artifacts(export)
        try await db.transaction { db in
            try db.query("""
                INSERT OR IGNORE INTO exports (organization_id, id, run_id, created_at, artifacts) VALUES (?, ?, ?, ?, ?)
                """, [.text(run.organizationID.rawValue), .text(export.id), .text(run.id),
                      .text(Timestamp.iso8601(Date())), .text(artifacts)])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "export.created", entityType: "export",
                           entityID: export.id)
        }
    }

    public func exports(of organization: OrganizationID, before: Date?, id: String?, limit: Int) async throws -> [ExportSummary] {
        try await db.run { db in
            try db.query("""
                SELECT e.id, e.run_id, r.pipeline, r.as_of, e.created_at, e.artifacts
                FROM exports e JOIN runs r ON r.organization_id = e.organization_id AND r.id = e.run_id
                WHERE e.organization_id = ? AND (? IS NULL OR r.as_of < ?) AND (? IS NULL OR e.id = ?)
                ORDER BY r.as_of DESC, e.created_at DESC, e.rowid DESC LIMIT ?
                """, [.text(organization.rawValue), before.map { .text(Timestamp.iso8601($0)) } ?? .null,
                      before.map { .text(Timestamp.iso8601($0)) } ?? .null, id.map { .text($0) } ?? .null, id.map { .text($0) } ?? .null,
                      .integer(Int64(limit))]).map { row in
                let id = row[0].string ?? ""
                return ExportSummary(id: id, runID: row[1].string ?? "", pipeline: row[2].string ?? "",
                                     asOf: row[3].string.flatMap(Timestamp.parse) ?? .distantPast,
                                     createdAt: row[4].string.flatMap(Timestamp.parse) ?? .distantPast,
                                     artifacts: try ResultColumns.artifacts(row[5].string, export: id))
            }
        }
    }

    public func finishRun(_ run: RunRecord, status: RunRecord.Status, message: String?) async throws {
        try await db.transaction { db in
            try db.query("UPDATE runs SET status = ?, finished_at = ?, message = ? WHERE organization_id = ? AND id = ?",
                         [.text(status.rawValue), .text(Timestamp.iso8601(Date())), message.map { .text($0) } ?? .null,
                          .text(run.organizationID.rawValue), .text(run.id)])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "run.\(status.rawValue)", entityType: "run",
                           entityID: run.id)
        }
    }

    public func runs(of organization: OrganizationID, status: RunRecord.Status?, limit: Int) async throws -> [RunSummary] {
        try await db.run { db in
            try db.query("""
                SELECT id, pipeline, actor, status, as_of, started_at, finished_at, host, pid, message FROM runs
                WHERE organization_id = ? AND (? IS NULL OR status = ?) ORDER BY started_at DESC, rowid DESC LIMIT ?
                """, [.text(organization.rawValue), status.map { .text($0.rawValue) } ?? .null,
                      status.map { .text($0.rawValue) } ?? .null, .integer(Int64(limit))]).map { row in
                RunSummary(id: row[0].string ?? "", pipeline: row[1].string ?? "", actor: row[2].string ?? "",
                           status: row[3].string ?? "", asOf: row[4].string.flatMap(Timestamp.parse) ?? .distantPast,
                           startedAt: row[5].string.flatMap(Timestamp.parse) ?? .distantPast,
                           finishedAt: row[6].string.flatMap(Timestamp.parse), host: row[7].string ?? "",
                           pid: Int32(row[8].int ?? 0), message: row[9].string)
            }
        }
    }

    public func abandonRun(_ id: String, of organization: OrganizationID, reason: String) async throws -> Bool {
        try await db.transaction { db in
            try db.query("""
                UPDATE runs SET status = 'abandoned', finished_at = ?, message = ?
                WHERE organization_id = ? AND id = ? AND status = 'running'
                """, [.text(Timestamp.iso8601(Date())), .text(reason), .text(organization.rawValue), .text(id)])
            guard db.changes > 0 else { return false }
            try Self.audit(db, organization, actor: Actor.systemName, action: "run.abandoned", entityType: "run",
                           entityID: id, detail: reason)
            return true
        }
    }

    public func evidenceCount(organization: OrganizationID) async throws -> Int {
        try await db.run { db in
            try db.query("SELECT count(*) FROM evidence WHERE organization_id = ?", [.text(organization.rawValue)])
                .first?.first?.int ?? 0
        }
    }

    /// Rows of a tenant table for one organization (for tests and `pipeline` inspection commands).
    public func count(table: String, organization: OrganizationID) async throws -> Int {
        let allowed = ["runs", "evidence", "run_evidence", "check_results", "scores", "exports", "audit_log"]
        guard allowed.contains(table) else { throw PipelineError(.database, "unknown table \(quotedForMessage(table))") }
        return try await db.run { db in
            try db.query("SELECT count(*) FROM \(table) WHERE organization_id = ?", [.text(organization.rawValue)])
                .first?.first?.int ?? 0
        }
    }

    public func organizations() async throws -> [Organization] {
        try await db.run { db in
            let rows = try db.query("SELECT organization_id, name, time_zone FROM organizations ORDER BY organization_id")
            var settings: [String: [String: [String: String]]] = [:]
            for row in try db.query("SELECT organization_id, kind, settings FROM integrations") {
                guard let org = row[0].string, let kind = row[1].string, let json = row[2].string else { continue }
                settings[org, default: [:]][kind] = Self.settings(json)
            }
            return rows.compactMap { row in
                guard let raw = row[0].string, let id = try? OrganizationID(raw) else { return nil }
                return Organization(id: id, name: row[1].string ?? raw, integrations: settings[raw] ?? [:], timeZone: row[2].string)
            }
        }
    }

    public func organization(_ id: OrganizationID) async throws -> Organization? {
        try await db.run { db in
            guard let row = try db.query("SELECT name, time_zone FROM organizations WHERE organization_id = ?",
                                         [.text(id.rawValue)]).first, let name = row[0].string else { return nil }
            var integrations: [String: [String: String]] = [:]
            for row in try db.query("SELECT kind, settings FROM integrations WHERE organization_id = ?", [.text(id.rawValue)]) {
                guard let kind = row[0].string, let json = row[1].string else { continue }
                integrations[kind] = Self.settings(json)
            }
            return Organization(id: id, name: name, integrations: integrations, timeZone: row[1].string)
        }
    }

    @discardableResult

    public func addOrganization(_ organization: Organization, members: [Member], integrations: [Integration],
                                actor: String) async throws -> Bool {
        let rows = try integrations.map { ($0, try Self.json($0.settings)) }
        return try await db.transaction { db in
            let org = Self.text(organization.id.rawValue)
            try db.query("INSERT OR IGNORE INTO organizations (organization_id, name, time_zone) VALUES (?, ?, ?)",
                         [org, .text(organization.name), organization.timeZone.map { .text($0) } ?? .null])
            guard db.changes > 0 else { return false }
            try Self.audit(db, organization.id, actor: actor, action: "organization.created", entityType: "organization",
                           entityID: organization.id.rawValue, detail: organization.name)
            for member in members {
                try db.query("INSERT INTO members (organization_id, actor, role, created_at) VALUES (?, ?, ?, ?)",
                             [org, .text(member.actor), .text(member.role.rawValue), .text(Timestamp.iso8601(Date()))])
                try Self.audit(db, organization.id, actor: actor, action: "member.added", entityType: "member",
                               entityID: member.actor, detail: member.role.rawValue)
            }
            for (integration, json) in rows {
                try Self.writeIntegration(db, integration, json: json, org: organization.id, actor: actor)
            }
            return true
        }
    }

    @discardableResult

    public func removeOrganization(_ id: OrganizationID, actor: String) async throws -> Bool {
        try await db.transaction { db in
            let org = Self.text(id.rawValue)
            try db.query("DELETE FROM members WHERE organization_id = ?", [org])
            try db.query("DELETE FROM integrations WHERE organization_id = ?", [org])
            try db.query("DELETE FROM exceptions WHERE organization_id = ?", [org])  // decisions about it, not its history
            try db.query("DELETE FROM organizations WHERE organization_id = ?", [org])
            guard db.changes > 0 else { return false }
            try Self.audit(db, id, actor: actor, action: "organization.removed", entityType: "organization", entityID: id.rawValue)
            return true
        }
    }

    public func setIntegration(_ integration: Integration, in organization: OrganizationID, actor: String) async throws {
        let json = try Self.json(integration.settings)
        try await db.transaction { db in
            try Self.requireOrganization(db, organization)
            try Self.writeIntegration(db, integration, json: json, org: organization, actor: actor)
        }
    }

    static func writeIntegration(_ db: SQLiteConnection, _ integration: Integration, json: String, org: OrganizationID,
                                 actor: String) throws {
        let existed = try db.query("SELECT 1 FROM integrations WHERE organization_id = ? AND kind = ?",
                                   [.text(org.rawValue), .text(integration.kind)]).isEmpty == false
        try db.query("""
            INSERT INTO integrations (organization_id, kind, settings, created_at, secret, key_id) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (organization_id, kind) DO UPDATE SET settings = excluded.settings, secret = excluded.secret,
                key_id = excluded.key_id
            """, [.text(org.rawValue), .text(integration.kind), .text(json), .text(Timestamp.iso8601(Date())),
                  integration.secret.map { .blob($0.sealed) } ?? .null, integration.secret.map { .text($0.keyID) } ?? .null])
        try audit(db, org, actor: actor, action: existed ? "integration.changed" : "integration.added",
                  entityType: "integration", entityID: integration.kind)
    }

    static func requireOrganization(_ db: SQLiteConnection, _ organization: OrganizationID) throws {
        guard !(try db.query("SELECT 1 FROM organizations WHERE organization_id = ?", [.text(organization.rawValue)])).isEmpty else {
            throw PipelineError(.unknownOrganization, "unknown organization '\(organization)': add it with `pipeline orgs add`")
        }
    }

    public func resealIntegration(_ kind: String, of organization: OrganizationID, secret: SealedSecret,
                                  replacing oldKeyID: String, actor: String) async throws -> Bool {
        try await db.transaction { db in
            try db.query("UPDATE integrations SET secret = ?, key_id = ? WHERE organization_id = ? AND kind = ? AND key_id = ?",
                         [.blob(secret.sealed), .text(secret.keyID), .text(organization.rawValue), .text(kind), .text(oldKeyID)])
            guard db.changes > 0 else { return false }
            try Self.audit(db, organization, actor: actor, action: "integration.resealed", entityType: "integration",
                           entityID: kind, detail: "\(oldKeyID) -> \(secret.keyID)")
            return true
        }
    }

    public func integrationSecret(_ kind: String, of organization: OrganizationID) async throws -> SealedSecret? {
        try await allIntegrationSecrets(of: organization)[kind]
    }

    public func allIntegrationSecrets(of organization: OrganizationID) async throws -> [String: SealedSecret] {
        try await db.run { db in
            var out: [String: SealedSecret] = [:]
            for row in try db.query("SELECT kind, key_id, secret FROM integrations WHERE organization_id = ? AND secret IS NOT NULL",
                                    [.text(organization.rawValue)]) {
                guard let kind = row[0].string, let keyID = row[1].string, case .blob(let sealed) = row[2] else { continue }
                out[kind] = SealedSecret(keyID: keyID, sealed: sealed)
            }
            return out
        }
    }

    static func settings(_ json: String) -> [String: String] {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: String] ?? [:]
    }

    public func role(of actor: String, in organization: OrganizationID) async throws -> Role? {
        try await db.run { db in
            try db.query("SELECT role FROM members WHERE organization_id = ? AND actor = ?",
                         [.text(organization.rawValue), .text(actor)]).first?.first?.string.flatMap(Role.init(rawValue:))
        }
    }

    public func members(of organization: OrganizationID) async throws -> [Member] {
        try await db.run { db in
            try db.query("SELECT actor, role FROM members WHERE organization_id = ? ORDER BY actor", [.text(organization.rawValue)])
                .compactMap { row in
                    guard let actor = row[0].string, let role = row[1].string.flatMap(Role.init(rawValue:)) else { return nil }
                    return Member(actor: actor, role: role)
                }
        }
    }

    public func setMember(_ member: Member, in organization: OrganizationID, actor: String) async throws {
        try await db.transaction { db in
            try Self.requireOrganization(db, organization)
            let org = Self.text(organization.rawValue)
            let previous = try db.query("SELECT role FROM members WHERE organization_id = ? AND actor = ?",
                                        [org, .text(member.actor)]).first?.first?.string
            guard previous != member.role.rawValue else { return }
            try db.query("""
                INSERT INTO members (organization_id, actor, role, created_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (organization_id, actor) DO UPDATE SET role = excluded.role
                """, [org, .text(member.actor), .text(member.role.rawValue), .text(Timestamp.iso8601(Date()))])
            try Self.audit(db, organization, actor: actor, action: previous == nil ? "member.added" : "member.role_changed",
                           entityType: "member", entityID: member.actor,
                           detail: previous.map { "\($0) -> \(member.role.rawValue)" } ?? member.role.rawValue)
        }
    }

    public func removeMember(_ memberActor: String, from organization: OrganizationID, actor: String) async throws -> Bool {
        try await db.transaction { db in
            try db.query("DELETE FROM members WHERE organization_id = ? AND actor = ?",
                         [.text(organization.rawValue), .text(memberActor)])
            guard db.changes > 0 else { return false }
            try Self.audit(db, organization, actor: actor, action: "member.removed", entityType: "member", entityID: memberActor)
            return true
        }
    }

    public func integrations(of organization: OrganizationID) async throws -> [String: [String: String]] {
        try await db.run { db in
            var out: [String: [String: String]] = [:]
            for row in try db.query("SELECT kind, settings FROM integrations WHERE organization_id = ?", [.text(organization.rawValue)]) {
                guard let kind = row[0].string, let json = row[1].string else { continue }
                out[kind] = Self.settings(json)
            }
            return out
        }
    }

    public func removeIntegration(_ kind: String, from organization: OrganizationID, actor: String) async throws -> Bool {
        try await db.transaction { db in
            try db.query("DELETE FROM integrations WHERE organization_id = ? AND kind = ?", [.text(organization.rawValue), .text(kind)])
            guard db.changes > 0 else { return false }
            try Self.audit(db, organization, actor: actor, action: "integration.removed", entityType: "integration", entityID: kind)
            return true
        }
    }

    public func exceptions(of organization: OrganizationID) async throws -> [RiskException] {
        try await db.run { db in
            try db.query("""
                SELECT id, check_id, resource, approver, justification, expires_at, created_by, created_at
                FROM exceptions WHERE organization_id = ? ORDER BY check_id, id
                """, [.text(organization.rawValue)]).compactMap { row in
                guard let id = row[0].string, let check = row[1].string, let approver = row[3].string, let why = row[4].string,
                      let expires = row[5].string.flatMap(Timestamp.parse), let by = row[6].string,
                      let at = row[7].string.flatMap(Timestamp.parse) else { return nil }
                return RiskException(id: id, checkID: check, resource: row[2].string, approver: approver, justification: why,
                                     expires: expires, createdBy: by, createdAt: at)
            }
        }
    }

    public func addException(_ exception: RiskException, to organization: OrganizationID, actor: String) async throws {
        try await db.transaction { db in
            try Self.requireOrganization(db, organization)
            try db.query("""
                INSERT INTO exceptions (organization_id, id, check_id, resource, approver, justification, expires_at, created_by, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(organization.rawValue), .text(exception.id), .text(exception.checkID),
                      exception.resource.map { .text($0) } ?? .null, .text(exception.approver), .text(exception.justification),
                      .text(Timestamp.iso8601(exception.expires)), .text(exception.createdBy), .text(Timestamp.iso8601(exception.createdAt))])
            try Self.audit(db, organization, actor: actor, action: "exception.added", entityType: "exception", entityID: exception.id,
                           detail: "\(exception.checkID)\(exception.resource.map { " \($0)" } ?? "") until \(Timestamp.iso8601(exception.expires)), approved by \(exception.approver)")
        }
    }

    public func removeException(_ id: String, from organization: OrganizationID, actor: String) async throws -> Bool {
        try await db.transaction { db in
            try db.query("DELETE FROM exceptions WHERE organization_id = ? AND id = ?", [.text(organization.rawValue), .text(id)])
            guard db.changes > 0 else { return false }
            try Self.audit(db, organization, actor: actor, action: "exception.removed", entityType: "exception", entityID: id)
            return true
        }
    }

    public func previousResults(of organization: OrganizationID, pipeline: String, before run: String) async throws -> PreviousResults? {
        let resources = try await db.run { db -> (String, Date, [String: (status: CheckStatus, findings: [String])])? in
            let org = Self.text(organization.rawValue)
            guard let row = try db.query("""
                SELECT r.id, r.as_of FROM runs r
                WHERE r.organization_id = ? AND r.pipeline = ? AND r.id <> ?
                  AND EXISTS (SELECT 1 FROM check_results c WHERE c.organization_id = r.organization_id AND c.run_id = r.id)
                ORDER BY r.started_at DESC, r.rowid DESC LIMIT 1
                """, [org, .text(pipeline), .text(run)]).first,
                  let id = row[0].string, let asOf = row[1].string.flatMap(Timestamp.parse) else { return nil }
            var results: [String: (status: CheckStatus, findings: [String])] = [:]
            for result in try db.query("SELECT check_id, status, findings FROM check_results WHERE organization_id = ? AND run_id = ?",
                                       [org, .text(id)]) {
                guard let check = result[0].string, let status = result[1].string.flatMap(CheckStatus.init(rawValue:)) else { continue }
                let findings = result[2].string.flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
                results[check] = (status, findings)
            }
            return (id, asOf, results)
        }
        guard let (id, asOf, results) = resources else { return nil }
        return PreviousResults(runID: id, asOf: asOf, results: results, resources: try await evidenceResources(of: organization, run: id))
    }

    public func evidenceResources(of organization: OrganizationID, run: String) async throws -> Set<String> {
        try await db.run { db in
            Set(try db.query("""
                SELECT DISTINCT e.source, e.resource FROM run_evidence re
                JOIN evidence e ON e.organization_id = re.organization_id AND e.id = re.evidence_id
                WHERE re.organization_id = ? AND re.run_id = ?
                """, [.text(organization.rawValue), .text(run)]).compactMap { row in
                guard let source = row[0].string, let resource = row[1].string else { return nil }
                return "\(source) \(resource)"
            })
        }
    }

    public func storeChanges(_ changes: RunChanges, run: RunRecord) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(changes), as: UTF8.self)
        try await db.transaction { db in
            _ = try db.query("INSERT OR IGNORE INTO run_changes (organization_id, run_id, changes) VALUES (?, ?, ?)",
                         [.text(run.organizationID.rawValue), .text(run.id), .text(json)])
        }
    }

    public func changes(of organization: OrganizationID, run: String) async throws -> RunChanges? {
        try await db.run { db in
            try db.query("SELECT changes FROM run_changes WHERE organization_id = ? AND run_id = ?", [.text(organization.rawValue), .text(run)])
                .first?.first?.string.flatMap { try? JSONDecoder().decode(RunChanges.self, from: Data($0.utf8)) }
        }
    }

    public func scoreHistory(of organization: OrganizationID, runs: Int) async throws -> [ScoreRecord] {
        try await db.run { db in
            try db.query("""
                SELECT s.run_id, r.pipeline, r.as_of, s.framework, s.points, s.possible, s.passed, s.failed, s.not_verified
                FROM scores s JOIN runs r ON r.organization_id = s.organization_id AND r.id = s.run_id
                WHERE s.organization_id = ? AND s.run_id IN (
                    SELECT r2.id FROM runs r2 WHERE r2.organization_id = ?
                      AND EXISTS (SELECT 1 FROM scores s2 WHERE s2.organization_id = r2.organization_id AND s2.run_id = r2.id)
                    ORDER BY r2.started_at DESC, r2.rowid DESC LIMIT ?)
                ORDER BY r.started_at DESC, r.rowid DESC, s.framework
                """, [.text(organization.rawValue), .text(organization.rawValue), .integer(Int64(runs))]).compactMap { row in
                guard let run = row[0].string, let pipeline = row[1].string, let asOf = row[2].string.flatMap(Timestamp.parse),
                      let framework = row[3].string else { return nil }
                return ScoreRecord(runID: run, pipeline: pipeline, asOf: asOf, framework: framework, points: row[4].int ?? 0,
                                   possible: row[5].int ?? 0, passed: row[6].int ?? 0, failed: row[7].int ?? 0, notVerified: row[8].int ?? 0)
            }
        }
    }

    public func uploadedEvidence(of organization: OrganizationID) async throws -> [(evidence: Evidence, controls: [String])] {
        try await db.run { db in
            var controls: [String: [String]] = [:]
            for row in try db.query("SELECT evidence_id, control FROM evidence_controls WHERE organization_id = ?", [.text(organization.rawValue)]) {
                if let id = row[0].string, let control = row[1].string { controls[id, default: []].append(control) }
            }
            return try db.query("""
                SELECT id, source, operation, resource, request, status, collected_at, fresh_until, sha256, media_type, size
                FROM evidence WHERE organization_id = ? AND source = 'upload' ORDER BY collected_at, id
                """, [.text(organization.rawValue)]).compactMap { row in
                guard let id = row[0].string, let source = row[1].string, let operation = row[2].string, let resource = row[3].string,
                      let request = row[4].string, let collected = row[6].string.flatMap(Timestamp.parse),
                      let fresh = row[7].string.flatMap(Timestamp.parse), let sha = row[8].string, let type = row[9].string else { return nil }
                let evidence = Evidence(id: id, organizationID: organization, source: source, operation: operation, resource: resource,
                                        request: request, status: row[5].int ?? 200, collectedAt: collected, freshUntil: fresh,
                                        sha256: sha, mediaType: type, size: row[10].int ?? 0)
                return (evidence, (controls[id] ?? []).sorted())
            }
        }
    }

    public func lastCollected(of organization: OrganizationID, source: String, operation: String, resource: String,
                              before clock: Date) async throws -> (asOf: Date, evidence: [Evidence])? {
        try await db.run { db -> (asOf: Date, evidence: [Evidence])? in
            let org = Self.text(organization.rawValue)
            guard let row = try db.query("""
                SELECT r.id, r.as_of FROM runs r
                JOIN run_evidence re ON re.organization_id = r.organization_id AND re.run_id = r.id
                JOIN evidence e ON e.organization_id = re.organization_id AND e.id = re.evidence_id
                WHERE r.organization_id = ? AND e.source = ? AND e.operation = ? AND e.resource = ? AND r.as_of < ?
                ORDER BY r.as_of DESC, r.started_at DESC LIMIT 1
                """, [org, .text(source), .text(operation), .text(resource), .text(Timestamp.iso8601(clock))]).first,
                  let run = row[0].string, let asOf = row[1].string.flatMap(Timestamp.parse) else { return nil }
            let evidence = try db.query("""
                SELECT e.id, e.source, e.operation, e.resource, e.request, e.status, e.collected_at, e.fresh_until, e.sha256,
                       e.media_type, e.size
                FROM run_evidence re JOIN evidence e ON e.organization_id = re.organization_id AND e.id = re.evidence_id
                WHERE re.organization_id = ? AND re.run_id = ? AND e.source = ? AND e.operation = ? AND e.resource = ?
                ORDER BY e.id
                """, [org, .text(run), .text(source), .text(operation), .text(resource)]).compactMap { row -> Evidence? in
                guard let id = row[0].string, let source = row[1].string, let operation = row[2].string, let resource = row[3].string,
                      let request = row[4].string, let collected = row[6].string.flatMap(Timestamp.parse),
                      let fresh = row[7].string.flatMap(Timestamp.parse), let sha = row[8].string, let type = row[9].string else { return nil }
                return Evidence(id: id, organizationID: organization, source: source, operation: operation, resource: resource,
                                request: request, status: row[5].int ?? 200, collectedAt: collected, freshUntil: fresh,
                                sha256: sha, mediaType: type, size: row[10].int ?? 0)
            }
            return (asOf, evidence)
        }
    }

    public func linkEvidence(_ evidenceID: String, to controls: [String], organization: OrganizationID) async throws {
        try await db.transaction { db in
            for control in controls {
                try db.query("INSERT OR IGNORE INTO evidence_controls (organization_id, evidence_id, control) VALUES (?, ?, ?)",
                             [.text(organization.rawValue), .text(evidenceID), .text(control)])
            }
        }
    }

    public func audit(_ entry: AuditEntry) async throws {
        try await db.transaction { db in
            try Self.audit(db, entry.organizationID, actor: entry.actor, action: entry.action, entityType: entry.entityType,
                           entityID: entry.entityID, detail: entry.detail)
        }
    }

    public func auditLog(of organization: OrganizationID) async throws -> [AuditEntry] {
        try await db.run { db in
            try db.query("SELECT actor, action, entity_type, entity_id, detail FROM audit_log WHERE organization_id = ? ORDER BY seq",
                         [.text(organization.rawValue)]).map { row in
                AuditEntry(organizationID: organization, actor: row[0].string ?? "", action: row[1].string ?? "",
                           entityType: row[2].string ?? "", entityID: row[3].string ?? "", detail: row[4].string ?? "")
            }
        }
    }

    public func migrationState() async throws -> (applied: Int, latest: Int) {
        let applied = try await db.run { db in
            try db.query("SELECT coalesce(max(version), 0) FROM schema_migrations").first?.first?.int ?? 0
        }
        return (applied, Self.migrations.map(\.0).max() ?? 0)
    }

    static func json(_ settings: [String: String]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: settings, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    private static func text(_ s: String) -> SQLiteConnection.Value { .text(s) }
}
