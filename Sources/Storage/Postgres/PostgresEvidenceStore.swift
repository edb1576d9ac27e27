import Foundation
import Pipeline

/// The production store: PostgreSQL through libpq. Every unit of work is one transaction that sets
/// `app.org_id`, so row-level security confines it to one organization even where a statement has
/// no WHERE clause. Bulk evidence goes in with COPY, never one round trip per row.
public final class PostgresEvidenceStore: EvidenceStore {
    public let pool: PostgresPool

    /// Opens the store and checks the schema is current (the pipeline's role cannot migrate).
    public init(settings: PostgresConnection.Settings, poolSize: Int = 4) async throws {
        pool = PostgresPool(settings: settings, size: poolSize)
        let (applied, latest) = try await migrationState()
        guard applied >= latest else {
            throw PipelineError(.database, "the database schema is at version \(applied) and this build needs \(latest): run `pipeline db migrate` as the owner role")
        }
        try await refusePrivilegedRole()
    }

    /// Row-level security binds only a role that is neither a superuser, nor BYPASSRLS, nor the
    /// tables' owner: the store refuses to work as any other.
    func refusePrivilegedRole() async throws {
        let row = try await unit(nil) { db in
            try db.execute("""
                SELECT current_user, r.rolsuper, r.rolbypassrls,
                       (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tableowner = current_user)
                FROM pg_roles r WHERE r.rolname = current_user
                """).first
        }
        guard let row, row.count == 4 else { return }
        let name = row[0] ?? "?"
        let reason: String? = row[1] == "t" ? "a superuser" : row[2] == "t" ? "allowed to bypass row-level security"
            : (row[3] ?? "0") != "0" ? "the owner of the tables" : nil
        if let reason {
            throw PipelineError(.database, "refusing to connect as \(name), \(reason): row-level security would not confine it; connect as a role granted \(PostgresMigrations.appRole)")
        }
    }

    /// One unit of work: a transaction with `app.org_id` set (and `app.actor`, whom the audit
    /// triggers name).
    @discardableResult
    func unit<T: Sendable>(_ organization: OrganizationID?, actor: String? = nil,
                           _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await pool.withConnection { connection in
            try await connection.transaction(organization: organization) { db in
                if let actor { try db.execute("SELECT set_config('app.actor', $1, true)", [actor]) }
                return try body(db)
            }
        }
    }

    static func audit(_ db: PostgresConnection, _ org: OrganizationID, actor: String, action: String,
                      entityType: String, entityID: String, detail: String = "") throws {
        try db.execute("""
            INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id, detail)
            VALUES ($1, $2, $3, $4, $5, $6)
            """, [org.rawValue, actor, action, entityType, entityID, detail])
    }

    public func recordIntegrationOutcome(_ kind: String, of organization: OrganizationID, run: String, at: Date, error: String?) async throws {
        try await unit(organization) { db in
            try db.execute("""
                INSERT INTO integration_status AS s (organization_id, kind, last_attempt_at, last_success_at, last_error_at, last_error, last_run_id)
                VALUES ($1, $2, $3::timestamptz, CASE WHEN $4::text IS NULL THEN $3::timestamptz END,
                        CASE WHEN $4::text IS NOT NULL THEN $3::timestamptz END, $4, $5)
                ON CONFLICT (organization_id, kind) DO UPDATE SET
                    last_attempt_at = excluded.last_attempt_at, last_run_id = excluded.last_run_id,
                    last_success_at = coalesce(excluded.last_success_at, s.last_success_at),
                    last_error_at = coalesce(excluded.last_error_at, s.last_error_at),
                    last_error = coalesce(excluded.last_error, s.last_error)
                """, [organization.rawValue, kind, Timestamp.iso8601(at), error, run])
        }
    }

    public func integrationStatuses(of organization: OrganizationID) async throws -> [IntegrationStatus] {
        try await unit(organization) { db in
            try db.execute("""
                SELECT kind, to_char(last_attempt_at AT TIME ZONE 'UTC', \(Self.utc)), to_char(last_success_at AT TIME ZONE 'UTC', \(Self.utc)),
                       to_char(last_error_at AT TIME ZONE 'UTC', \(Self.utc)), last_error, last_run_id
                FROM integration_status ORDER BY kind
                """).values.map { row in
                IntegrationStatus(kind: row[0] ?? "", lastAttemptAt: row[1].flatMap(Timestamp.parse),
                                  lastSuccessAt: row[2].flatMap(Timestamp.parse), lastErrorAt: row[3].flatMap(Timestamp.parse),
                                  lastError: row[4], lastRunID: row[5])
            }
        }
    }

