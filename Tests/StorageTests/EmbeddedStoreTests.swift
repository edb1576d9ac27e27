import Foundation
import Pipeline
import PipelineTesting
@testable import Storage
import Testing

let asOf = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z

func temporaryDirectory() throws -> URL { try ExternalTool.temporaryDirectory() }

/// Ten evidence items of an organization, as a collector describes them.
func sampleEvidence(_ org: String, count: Int = 10) throws -> [Evidence] {
    try (0..<count).map { n in
        Evidence(id: String(format: "%064x", n + 1), organizationID: try OrganizationID(org), source: "github",
                 operation: "orgs/get", resource: "\(org)-\(n)", request: "GET /orgs/\(org)-\(n)", status: 200,
                 collectedAt: asOf, freshUntil: asOf.addingTimeInterval(3600), sha256: String(repeating: "a", count: 64),
                 mediaType: "application/json", size: 2)
    }
}

@Suite struct SQLiteEvidenceStoreTests {
    func run(_ org: String, _ id: String = UUID().uuidString) throws -> RunRecord {
        RunRecord(id: id, organizationID: try OrganizationID(org), pipeline: "report", asOf: asOf, actor: "test")
    }

    @Test func storingTheSameEvidenceAgainAddsNoRow() async throws {
        let store = try await SQLiteEvidenceStore(path: try temporaryDirectory().appendingPathComponent("db.sqlite").path)
        let items = try sampleEvidence("acme")
        let first = try run("acme")
        try await store.beginRun(first)
        #expect(try await store.storeEvidence(items, run: first) == items.count)
        let second = try run("acme")
        try await store.beginRun(second)
        #expect(try await store.storeEvidence(items, run: second) == 0)
        #expect(try await store.evidenceCount(organization: try OrganizationID("acme")) == items.count)
        #expect(try await store.count(table: "run_evidence", organization: try OrganizationID("acme")) == 2 * items.count)
    }

    @Test func oneOrganizationNeverSeesAnothersRows() async throws {
        let store = try await SQLiteEvidenceStore(path: try temporaryDirectory().appendingPathComponent("db.sqlite").path)
        let acme = try sampleEvidence("acme")
        let acmeRun = try run("acme")
        try await store.beginRun(acmeRun)
        try await store.storeEvidence(acme, run: acmeRun)
        #expect(try await store.evidenceCount(organization: try OrganizationID("globex")) == 0)
        #expect(try await store.count(table: "runs", organization: try OrganizationID("globex")) == 0)
        // Evidence of one organization cannot be written under another's run.
        let globexRun = try run("globex")
        await #expect(throws: PipelineError.self) { try await store.storeEvidence(acme, run: globexRun) }
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
        let store = try await LocalObjectStore.open(root: root)
        #expect(try await store.put("acme/evidence/e1/original.json", data: Data("first".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await !store.put("acme/evidence/e1/original.json", data: Data("other".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await store.get("acme/evidence/e1/original.json") == Data("first".utf8))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("acme/evidence/e1").path)
        #expect(leftovers == ["original.json"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(".staging").path).isEmpty)
    }

    @Test func concurrentWritersOfOneKeyLeaveOneWholeObject() async throws {
        let store = try await LocalObjectStore.open(root: try temporaryDirectory())
        let payload = Data(repeating: 7, count: 1 << 20)
        let wins = try await mapConcurrently(0..<16, width: 16) { _ in
            try await store.put("acme/exports/x.zip", data: payload, contentType: "application/zip", ifAbsent: true)
        }
        #expect(wins.count { $0 } == 1)
        #expect(try await store.get("acme/exports/x.zip") == payload)
    }

    @Test(arguments: ["../etc/passwd", "acme/../../x", "acme//x", "", "acme/./x"])
    func keysThatEscapeTheRootAreRefused(_ key: String) async throws {
        let store = try await LocalObjectStore.open(root: try temporaryDirectory())
        await #expect(throws: PipelineError.self) { try await store.put(key, data: Data(), contentType: "x", ifAbsent: false) }
    }
}

@Suite struct LocalObjectStoreResidueTests {
    @Test func anObjectTornByACrashIsReplacedNotKept() async throws {
        let root = try temporaryDirectory()
        let store = try await LocalObjectStore.open(root: root)
        let key = "acme/evidence/e2/original.json"
        try FileManager.default.createDirectory(at: root.appendingPathComponent("acme/evidence/e2"), withIntermediateDirectories: true)
        // What a crash before the flush can leave: the name in place, the bytes not.
        try Data().write(to: root.appendingPathComponent(key))
        #expect(try await store.put(key, data: Data("{\"whole\":true}".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await store.get(key) == Data("{\"whole\":true}".utf8))
    }

