import Foundation
import Pipeline
import PipelineTesting
@testable import Storage
@testable import Transport
import Testing

/// Row-level security as the pipeline's ordinary role sees it, in raw SQL.
@Suite struct PostgresIsolationTests {
    /// A migrated database holding evidence for acme and globex.
    func seeded() async throws -> (TestDatabase, PostgresConnection) {
        let database = try await TestDatabase.make()
        let store = try await PostgresEvidenceStore(settings: .init(url: database.appURL))
        for name in ["acme", "globex"] {
            let run = runRecord(name)
            try await store.beginRun(run)
            try await store.storeEvidence((0..<4).map { evidence($0, org: name) }, run: run)
        }
        return (database, try await PostgresConnection.connect(.init(url: database.appURL)))
    }

    @Test func theRoleNeitherOwnsTheTablesNorBypassesSecurity() async throws {
        let (_, db) = try await seeded()
        let row = try await db.run { db in
            try db.execute("""
                SELECT r.rolsuper, r.rolbypassrls, (SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user)
                FROM pg_roles r WHERE r.rolname = current_user
                """).first
        }
        #expect(row == ["f", "f", "0"])
        let forced = try await db.run { db in
            try db.execute("""
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'schema_migrations'
                  AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
                """).scalar()
        }
        #expect(forced == "0")
    }

    @Test func aQueryWithoutWhereSeesOnlyItsOrganization() async throws {
        let (_, db) = try await seeded()
        let seen = try await db.transaction(organization: org("acme")) { db in
            try db.execute("SELECT DISTINCT organization_id FROM evidence").values.map { $0[0] ?? "" }
        }
        #expect(seen == ["acme"])
        let runs = try await db.transaction(organization: org("globex")) { db in
            try db.execute("SELECT count(*) FROM runs").scalar()
        }
        #expect(runs == "1")
    }

    @Test func withNoOrganizationSetThereAreNoRows() async throws {
        let (_, db) = try await seeded()
        let counts = try await db.transaction(organization: nil) { db in
            try ["evidence", "runs", "audit_log", "organizations"].map {
                try db.execute("SELECT count(*) FROM \($0)").scalar() ?? "?"
            }
        }
        #expect(counts == ["0", "0", "0", "0"])
    }

    @Test func writingAnotherOrganizationsRowFails() async throws {
        let (_, db) = try await seeded()
        await #expect(throws: PipelineError.self) {
            try await db.transaction(organization: org("acme")) { db in
                try db.execute("""
                    INSERT INTO audit_log (organization_id, actor, action, entity_type, entity_id) VALUES ('globex', 'x', 'y', 'z', 'w')
                    """)
            }
        }
        // Updating another organization's row touches nothing.
        let touched = try await db.transaction(organization: org("acme")) { db in
            try db.execute("UPDATE runs SET message = 'hijacked' WHERE organization_id = 'globex'").affected
        }
        #expect(touched == 0)
    }

    @Test func evidenceAndTheAuditLogCannotBeRewritten() async throws {
        let (_, db) = try await seeded()
        for statement in ["UPDATE evidence SET sha256 = 'x'", "DELETE FROM evidence", "DELETE FROM audit_log",
                          "UPDATE audit_log SET actor = 'x'"] {
            do {
                try await db.transaction(organization: org("acme")) { db in try db.execute(statement) }
                Issue.record("\(statement) was allowed")
            } catch {
                #expect("\(error)".contains("permission denied"), "\(statement): \(error)")
            }
        }
    }
}

