import Foundation
import Pipeline

/// The embedded default store: one SQLite file. SQLite has no row-level security, so this layer
/// enforces the tenant filter itself: every statement names `organization_id`.
public final class SQLiteEvidenceStore: EvidenceStore {
    let db: SQLiteConnection

    public init(path: String) async throws {
        db = try SQLiteConnection(path: path)
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
    ]

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
            try db.query("INSERT OR IGNORE INTO organizations (organization_id, name) VALUES (?, ?)",
                         [.text(run.organizationID.rawValue), .text(run.organizationID.rawValue)])
            try db.query("""
                INSERT INTO runs (organization_id, id, pipeline, actor, as_of, started_at, status)
                VALUES (?, ?, ?, ?, ?, ?, 'running')
                """, [.text(run.organizationID.rawValue), .text(run.id), .text(run.pipeline), .text(run.actor),
                      .text(Timestamp.iso8601(run.asOf)), .text(Timestamp.iso8601(Date()))])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "run.started", entityType: "run",
                           entityID: run.id, detail: run.pipeline)
        }
    }

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
                          .text(evidence.sha256), .text(evidence.mediaType), .integer(Int64(evidence.body.count)),
                          .text(evidence.originalKey), .text(run.id)])
                if db.changes > 0 {
                    inserted += 1
                    try Self.audit(db, evidence.organizationID, actor: run.actor, action: "evidence.stored",
                                   entityType: "evidence", entityID: evidence.id, detail: "\(evidence.source) \(evidence.operation)")
                }
                try db.query("INSERT OR IGNORE INTO run_evidence (organization_id, run_id, evidence_id) VALUES (?, ?, ?)",
                             [org, .text(run.id), .text(evidence.id)])
            }
            return inserted
        }
    }

    public func storeResults(_ results: [CheckResult], scores: ScoreSummary, run: RunRecord) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let rows = try results.map { result in
            (result, String(decoding: try encoder.encode(result.findings), as: UTF8.self),
             String(decoding: try encoder.encode(result.controls), as: UTF8.self),
             String(decoding: try encoder.encode(result.evidenceIDs), as: UTF8.self))
        }
        try await db.transaction { db in
            let org = Self.text(run.organizationID.rawValue)
            for (result, findings, controls, evidenceIDs) in rows {
                try db.query("""
                    INSERT OR REPLACE INTO check_results (organization_id, run_id, check_id, status, reason, findings, controls, evidence_ids)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, [org, .text(run.id), .text(result.checkID), .text(result.status.rawValue), .text(result.reason),
                          .text(findings), .text(controls), .text(evidenceIDs)])
            }
            for score in scores.frameworks {
                try db.query("""
                    INSERT OR REPLACE INTO scores (organization_id, run_id, framework, passed, failed, not_verified, not_applicable, excepted)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, [org, .text(run.id), .text(score.framework), .integer(Int64(score.passed)), .integer(Int64(score.failed)),
                          .integer(Int64(score.notVerified)), .integer(Int64(score.notApplicable)), .integer(Int64(score.excepted))])
            }
        }
    }

    public func storeExport(_ export: ExportRecord, run: RunRecord) async throws {
        guard export.organizationID == run.organizationID else {
            throw PipelineError(.database, "export \(export.id) belongs to \(export.organizationID), not \(run.organizationID)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let artifacts = String(decoding: try encoder.encode(export.artifacts), as: UTF8.self)
        try await db.transaction { db in
            try db.query("""
                INSERT OR IGNORE INTO exports (organization_id, id, run_id, created_at, artifacts) VALUES (?, ?, ?, ?, ?)
                """, [.text(run.organizationID.rawValue), .text(export.id), .text(run.id),
                      .text(Timestamp.iso8601(Date())), .text(artifacts)])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "export.created", entityType: "export",
                           entityID: export.id)
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

    private static func text(_ s: String) -> SQLiteConnection.Value { .text(s) }
}