    @Test func sweepingRemovesWhatDeadWritersLeftAndKeepsWhatLiveOnesWrite() async throws {
        let root = try temporaryDirectory()
        let store = try await LocalObjectStore.open(root: root)
        let staging = root.appendingPathComponent(".staging")
        // A process that no longer exists (pid 2^22 + 1 is above Linux's pid_max default), one
        // still alive (this one), and one from another machine, a day old.
        let dead = "\(Residue.writer.split(separator: ".").dropLast().joined(separator: ".")).4194305.\(UUID().uuidString).tmp"
        let live = Residue.temporaryName()
        let old = "other-host.123.\(UUID().uuidString).tmp"
        for name in [dead, live, old] { try Data(count: 1000).write(to: staging.appendingPathComponent(name)) }
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-2 * 86_400)],
                                              ofItemAtPath: staging.appendingPathComponent(old).path)
        let swept = try await store.sweep()
        #expect(swept.files == 2)
        #expect(swept.bytes == 2000)
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging.path) == [live])
    }

    @Test func readingStreamsAnObjectInPiecesOfTheSizeAsked() async throws {
        let store = try await LocalObjectStore.open(root: try temporaryDirectory())
        let payload = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0) })
        _ = try await store.put("acme/x.bin", data: payload, contentType: "application/octet-stream", ifAbsent: false)
        try await store.sync()
        var pieces: [Int] = []
        var joined = Data()
        try await store.read("acme/x.bin", chunkSize: 4096) { chunk in
            pieces.append(chunk.count)
            joined.append(chunk)
        }
        #expect(pieces == [4096, 4096, 1808])
        #expect(joined == payload)
        await #expect(throws: PipelineError.self) { try await store.read("acme/missing", chunkSize: 10) { _ in } }
    }

    @Test func aFileIsStoredWholeFromDiskAndTheSourceIsLeftInPlace() async throws {
        let dir = try temporaryDirectory()
        let store = try await LocalObjectStore.open(root: dir.appendingPathComponent("objects"))
        let source = dir.appendingPathComponent("bundle.zip")
        try Data(repeating: 1, count: 3 << 20).write(to: source)
        #expect(try await store.put("acme/exports/e.zip", file: source, contentType: "application/zip", ifAbsent: true))
        #expect(try await !store.put("acme/exports/e.zip", file: source, contentType: "application/zip", ifAbsent: true))
        #expect(FileManager.default.fileExists(atPath: source.path))
        #expect(try await store.get("acme/exports/e.zip").count == 3 << 20)
    }
}

@Suite struct PoolStateTests {
    typealias State = PoolState<String, String>

    func used(_ grant: PoolGrant<String>?) -> String? {
        if case .use(let connection)? = grant { return connection }
        return nil
    }

    func opens(_ grant: PoolGrant<String>?) -> Bool {
        if case .open? = grant { return true }
        return false
    }

    @Test func callersOpenUpToTheSizeThenWaitInOrder() {
        var state = State(size: 2)
        #expect(opens(state.checkout(id: 1, waiter: "a")))
        #expect(opens(state.checkout(id: 2, waiter: "b")))
        #expect(state.checkout(id: 3, waiter: "c") == nil)
        #expect(state.checkout(id: 4, waiter: "d") == nil)
        #expect(state.open == 2)
        #expect(state.waiting == 2)
        // A connection coming back goes straight to the oldest waiter.
        let handoff = state.checkin("conn-1", reusable: true)
        #expect(handoff?.0 == "c")
        #expect(used(handoff?.1) == "conn-1")
        #expect(state.waiting == 1)
    }

    @Test func aReturnedConnectionIsReusedWhenNobodyWaits() {
        var state = State(size: 1)
        _ = state.checkout(id: 1, waiter: "a")
        #expect(state.checkin("conn-1", reusable: true) == nil)
        #expect(state.idleCount == 1)
        #expect(used(state.checkout(id: 2, waiter: "b")) == "conn-1")
        #expect(state.open == 1)
    }

    @Test func aBrokenConnectionsSlotGoesToAWaiterToOpenANewOne() {
        var state = State(size: 1)
        _ = state.checkout(id: 1, waiter: "a")
        _ = state.checkout(id: 2, waiter: "b")
        let handoff = state.checkin("broken", reusable: false)
        #expect(handoff?.0 == "b")
        #expect(opens(handoff?.1))
        #expect(state.open == 1)
        // With nobody waiting, the slot is freed.
        #expect(state.checkin("broken-too", reusable: false) == nil)
        #expect(state.open == 0)
    }

    @Test func aCancelledWaiterLeavesAtOnceAndIsNeverGrantedAnything() {
        var state = State(size: 1)
        _ = state.checkout(id: 1, waiter: "a")
        _ = state.checkout(id: 2, waiter: "b")
        _ = state.checkout(id: 3, waiter: "c")
        #expect(state.cancel(id: 2) == "b")
        #expect(state.cancel(id: 2) == nil)
        #expect(state.checkin("conn", reusable: true)?.0 == "c")
        // A waiter already served cannot be cancelled out of its grant.
        #expect(state.cancel(id: 3) == nil)
    }

    @Test func aFailedOpenPassesItsSlotOn() {
        var state = State(size: 1)
        _ = state.checkout(id: 1, waiter: "a")
        _ = state.checkout(id: 2, waiter: "b")
        let handoff = state.release()
        #expect(handoff?.0 == "b")
        #expect(opens(handoff?.1))
        #expect(state.release() == nil)
        #expect(state.open == 0)
    }

    @Test func drainingClosesOnlyIdleConnections() {
        var state = State(size: 3)
        _ = state.checkout(id: 1, waiter: "a")
        _ = state.checkout(id: 2, waiter: "b")
        _ = state.checkin("conn-1", reusable: true)
        #expect(state.drain() == ["conn-1"])
        #expect(state.open == 1)
    }
}