@Suite struct PostgresOperationsTests {
    @Test func migrationsStartedTogetherApplyOnce() async throws {
        guard let peers = Peers.postgres else {
            if ExternalTool.isCI { Issue.record("PostgreSQL peer missing in CI") }
            return
        }
        let name = "lightsail_m_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await PostgresConnection.connect(.init(url: peers.adminURL))
        try await admin.run { db in try db.execute("CREATE DATABASE \(name) OWNER lightsail_owner") }
        let url = Peers.url(peers.ownerURL, database: name)
        let applied = try await mapConcurrently(0..<6, width: 6) { _ in
            try await PostgresMigrations.migrate(try await PostgresConnection.connect(.init(url: url)))
        }
        #expect(applied.flatMap { $0 }.sorted() == PostgresMigrations.all.map(\.version))
        let owner = try await PostgresConnection.connect(.init(url: url))
        #expect(try await owner.run { db in try db.execute("SELECT count(*) FROM schema_migrations").scalar() }
                == String(PostgresMigrations.all.count))
    }

    @Test func theAppRoleCannotMigrateAndAnOldSchemaIsRefusedClearly() async throws {
        let peers = try Peers.requirePostgres()
        let name = "lightsail_e_" + UUID().uuidString.prefix(8).lowercased()
        let admin = try await PostgresConnection.connect(.init(url: peers.adminURL))
        try await admin.run { db in try db.execute("CREATE DATABASE \(name) OWNER lightsail_owner") }
        do {
            _ = try await PostgresEvidenceStore(settings: .init(url: Peers.url(peers.appURL, database: name)))
            Issue.record("opened an unmigrated database")
        } catch {
            #expect("\(error)".contains("run `pipeline db migrate`"))
        }
    }

    @Test func theStoreRefusesRolesThatSecurityWouldNotBind() async throws {
        let database = try await TestDatabase.make()
        let peers = try Peers.requirePostgres()
        for (url, reason) in [(database.ownerURL, "the owner of the tables"),
                              (Peers.url(peers.adminURL, database: database.name), "a superuser")] {
            do {
                _ = try await PostgresEvidenceStore(settings: .init(url: url))
                Issue.record("opened as \(reason)")
            } catch {
                #expect("\(error)".contains(reason), "\(error)")
                #expect("\(error)".contains("connect as a role granted lightsail_app"))
            }
        }
    }

    @Test func cancellingATaskCancelsTheStatementOnTheServer() async throws {
        let database = try await TestDatabase.make()
        let db = try await PostgresConnection.connect(.init(url: database.appURL))
        let task = Task { try await db.run { db in try db.execute("SELECT pg_sleep(30)") } }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        task.cancel()
        await #expect(throws: (any Error).self) { _ = try await task.value }
        // Well before the statement's 30 s: the server stopped it (generous, for a loaded machine).
        #expect(ContinuousClock.now - start < .seconds(15))
        // The connection is usable again.
        #expect(try await db.run { db in try db.execute("SELECT 1").scalar() } == "1")
    }

    @Test func theStatementTimeoutStopsARunawayQuery() async throws {
        let database = try await TestDatabase.make()
        var settings = PostgresConnection.Settings(url: database.appURL)
        settings.statementTimeout = .milliseconds(200)
        let db = try await PostgresConnection.connect(settings)
        do {
            _ = try await db.run { db in try db.execute("SELECT pg_sleep(10)") }
            Issue.record("not stopped")
        } catch {
            #expect("\(error)".contains("statement cancelled or timed out"))
        }
    }

    @Test func aServerThatIsNotThereIsAClearErrorWithoutThePassword() async throws {
        let port = try freePort()
        do {
            _ = try await PostgresConnection.connect(.init(url: "postgres://lightsail:s3cret@127.0.0.1:\(port)/lightsail"))
            Issue.record("connected to nothing")
        } catch {
            #expect("\(error)".contains("cannot connect to PostgreSQL at postgres://lightsail:***@127.0.0.1:\(port)/lightsail"))
            #expect(!"\(error)".contains("s3cret"))
        }
    }
}

/// A loopback port nothing listens on.
func freePort() throws -> Int {
    let result = try ExternalTool.run("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
    return Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))!
}

@Suite struct PostgresPoolTests {
    @Test func aPooledConnectionTheServerEndedIsReplacedNotLentOut() async throws {
        let database = try await TestDatabase.make()
        let peers = try Peers.requirePostgres()
        let store = try await PostgresEvidenceStore(settings: .init(url: database.appURL), poolSize: 1)
        let run = runRecord("acme")
        try await store.beginRun(run)
        // The server ends every session of the pipeline's role on that database.
        let admin = try await PostgresConnection.connect(.init(url: Peers.url(peers.adminURL, database: database.name)))
        let ended = try await admin.run { db in
            try db.execute("""
                SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND usename = 'lightsail_pipeline') t
                """).scalar()
        }
        #expect(ended == "1")
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await store.storeEvidence([evidence(1, org: "acme")], run: run) == 1)
    }
}

extension PostgresPoolTests {
    /// A session ended in the middle of a statement: a clear, transient error, and the store's
    /// next unit of work runs on a new connection.
    @Test func aConnectionLostDuringAStatementIsAClearTransientError() async throws {
        let database = try await TestDatabase.make()
        let peers = try Peers.requirePostgres()
        let victim = try await PostgresConnection.connect(.init(url: database.appURL))
        let pid = try await victim.run { db in try db.execute("SELECT pg_backend_pid()").scalar() ?? "" }
        let task = Task { try await victim.run { db in try db.execute("SELECT pg_sleep(30)") } }
        try await Task.sleep(for: .milliseconds(200))
        let admin = try await PostgresConnection.connect(.init(url: Peers.url(peers.adminURL, database: database.name)))
        try await admin.run { db in try db.execute("SELECT pg_terminate_backend($1::int)", [pid]) }
        do {
            _ = try await task.value
            Issue.record("the statement survived its session")
        } catch let error as PipelineError {
            #expect(error.message.contains("the connection to PostgreSQL was lost"))
            #expect(error.isTransient)
        }
        #expect(!victim.isAlive)
    }
}

