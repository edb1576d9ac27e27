import Foundation
import Pipeline
@testable import Stages
import Testing

@Suite struct SQLiteEvidenceStoreTests {
    func run(_ org: String, _ id: String = UUID().uuidString) throws -> RunRecord {
        RunRecord(id: id, organizationID: try OrganizationID(org), pipeline: "report", asOf: asOf, actor: "test")
    }

    @Test func storingTheSameEvidenceAgainAddsNoRow() async throws {
        let store = try await SQLiteEvidenceStore(path: try temporaryDirectory().appendingPathComponent("db.sqlite").path)
        let (_, index) = try await collect("acme")
        let first = try run("acme")
        try await store.beginRun(first)
        #expect(try await store.storeEvidence(index.all, run: first) == index.all.count)
        let second = try run("acme")
        try await store.beginRun(second)
        #expect(try await store.storeEvidence(index.all, run: second) == 0)
        #expect(try await store.evidenceCount(organization: try OrganizationID("acme")) == index.all.count)
        #expect(try await store.count(table: "run_evidence", organization: try OrganizationID("acme")) == 2 * index.all.count)
    }

    @Test func oneOrganizationNeverSeesAnothersRows() async throws {
        let store = try await SQLiteEvidenceStore(path: try temporaryDirectory().appendingPathComponent("db.sqlite").path)
        let (_, acme) = try await collect("acme")
        let acmeRun = try run("acme")
        try await store.beginRun(acmeRun)
        try await store.storeEvidence(acme.all, run: acmeRun)
        #expect(try await store.evidenceCount(organization: try OrganizationID("globex")) == 0)
        #expect(try await store.count(table: "runs", organization: try OrganizationID("globex")) == 0)
        // Evidence of one organization cannot be written under another's run.
        let globexRun = try run("globex")
        await #expect(throws: PipelineError.self) { try await store.storeEvidence(acme.all, run: globexRun) }
    }

    @Test func aRunIsAuditedFromStartToFinish() async throws {
        let store = try await SQLiteEvidenceStore(path: try temporaryDirectory().appendingPathComponent("db.sqlite").path)
        let record = try run("acme", "run-42")
        try await store.beginRun(record)
        try await store.finishRun(record, status: .failed, message: "boom")
        let rows = try await store.db.run { db in
            try db.query("SELECT action, entity_id FROM audit_log WHERE organization_id = ? ORDER BY seq", [.text("acme")])
        }
        #expect(rows.map { $0[0].string ?? "" } == ["run.started", "run.failed"])
        let status = try await store.db.run { db in
            try db.query("SELECT status, message FROM runs WHERE organization_id = ? AND id = ?", [.text("acme"), .text("run-42")])
        }
        #expect(status.first?[0].string == "failed")
        #expect(status.first?[1].string == "boom")
    }

    @Test func migrationsAreAppliedOnceAndRecorded() async throws {
        let path = try temporaryDirectory().appendingPathComponent("db.sqlite").path
        _ = try await SQLiteEvidenceStore(path: path)
        let store = try await SQLiteEvidenceStore(path: path)
        let versions = try await store.db.run { db in try db.query("SELECT version FROM schema_migrations") }
        #expect(versions.count == SQLiteEvidenceStore.migrations.count)
    }

    @Test func anUnopenableDatabaseIsAClearError() async throws {
        do {
            _ = try await SQLiteEvidenceStore(path: "/proc/nonexistent/dir/db.sqlite")
            Issue.record("opened")
        } catch {
            #expect("\(error)".contains("cannot open SQLite database /proc/nonexistent/dir/db.sqlite"))
        }
    }
}

@Suite struct LocalObjectStoreTests {
    @Test func objectsAreWrittenWholeAndNeverOverwrittenWhenAskedNotTo() async throws {
        let root = try temporaryDirectory()
        let store = try LocalObjectStore(root: root)
        #expect(try await store.put("acme/evidence/e1/original.json", data: Data("first".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await !store.put("acme/evidence/e1/original.json", data: Data("second".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await store.get("acme/evidence/e1/original.json") == Data("first".utf8))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("acme/evidence/e1").path)
        #expect(leftovers == ["original.json"])
    }

    @Test func concurrentWritersOfOneKeyLeaveOneWholeObject() async throws {
        let store = try LocalObjectStore(root: try temporaryDirectory())
        let payload = Data(repeating: 7, count: 1 << 20)
        let wins = try await mapConcurrently(0..<16, width: 16) { _ in
            try await store.put("acme/exports/x.zip", data: payload, contentType: "application/zip", ifAbsent: true)
        }
        #expect(wins.count { $0 } == 1)
        #expect(try await store.get("acme/exports/x.zip") == payload)
    }

    @Test(arguments: ["../etc/passwd", "acme/../../x", "acme//x", "", "acme/./x"])
    func keysThatEscapeTheRootAreRefused(_ key: String) async throws {
        let store = try LocalObjectStore(root: try temporaryDirectory())
        await #expect(throws: PipelineError.self) { try await store.put(key, data: Data(), contentType: "x", ifAbsent: false) }
    }
}