    public func beginRun(_ run: RunRecord) async throws {
        try await unit(run.organizationID) { db in
            try db.execute("""
                INSERT INTO runs (organization_id, id, pipeline, actor, as_of, status, host, pid)
                VALUES ($1, $2, $3, $4, $5, 'running', $6, $7)
                """, [run.organizationID.rawValue, run.id, run.pipeline, run.actor, Timestamp.iso8601(run.asOf), run.host,
                      String(run.pid)])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "run.started", entityType: "run",
                           entityID: run.id, detail: run.pipeline)
        }
    }

    /// Appends one field in COPY's text format: `\N` for NULL, backslash escapes.
    static func appendCopyField(_ value: String?, to out: inout [UInt8]) {
        guard let value else {
            out.append(contentsOf: [0x5C, 0x4E])  // \N
            return
        }
        for byte in value.utf8 {
            switch byte {
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            default: out.append(byte)
            }
        }
    }

    public static let evidenceColumns = "organization_id, id, source, operation, resource, request, status, collected_at, fresh_until, sha256, media_type, size, object_key, first_run_id"

    /// The rows in COPY's text format: tab-separated, one line each.
    public static func copyRows(_ batch: [Evidence], firstRun: String) -> Data {
        var encoder = CopyEncoder(firstRun: firstRun)
        var out: [UInt8] = []
        out.reserveCapacity(batch.count * 400)
        for evidence in batch { encoder.append(evidence, to: &out) }
        return Data(out)
    }

    /// Writes evidence rows in COPY's text format. A batch shares a handful of times and media
    /// types, so each is formatted once.
    struct CopyEncoder {
        let firstRun: String
        var times: [Date: String] = [:]
        var extensions: [String: String] = [:]

        mutating func time(_ date: Date) -> String {
            if let text = times[date] { return text }
            let text = Timestamp.iso8601(date)
            times[date] = text
            return text
        }

        mutating func append(_ e: Evidence, to out: inout [UInt8]) {
            let ext: String
            if let known = extensions[e.mediaType], e.size > 0 {
                ext = known
            } else {
                ext = e.fileExtension
                if e.size > 0 { extensions[e.mediaType] = ext }
            }
            let org = e.organizationID.rawValue
            func field(_ value: String, last: Bool = false) {
                appendCopyField(value, to: &out)
                out.append(last ? 0x0A : 0x09)
            }
            field(org)
            field(e.id)
            field(e.source)
            field(e.operation)
            field(e.resource)
            field(e.request)
            field(String(e.status))
            field(time(e.collectedAt))
            field(time(e.freshUntil))
            field(e.sha256)
            field(e.mediaType)
            field(String(e.size))
            field("\(org)/evidence/\(e.id)/original.\(ext)")
            field(firstRun, last: true)
        }
    }

    /// Bulk path: COPY into a staging table (COPY cannot target a table with row-level security),
    /// then insert what is new in key order (an anti-join, which is much faster than ON CONFLICT's
    /// speculative inserts). If another process inserts the same evidence meanwhile, the batch is
    /// retried with ON CONFLICT DO NOTHING.
    @discardableResult
    public func storeEvidence(_ batch: [Evidence], run: RunRecord) async throws -> Int {
        for evidence in batch where evidence.organizationID != run.organizationID {
            throw PipelineError(.database, "evidence \(evidence.id.prefix(12)) belongs to \(evidence.organizationID), not \(run.organizationID)")
        }
        var seen = Set<String>()
        let unique = batch.filter { seen.insert($0.id).inserted }
        guard !unique.isEmpty else { return 0 }
        do {
            return try await insertEvidence(unique, run: run, concurrentSafe: false)
        } catch where PostgresConnection.isUniqueViolation(error) {
            return try await insertEvidence(unique, run: run, concurrentSafe: true)
        }
    }

    private func insertEvidence(_ batch: [Evidence], run: RunRecord, concurrentSafe: Bool) async throws -> Int {
        let columns = Self.evidenceColumns
        let selected = columns.split(separator: ",").map { "i." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        return try await unit(run.organizationID) { db in
            try db.execute("CREATE TEMP TABLE incoming_evidence (LIKE evidence) ON COMMIT DROP")
            var encoder = CopyEncoder(firstRun: run.id)
            var next = 0
            try db.copyIn("COPY incoming_evidence (\(columns)) FROM STDIN") { buffer in
                guard next < batch.count else { return false }
                let end = min(next + 2_000, batch.count)
                for evidence in batch[next..<end] { encoder.append(evidence, to: &buffer) }
                next = end
                return true
            }
            let insert = concurrentSafe
                ? "INSERT INTO evidence (\(columns)) SELECT \(selected) FROM incoming_evidence i ORDER BY i.id ON CONFLICT DO NOTHING"
                : """
                  INSERT INTO evidence (\(columns)) SELECT \(selected) FROM incoming_evidence i
                  WHERE NOT EXISTS (SELECT 1 FROM evidence e WHERE e.organization_id = i.organization_id AND e.id = i.id)
                  ORDER BY i.id
                  """
            let inserted = try db.execute(insert).affected
            try db.execute("""
                INSERT INTO run_evidence (organization_id, run_id, evidence_id) SELECT organization_id, $1, id FROM incoming_evidence
                """, [run.id])
            if inserted > 0 {
                try Self.audit(db, run.organizationID, actor: run.actor, action: "evidence.stored", entityType: "run",
                               entityID: run.id, detail: "\(inserted) new evidence items")
            }
            return inserted
        }
    }

    public func storeResults(_ results: [CheckResult], scores: ScoreSummary, run: RunRecord) async throws {
        let rows: [[String?]] = try results.map { r in
            let columns = try ResultColumns(r)
            return [run.organizationID.rawValue, run.id, r.checkID, r.status.rawValue, r.reason,
                    columns.findings, columns.controls, columns.evidenceIDs]
        }
        let scoreRows: [[String?]] = scores.frameworks.map { score in
            [run.organizationID.rawValue, run.id, score.framework, String(score.passed), String(score.failed),
             String(score.notVerified), String(score.notApplicable), String(score.excepted), String(score.points), String(score.possible)]
        }
        // One statement per table, whatever the number of rows.
        try await unit(run.organizationID) { db in
            if !rows.isEmpty {
                let (values, parameters) = Self.values(rows)
                try db.execute("""
                    INSERT INTO check_results (organization_id, run_id, check_id, status, reason, findings, controls, evidence_ids)
                    VALUES \(values)
                    """, parameters)
            }
            if !scoreRows.isEmpty {
                let (values, parameters) = Self.values(scoreRows)
                try db.execute("""
                    INSERT INTO scores (organization_id, run_id, framework, passed, failed, not_verified, not_applicable, excepted,
                                        points, possible)
                    VALUES \(values)
                    """, parameters)
            }
        }
    }

    /// `($1, $2), ($3, $4)` for the rows, with the parameters flattened in order; `casts` adds a
    /// type cast to the columns it names by index.
    static func values(_ rows: [[String?]], casts: [Int: String] = [:], startingAt first: Int = 1) -> (String, [String?]) {
        var number = first
        let text = rows.map { row in
            "(" + row.indices.map { column in
                defer { number += 1 }
                return "$\(number)" + (casts[column].map { "::\($0)" } ?? "")
            }.joined(separator: ", ") + ")"
        }.joined(separator: ", ")
        return (text, rows.flatMap { $0 })
    }

    public func storeExport(_ export: ExportRecord, run: RunRecord) async throws {
        guard export.organizationID == run.organizationID else {
            throw PipelineError(.database, "export \(export.id) belongs to \(export.organizationID), not \(run.organizationID)")
        }
        let artifacts = try ResultColumns.artifacts(export)
        try await unit(run.organizationID) { db in
            try db.execute("""
                INSERT INTO exports (organization_id, id, run_id, artifacts) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING
                """, [run.organizationID.rawValue, export.id, run.id, artifacts])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "export.created", entityType: "export",
                           entityID: export.id)
        }
    }

    public func exports(of organization: OrganizationID, before: Date?, id: String?, limit: Int) async throws -> [ExportSummary] {
        try await unit(organization) { db in
            try db.execute("""
                SELECT e.id, e.run_id, r.pipeline, to_char(r.as_of AT TIME ZONE 'UTC', \(Self.utc)),
                       to_char(e.created_at AT TIME ZONE 'UTC', \(Self.utc)), e.artifacts::text
                FROM exports e JOIN runs r ON r.organization_id = e.organization_id AND r.id = e.run_id
                WHERE e.organization_id = $1 AND ($2::timestamptz IS NULL OR r.as_of < $2::timestamptz)
                  AND ($4::text IS NULL OR e.id = $4)
                ORDER BY r.as_of DESC, e.created_at DESC, e.id LIMIT $3
                """, [organization.rawValue, before.map(Timestamp.iso8601), String(limit), id]).values.map { row in
                let id = row[0] ?? ""
                return ExportSummary(id: id, runID: row[1] ?? "", pipeline: row[2] ?? "",
                                     asOf: row[3].flatMap(Timestamp.parse) ?? .distantPast,
                                     createdAt: row[4].flatMap(Timestamp.parse) ?? .distantPast,
                                     artifacts: try ResultColumns.artifacts(row[5], export: id))
            }
        }
    }

    public func finishRun(_ run: RunRecord, status: RunRecord.Status, message: String?) async throws {
        try await unit(run.organizationID) { db in
            try db.execute("UPDATE runs SET status = $1, finished_at = now(), message = $2 WHERE organization_id = $3 AND id = $4",
                           [status.rawValue, message, run.organizationID.rawValue, run.id])
            try Self.audit(db, run.organizationID, actor: run.actor, action: "run.\(status.rawValue)", entityType: "run",
                           entityID: run.id)
        }
    }

    public func runs(of organization: OrganizationID, status: RunRecord.Status?, limit: Int) async throws -> [RunSummary] {
        try await unit(organization) { db in
            try db.execute("""
                SELECT id, pipeline, actor, status, to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), host, pid, message
                FROM runs WHERE ($1::text IS NULL OR status = $1) ORDER BY started_at DESC, id LIMIT $2
                """, [status?.rawValue, String(limit)]).values.map { row in
                RunSummary(id: row[0] ?? "", pipeline: row[1] ?? "", actor: row[2] ?? "", status: row[3] ?? "",
                           asOf: row[4].flatMap(Timestamp.parse) ?? .distantPast,
                           startedAt: row[5].flatMap(Timestamp.parse) ?? .distantPast,
                           finishedAt: row[6].flatMap(Timestamp.parse), host: row[7] ?? "", pid: Int32(row[8] ?? "0") ?? 0,
                           message: row[9])
            }
        }
    }

    public func abandonRun(_ id: String, of organization: OrganizationID, reason: String) async throws -> Bool {
        try await unit(organization) { db in
            guard try db.execute("""
                UPDATE runs SET status = 'abandoned', finished_at = now(), message = $2 WHERE id = $1 AND status = 'running'
                """, [id, reason]).affected > 0 else { return false }
            try Self.audit(db, organization, actor: Actor.systemName, action: "run.abandoned", entityType: "run",
                           entityID: id, detail: reason)
            return true
        }
    }

    public func evidenceCount(organization: OrganizationID) async throws -> Int {
        // No WHERE clause: row-level security confines the count to the organization.
        try await unit(organization) { db in
            Int(try db.execute("SELECT count(*) FROM evidence").scalar() ?? "0") ?? 0
        }
    }

    public func organizations() async throws -> [Organization] {
        let listed = try await unit(nil) { db in
            try db.execute("SELECT organization_id, name, time_zone FROM organization_directory()").values
        }
        var out: [Organization] = []
        for row in listed {
            guard let raw = row[0], let id = try? OrganizationID(raw) else { continue }
            out.append(Organization(id: id, name: row[1] ?? raw, integrations: try await integrations(of: id), timeZone: row[2]))
        }
        return out
    }

    public func organization(_ id: OrganizationID) async throws -> Organization? {
        let row = try await unit(id) { db in
            try db.execute("SELECT name, time_zone FROM organizations WHERE organization_id = $1", [id.rawValue]).values.first
        }
        guard let row, let name = row[0] else { return nil }
        return Organization(id: id, name: name, integrations: try await integrations(of: id), timeZone: row[1])
    }

    /// One transaction; the audit triggers record each member and integration added.
    @discardableResult
    public func addOrganization(_ organization: Organization, members: [Member], integrations: [Integration],
                                actor: String) async throws -> Bool {
        let rows = try integrations.map { ($0, try SQLiteEvidenceStore.json($0.settings)) }
        return try await unit(organization.id, actor: actor) { db in
            let created = try db.execute("""
                INSERT INTO organizations (organization_id, name, time_zone) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
                """, [organization.id.rawValue, organization.name, organization.timeZone]).affected > 0
            guard created else { return false }
            try Self.audit(db, organization.id, actor: actor, action: "organization.created", entityType: "organization",
                           entityID: organization.id.rawValue, detail: organization.name)
            if !members.isEmpty {
                let (values, parameters) = Self.values(members.map { [organization.id.rawValue, $0.actor, $0.role.rawValue] })
                try db.execute("INSERT INTO members (organization_id, actor, role) VALUES \(values)", parameters)
            }
            for (integration, json) in rows {
                try Self.writeIntegration(db, integration, json: json, org: organization.id)
            }
            return true
        }
    }

    @discardableResult

    public func removeOrganization(_ id: OrganizationID, actor: String) async throws -> Bool {
        try await unit(id, actor: actor) { db in
            try db.execute("DELETE FROM members")
            try db.execute("DELETE FROM integrations")
            try db.execute("DELETE FROM exceptions")  // decisions about it, not its history
            guard try db.execute("DELETE FROM organizations WHERE organization_id = $1", [id.rawValue]).affected > 0 else {
                return false
            }
            try Self.audit(db, id, actor: actor, action: "organization.removed", entityType: "organization", entityID: id.rawValue)
            return true
        }
    }

    public func setIntegration(_ integration: Integration, in organization: OrganizationID, actor: String) async throws {
        let json = try SQLiteEvidenceStore.json(integration.settings)
        try await unit(organization, actor: actor) { db in
            try Self.requireOrganization(db, organization)
            try Self.writeIntegration(db, integration, json: json, org: organization)
        }
    }

    /// Inserts or replaces; the audit trigger records it.
    static func writeIntegration(_ db: PostgresConnection, _ integration: Integration, json: String, org: OrganizationID) throws {
        try db.execute("""
            INSERT INTO integrations (organization_id, kind, settings, secret, key_id)
            VALUES ($1, $2, $3::jsonb, decode($4, 'base64'), $5)
            ON CONFLICT (organization_id, kind) DO UPDATE SET settings = excluded.settings, secret = excluded.secret,
                key_id = excluded.key_id
            """, [org.rawValue, integration.kind, json, integration.secret.map { $0.sealed.base64EncodedString() },
                  integration.secret?.keyID])
    }

    static func requireOrganization(_ db: PostgresConnection, _ organization: OrganizationID) throws {
        guard try db.execute("SELECT 1 FROM organizations WHERE organization_id = $1", [organization.rawValue]).first != nil else {
            throw PipelineError(.unknownOrganization, "unknown organization '\(organization)': add it with `pipeline orgs add`")
        }
    }

    public func resealIntegration(_ kind: String, of organization: OrganizationID, secret: SealedSecret,
                                  replacing oldKeyID: String, actor: String) async throws -> Bool {
        try await unit(organization, actor: actor) { db in
            try db.execute("SELECT set_config('app.reseal', 'on', true)")
            return try db.execute("""
                UPDATE integrations SET secret = decode($1, 'base64'), key_id = $2 WHERE kind = $3 AND key_id = $4
                """, [secret.sealed.base64EncodedString(), secret.keyID, kind, oldKeyID]).affected > 0
        }
    }

    public func integrationSecret(_ kind: String, of organization: OrganizationID) async throws -> SealedSecret? {
        try await allIntegrationSecrets(of: organization)[kind]
    }

    public func allIntegrationSecrets(of organization: OrganizationID) async throws -> [String: SealedSecret] {
        try await unit(organization) { db in
            var out: [String: SealedSecret] = [:]
            for row in try db.execute("SELECT kind, key_id, encode(secret, 'base64') FROM integrations WHERE secret IS NOT NULL").values {
                guard let kind = row[0], let keyID = row[1],
                      let sealed = row[2].flatMap({ Data(base64Encoded: $0.replacingOccurrences(of: "\n", with: "")) }) else { continue }
                out[kind] = SealedSecret(keyID: keyID, sealed: sealed)
            }
            return out
        }
    }

    public func role(of actor: String, in organization: OrganizationID) async throws -> Role? {
        try await unit(organization) { db in
            try db.execute("SELECT role FROM members WHERE actor = $1", [actor]).scalar().flatMap(Role.init(rawValue:))
        }
    }

    public func members(of organization: OrganizationID) async throws -> [Member] {
        try await unit(organization) { db in
            try db.execute("SELECT actor, role FROM members ORDER BY actor").values.compactMap { row in
                guard let actor = row[0], let role = row[1].flatMap(Role.init(rawValue:)) else { return nil }
                return Member(actor: actor, role: role)
            }
        }
    }

    /// Adds a member or changes a role; the audit trigger records it.
    public func setMember(_ member: Member, in organization: OrganizationID, actor: String) async throws {
        try await unit(organization, actor: actor) { db in
            try Self.requireOrganization(db, organization)
            try db.execute("""
                INSERT INTO members (organization_id, actor, role) VALUES ($1, $2, $3)
                ON CONFLICT (organization_id, actor) DO UPDATE SET role = excluded.role
                WHERE members.role IS DISTINCT FROM excluded.role
                """, [organization.rawValue, member.actor, member.role.rawValue])
        }
    }

    public func removeMember(_ memberActor: String, from organization: OrganizationID, actor: String) async throws -> Bool {
        try await unit(organization, actor: actor) { db in
            try db.execute("DELETE FROM members WHERE actor = $1", [memberActor]).affected > 0
        }
    }

    public func integrations(of organization: OrganizationID) async throws -> [String: [String: String]] {
        try await unit(organization) { db in
            var out: [String: [String: String]] = [:]
            for row in try db.execute("SELECT kind, settings::text FROM integrations").values {
                guard let kind = row[0], let json = row[1] else { continue }
                out[kind] = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: String] ?? [:]
            }
            return out
        }
    }

    public func removeIntegration(_ kind: String, from organization: OrganizationID, actor: String) async throws -> Bool {
        try await unit(organization, actor: actor) { db in
            try db.execute("DELETE FROM integrations WHERE kind = $1", [kind]).affected > 0
        }
    }

    public func exceptions(of organization: OrganizationID) async throws -> [RiskException] {
        try await unit(organization) { db in
            try db.execute("""
                SELECT id, check_id, resource, approver, justification,
                       to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                       created_by, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM exceptions ORDER BY check_id, id
                """).values.compactMap { row in
                guard let id = row[0], let check = row[1], let approver = row[3], let why = row[4],
                      let expires = row[5].flatMap(Timestamp.parse), let by = row[6], let at = row[7].flatMap(Timestamp.parse) else { return nil }
                return RiskException(id: id, checkID: check, resource: row[2], approver: approver, justification: why,
                                     expires: expires, createdBy: by, createdAt: at)
            }
        }
    }

    public func addException(_ exception: RiskException, to organization: OrganizationID, actor: String) async throws {
        try await unit(organization, actor: actor) { db in
            try Self.requireOrganization(db, organization)
            try db.execute("""
                INSERT INTO exceptions (organization_id, id, check_id, resource, approver, justification, expires_at, created_by, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8, $9::timestamptz)
                """, [organization.rawValue, exception.id, exception.checkID, exception.resource, exception.approver,
                      exception.justification, Timestamp.iso8601(exception.expires), exception.createdBy,
                      Timestamp.iso8601(exception.createdAt)])
            try Self.audit(db, organization, actor: actor, action: "exception.added", entityType: "exception", entityID: exception.id,
                           detail: "\(exception.checkID)\(exception.resource.map { " \($0)" } ?? "") until \(Timestamp.iso8601(exception.expires)), approved by \(exception.approver)")
        }
    }

    public func removeException(_ id: String, from organization: OrganizationID, actor: String) async throws -> Bool {
        try await unit(organization, actor: actor) { db in
            guard try db.execute("DELETE FROM exceptions WHERE id = $1", [id]).affected > 0 else { return false }
            try Self.audit(db, organization, actor: actor, action: "exception.removed", entityType: "exception", entityID: id)
            return true
        }
    }

    static let utc = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'"

    public func previousResults(of organization: OrganizationID, pipeline: String, before run: String) async throws -> PreviousResults? {
        try await unit(organization) { db -> PreviousResults? in
            guard let row = try db.execute("""
                SELECT r.id, to_char(r.as_of AT TIME ZONE 'UTC', \(Self.utc)) FROM runs r
                WHERE r.pipeline = $1 AND r.id <> $2 AND EXISTS (SELECT 1 FROM check_results c WHERE c.run_id = r.id)
                ORDER BY r.started_at DESC LIMIT 1
                """, [pipeline, run]).values.first, let id = row[0], let asOf = row[1].flatMap(Timestamp.parse) else { return nil }
            var results: [String: (status: CheckStatus, findings: [String])] = [:]
            for result in try db.execute("SELECT check_id, status, findings::text FROM check_results WHERE run_id = $1", [id]).values {
                guard let check = result[0], let status = result[1].flatMap(CheckStatus.init(rawValue:)) else { continue }
                results[check] = (status, result[2].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? [])
            }
            let resources = Set(try db.execute("""
                SELECT DISTINCT e.source, e.resource FROM run_evidence re JOIN evidence e ON e.organization_id = re.organization_id
                  AND e.id = re.evidence_id WHERE re.run_id = $1
                """, [id]).values.compactMap { row in row[0].flatMap { source in row[1].map { "\(source) \($0)" } } })
            return PreviousResults(runID: id, asOf: asOf, results: results, resources: resources)
        }
    }

    public func evidenceResources(of organization: OrganizationID, run: String) async throws -> Set<String> {
        try await unit(organization) { db in
            Set(try db.execute("""
                SELECT DISTINCT e.source, e.resource FROM run_evidence re JOIN evidence e ON e.organization_id = re.organization_id
                  AND e.id = re.evidence_id WHERE re.run_id = $1
                """, [run]).values.compactMap { row in row[0].flatMap { source in row[1].map { "\(source) \($0)" } } })
        }
    }

    public func storeChanges(_ changes: RunChanges, run: RunRecord) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(changes), as: UTF8.self)
        try await unit(run.organizationID) { db in
            try db.execute("INSERT INTO run_changes (organization_id, run_id, changes) VALUES ($1, $2, $3::jsonb) ON CONFLICT DO NOTHING",
                           [run.organizationID.rawValue, run.id, json])
        }
    }

    public func changes(of organization: OrganizationID, run: String) async throws -> RunChanges? {
        try await unit(organization) { db in
            try db.execute("SELECT changes::text FROM run_changes WHERE run_id = $1", [run]).values.first?[0]
                .flatMap { try? JSONDecoder().decode(RunChanges.self, from: Data($0.utf8)) }
        }
    }

    public func scoreHistory(of organization: OrganizationID, runs: Int) async throws -> [ScoreRecord] {
        try await unit(organization) { db in
            try db.execute("""
                SELECT s.run_id, r.pipeline, to_char(r.as_of AT TIME ZONE 'UTC', \(Self.utc)), s.framework, s.points, s.possible,
                       s.passed, s.failed, s.not_verified
                FROM scores s JOIN runs r ON r.organization_id = s.organization_id AND r.id = s.run_id
                WHERE s.run_id IN (SELECT r2.id FROM runs r2 WHERE EXISTS (SELECT 1 FROM scores s2 WHERE s2.run_id = r2.id)
                                   ORDER BY r2.started_at DESC LIMIT $1)
                ORDER BY r.started_at DESC, s.framework
                """, [String(runs)]).values.compactMap { row in
                guard let run = row[0], let pipeline = row[1], let asOf = row[2].flatMap(Timestamp.parse), let framework = row[3] else { return nil }
                return ScoreRecord(runID: run, pipeline: pipeline, asOf: asOf, framework: framework, points: row[4].flatMap(Int.init) ?? 0,
                                   possible: row[5].flatMap(Int.init) ?? 0, passed: row[6].flatMap(Int.init) ?? 0,
                                   failed: row[7].flatMap(Int.init) ?? 0, notVerified: row[8].flatMap(Int.init) ?? 0)
            }
        }
    }

    public func uploadedEvidence(of organization: OrganizationID) async throws -> [(evidence: Evidence, controls: [String])] {
        try await unit(organization) { db in
            var controls: [String: [String]] = [:]
            for row in try db.execute("SELECT evidence_id, control FROM evidence_controls").values {
                if let id = row[0], let control = row[1] { controls[id, default: []].append(control) }
            }
            return try db.execute("""
                SELECT id, source, operation, resource, request, status,
                       to_char(collected_at AT TIME ZONE 'UTC', \(Self.utc)), to_char(fresh_until AT TIME ZONE 'UTC', \(Self.utc)),
                       sha256, media_type, size
                FROM evidence WHERE source = 'upload' ORDER BY collected_at, id
                """).values.compactMap { row in
                guard let id = row[0], let source = row[1], let operation = row[2], let resource = row[3], let request = row[4],
                      let collected = row[6].flatMap(Timestamp.parse), let fresh = row[7].flatMap(Timestamp.parse),
                      let sha = row[8], let type = row[9] else { return nil }
                let evidence = Evidence(id: id, organizationID: organization, source: source, operation: operation, resource: resource,
                                        request: request, status: row[5].flatMap(Int.init) ?? 200, collectedAt: collected, freshUntil: fresh,
                                        sha256: sha, mediaType: type, size: row[10].flatMap(Int.init) ?? 0)
                return (evidence, (controls[id] ?? []).sorted())
            }
        }
    }

    public func lastCollected(of organization: OrganizationID, source: String, operation: String, resource: String,
                              before clock: Date) async throws -> (asOf: Date, evidence: [Evidence])? {
        try await unit(organization) { db -> (asOf: Date, evidence: [Evidence])? in
            guard let row = try db.execute("""
                SELECT r.id, to_char(r.as_of AT TIME ZONE 'UTC', \(Self.utc)) FROM runs r
                JOIN run_evidence re ON re.organization_id = r.organization_id AND re.run_id = r.id
                JOIN evidence e ON e.organization_id = re.organization_id AND e.id = re.evidence_id
                WHERE e.source = $1 AND e.operation = $2 AND e.resource = $3 AND r.as_of < $4::timestamptz
                ORDER BY r.as_of DESC, r.started_at DESC LIMIT 1
                """, [source, operation, resource, Timestamp.iso8601(clock)]).values.first,
                  let run = row[0], let asOf = row[1].flatMap(Timestamp.parse) else { return nil }
            let evidence = try db.execute("""
                SELECT e.id, e.source, e.operation, e.resource, e.request, e.status,
                       to_char(e.collected_at AT TIME ZONE 'UTC', \(Self.utc)), to_char(e.fresh_until AT TIME ZONE 'UTC', \(Self.utc)),
                       e.sha256, e.media_type, e.size
                FROM run_evidence re JOIN evidence e ON e.organization_id = re.organization_id AND e.id = re.evidence_id
                WHERE re.run_id = $1 AND e.source = $2 AND e.operation = $3 AND e.resource = $4 ORDER BY e.id
                """, [run, source, operation, resource]).values.compactMap { row -> Evidence? in
                guard let id = row[0], let source = row[1], let operation = row[2], let resource = row[3], let request = row[4],
                      let collected = row[6].flatMap(Timestamp.parse), let fresh = row[7].flatMap(Timestamp.parse),
                      let sha = row[8], let type = row[9] else { return nil }
                return Evidence(id: id, organizationID: organization, source: source, operation: operation, resource: resource,
                                request: request, status: row[5].flatMap(Int.init) ?? 200, collectedAt: collected, freshUntil: fresh,
                                sha256: sha, mediaType: type, size: row[10].flatMap(Int.init) ?? 0)
            }
            return (asOf, evidence)
        }
    }

    public func linkEvidence(_ evidenceID: String, to controls: [String], organization: OrganizationID) async throws {
        guard !controls.isEmpty else { return }
        let (values, parameters) = Self.values(controls.map { [organization.rawValue, evidenceID, $0] })
        try await unit(organization) { db in
            try db.execute("INSERT INTO evidence_controls (organization_id, evidence_id, control) VALUES \(values) ON CONFLICT DO NOTHING",
                           parameters)
        }
    }

    public func audit(_ entry: AuditEntry) async throws {
        try await unit(entry.organizationID) { db in
            try Self.audit(db, entry.organizationID, actor: entry.actor, action: entry.action, entityType: entry.entityType,
                           entityID: entry.entityID, detail: entry.detail)
        }
    }

    public func auditLog(of organization: OrganizationID) async throws -> [AuditEntry] {
        try await unit(organization) { db in
            try db.execute("SELECT actor, action, entity_type, entity_id, detail FROM audit_log ORDER BY seq").values.map { row in
                AuditEntry(organizationID: organization, actor: row[0] ?? "", action: row[1] ?? "", entityType: row[2] ?? "",
                           entityID: row[3] ?? "", detail: row[4] ?? "")
            }
        }
    }

    public func migrationState() async throws -> (applied: Int, latest: Int) {
        let applied = try await unit(nil) { db in
            let exists = try db.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").scalar() == "t"
            guard exists else { return 0 }
            return Int(try db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").scalar() ?? "0") ?? 0
        }
        return (applied, PostgresMigrations.latest)
    }
}