/// What the pipeline's role cannot rewrite, and what is audited however it is changed.
@Suite(.needsPostgres) struct PostgresHistoryTests {
    @Test func resultsScoresAndExportsAreAppendOnlyForThePipelinesRole() async throws {
        let database = try await TestDatabase.make()
        let store = try await PostgresEvidenceStore(settings: .init(url: database.appURL))
        let run = runRecord("acme")
        try await store.beginRun(run)
        let result = CheckResult(checkID: "c1", title: "t", controls: [ControlRef(framework: "soc2", id: "CC6.1")],
                                 status: .fail, reason: "r", evidenceIDs: [])
        try await store.storeResults([result], scores: ScoreSummary(frameworks: []), run: run)
        try await store.storeExport(ExportRecord(id: "exp-1", organizationID: org("acme"), artifacts: []), run: run)
        let db = try await PostgresConnection.connect(.init(url: database.appURL))
        for statement in ["UPDATE check_results SET status = 'pass'", "DELETE FROM check_results",
                          "UPDATE scores SET passed = 99", "DELETE FROM exports", "UPDATE exports SET artifacts = '[]'"] {
            do {
                try await db.transaction(organization: org("acme")) { db in try db.execute(statement) }
                Issue.record("the pipeline's role could run: \(statement)")
            } catch let error as PipelineError {
                #expect(error[.sqlState] == "42501", "\(statement): \(error)")  // insufficient_privilege
            }
        }
        let status = try await db.transaction(organization: org("acme")) { db in
            try db.execute("SELECT status FROM check_results").scalar()
        }
        #expect(status == "fail")
    }

    @Test func aMemberChangedOutsideTheCommandLineIsAuditedInTheSameTransaction() async throws {
        let database = try await TestDatabase.make()
        let store = try await PostgresEvidenceStore(settings: .init(url: database.appURL))
        try await store.addOrganization(Organization(id: org("acme"), name: "Acme", integrations: [:]),
                                        members: [Member(actor: "olive@acme.example", role: .owner)], integrations: [],
                                        actor: "system")
        // Plain SQL as the pipeline's role, as a script or a psql session would do it.
        let db = try await PostgresConnection.connect(.init(url: database.appURL))
        try await db.transaction(organization: org("acme")) { db in
            try db.execute("UPDATE members SET role = 'viewer' WHERE actor = 'olive@acme.example'")
            try db.execute("INSERT INTO members (organization_id, actor, role) VALUES ('acme', 'eve@acme.example', 'admin')")
            try db.execute("DELETE FROM members WHERE actor = 'eve@acme.example'")
            try db.execute("INSERT INTO integrations (organization_id, kind, settings) VALUES ('acme', 'github', '{}')")
        }
        let log = try await store.auditLog(of: org("acme")).map { "\($0.actor) \($0.action) \($0.entityID) \($0.detail)" }
        #expect(log == [
            "system organization.created acme Acme",
            "system member.added olive@acme.example owner",
            "lightsail_pipeline member.role_changed olive@acme.example owner -> viewer",
            "lightsail_pipeline member.added eve@acme.example admin",
            "lightsail_pipeline member.removed eve@acme.example ",
            "lightsail_pipeline integration.added github ",
        ])
        // Another organization's member cannot be written at all (row-level security), audited or not.
        await #expect(throws: PipelineError.self) {
            try await db.transaction(organization: org("acme")) { db in
                try db.execute("INSERT INTO members (organization_id, actor, role) VALUES ('globex', 'x@y', 'admin')")
            }
        }
    }

    @Test func anotherTenantsRunIDCannotBeProbed() async throws {
        let database = try await TestDatabase.make()
        let store = try await PostgresEvidenceStore(settings: .init(url: database.appURL))
        let secret = RunRecord(id: "run-guess-me", organizationID: org("globex"), pipeline: "report", asOf: asOf, actor: "system")
        try await store.beginRun(secret)
        // The same id in another organization is simply another run: no collision tells it exists.
        let mine = RunRecord(id: "run-guess-me", organizationID: org("acme"), pipeline: "report", asOf: asOf, actor: "system")
        try await store.beginRun(mine)
        try await store.finishRun(mine, status: .succeeded, message: nil)
        #expect(try await store.runs(of: org("globex"), status: nil, limit: 10).map(\.status) == ["running"])
        #expect(try await store.runs(of: org("acme"), status: nil, limit: 10).map(\.status) == ["succeeded"])
    }

    @Test func aRunWhoseProcessIsGoneIsMarkedAbandonedAndAudited() async throws {
        let database = try await TestDatabase.make()
        let store = try await PostgresEvidenceStore(settings: .init(url: database.appURL))
        let dead = RunRecord(id: "run-dead", organizationID: org("acme"), pipeline: "report", asOf: asOf, actor: "system",
                             host: Residue.host, pid: 4_194_305)
        let alive = RunRecord(id: "run-alive", organizationID: org("acme"), pipeline: "report", asOf: asOf, actor: "system")
        try await store.beginRun(dead)
        try await store.beginRun(alive)
        let running = try await store.runs(of: org("acme"), status: .running, limit: 10)
        let gone = running.filter { Residue.isGone(host: $0.host, pid: $0.pid, started: $0.startedAt) }.map(\.id)
        #expect(gone == ["run-dead"])
        #expect(try await store.abandonRun("run-dead", of: org("acme"), reason: "process gone"))
        #expect(try await !store.abandonRun("run-dead", of: org("acme"), reason: "again"))
        let statuses = Dictionary(uniqueKeysWithValues: try await store.runs(of: org("acme"), status: nil, limit: 10).map { ($0.id, $0.status) })
        #expect(statuses == ["run-dead": "abandoned", "run-alive": "running"])
        #expect(try await store.auditLog(of: org("acme")).contains { $0.action == "run.abandoned" && $0.entityID == "run-dead" })
    }
}

/// PQcancel reaches only the statement of the unit that asked.
@Suite(.needsPostgres) struct PostgresCancelTests {
    @Test func aLateCancelNeverCancelsTheNextUnitsStatement() async throws {
        let database = try await TestDatabase.make()
        let connection = try await PostgresConnection.connect(.init(url: database.appURL))
        // Unit A runs and ends; its ticket is then stale.
        try await connection.run { db in try db.execute("SELECT 1") }
        let stale = try #require(connection.lastTicketForTests)
        // Unit B (another organization's, say) runs a statement of a second; A's cancel arrives meanwhile.
        let b = Task { try await connection.run { db in _ = try db.execute("SELECT pg_sleep(2)") } }
        // Until B is seen running; on a loaded machine B may even be done first, so the wait ends
        // (it once spun forever there, waiting for a ticket that had come and gone).
        let deadline = ContinuousClock.now + .seconds(10)
        while connection.runningTicket == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        connection.cancel(ticket: stale)
        try await b.value  // not cancelled
    }

    @Test func aCallerWaitingForAPooledConnectionStopsWaitingWhenCancelled() async throws {
        let database = try await TestDatabase.make()
        let pool = PostgresPool(settings: .init(url: database.appURL), size: 1)
        let holderDone = DoneFlag()
        let holder = Task {
            try await pool.withConnection { connection in
                try await connection.run { db in _ = try db.execute("SELECT pg_sleep(20)") }
            }
            holderDone.set()
        }
        try await Task.sleep(for: .milliseconds(200))
        let waiter = Task { try await pool.withConnection { _ in 1 } }
        try await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        // It gave up at once, not when the connection came free (20 s leaves room for a loaded machine).
        #expect(!holderDone.isSet)
        holder.cancel()
        _ = try? await holder.value
        // The one connection went back to the pool, not to the caller that gave up.
        let answer = try await pool.withConnection { connection in try await connection.run { db in try db.execute("SELECT 3").scalar() } }
        #expect(answer == "3")
    }

    @Test func cancellingAUnitCancelsItsStatementQuickly() async throws {
        let database = try await TestDatabase.make()
        let connection = try await PostgresConnection.connect(.init(url: database.appURL))
        let unit = Task { try await connection.run { db in _ = try db.execute("SELECT pg_sleep(30)") } }
        let deadline = ContinuousClock.now + .seconds(20)
        while connection.runningTicket == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(connection.runningTicket != nil, "the statement never started")
        let start = ContinuousClock.now
        unit.cancel()
        do {
            try await unit.value
            Issue.record("the statement was not cancelled")
        } catch let error as PipelineError {
            #expect(error[.sqlState] == "57014")
        }
        // Well before the statement's 30 s: the server stopped it (generous, for a loaded machine).
        #expect(ContinuousClock.now - start < .seconds(15))
        // The connection is usable afterwards.
        #expect(try await connection.run { db in try db.execute("SELECT 2").scalar() } == "2")
    }
}

/// Set once, read from any task.
final class DoneFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
