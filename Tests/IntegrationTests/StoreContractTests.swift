import Foundation
import Pipeline
import PipelineTesting
@testable import Storage
@testable import Transport
import Testing

/// The repository interface's promises, held by SQLite and PostgreSQL alike.
@Suite struct StoreContractTests {
    @Test(arguments: Backend.allCases)
    func storingTheSameEvidenceAgainAddsNoRow(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let items = (0..<250).map { evidence($0, org: "acme") }
        let first = runRecord("acme")
        try await store.beginRun(first)
        #expect(try await store.storeEvidence(items, run: first) == 250)
        let second = runRecord("acme")
        try await store.beginRun(second)
        #expect(try await store.storeEvidence(items + [evidence(250, org: "acme")], run: second) == 1)
        #expect(try await store.evidenceCount(organization: org("acme")) == 251)
        let log = try await store.auditLog(of: org("acme")).filter { $0.action == "evidence.stored" }
        #expect(log.map(\.detail) == ["250 new evidence items", "1 new evidence items"])
        #expect(log.map(\.entityID) == [first.id, second.id])
    }

    @Test(arguments: Backend.allCases)
    func oneOrganizationNeverSeesAnothersRows(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let acme = runRecord("acme")
        try await store.beginRun(acme)
        try await store.storeEvidence((0..<5).map { evidence($0, org: "acme") }, run: acme)
        let globex = runRecord("globex")
        try await store.beginRun(globex)
        try await store.storeEvidence((0..<3).map { evidence($0, org: "globex") }, run: globex)
        #expect(try await store.evidenceCount(organization: org("acme")) == 5)
        #expect(try await store.evidenceCount(organization: org("globex")) == 3)
        #expect(try await store.evidenceCount(organization: org("initech")) == 0)
        #expect(try await store.auditLog(of: org("globex")).allSatisfy { $0.organizationID == org("globex") })
        await #expect(throws: PipelineError.self) {
            try await store.storeEvidence([evidence(9, org: "acme")], run: globex)
        }
    }

    @Test(arguments: Backend.allCases)
    func aRunIsRecordedAndAuditedFromStartToFinish(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let run = runRecord("acme", actor: "alice@acme.example")
        try await store.beginRun(run)
        let result = CheckResult(checkID: "github.x", title: "x", controls: [ControlRef(framework: "soc2", id: "CC8.1")],
                                 status: .fail, reason: "because", findings: ["a: b"], evidenceIDs: ["e1"])
        let score = ScoreSummary(frameworks: [FrameworkScore(framework: "soc2", controls: [
            ControlStatus(control: ControlRef(framework: "soc2", id: "CC8.1"), title: "t", status: .fail,
                          checkIDs: ["github.x"], evidenceIDs: ["e1"])])])
        try await store.storeResults([result], scores: score, run: run)
        try await store.storeExport(ExportRecord(id: "exp-1", organizationID: org("acme"), artifacts: []), run: run)
        try await store.finishRun(run, status: .succeeded, message: nil)
        let actions = try await store.auditLog(of: org("acme")).map(\.action)
        #expect(actions == ["run.started", "export.created", "run.succeeded"])
        #expect(try await store.auditLog(of: org("acme")).allSatisfy { $0.actor == "alice@acme.example" })
    }

    @Test(arguments: Backend.allCases)
    func membersCarryRolesAndEveryChangeIsAudited(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let acme = Organization(id: org("acme"), name: "Acme Corp", integrations: ["github": ["account": "acme-corp"]])
        let members = [Member(actor: "olive@acme.example", role: .owner), Member(actor: "vic@acme.example", role: .viewer)]
        try await store.ensureOrganization(acme, members: members, actor: "system")
        try await store.ensureOrganization(acme, members: members, actor: "system")  // idempotent
        #expect(try await store.role(of: "vic@acme.example", in: org("acme")) == .viewer)
        #expect(try await store.role(of: "vic@acme.example", in: org("globex")) == nil)
        try await store.setMember(Member(actor: "vic@acme.example", role: .admin), in: org("acme"), actor: "olive@acme.example")
        #expect(try await store.role(of: "vic@acme.example", in: org("acme")) == .admin)
        #expect(try await store.removeMember("vic@acme.example", from: org("acme"), actor: "olive@acme.example"))
        #expect(try await !store.removeMember("vic@acme.example", from: org("acme"), actor: "olive@acme.example"))
        #expect(try await store.members(of: org("acme")) == [Member(actor: "olive@acme.example", role: .owner)])
        #expect(try await store.integrations(of: org("acme")) == ["github": ["account": "acme-corp"]])
        #expect(try await store.removeIntegration("github", from: org("acme"), actor: "olive@acme.example"))
        #expect(try await store.integrations(of: org("acme")).isEmpty)
        let log = try await store.auditLog(of: org("acme")).map { "\($0.action) \($0.entityID)" }
        #expect(log == ["organization.created acme", "member.added olive@acme.example", "member.added vic@acme.example",
                        "integration.added github", "member.role_changed vic@acme.example", "member.removed vic@acme.example",
                        "integration.removed github"])
    }

    @Test(arguments: Backend.allCases)
    func theSchemaIsCurrent(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let state = try await store.migrationState()
        #expect(state.applied == state.latest)
        #expect(state.latest >= 1)
    }
}

@Suite struct ConcurrentWriterTests {
    /// Two processes' worth of writers storing the same evidence at once: every item stored once.
    @Test(arguments: Backend.allCases)
    func concurrentRunsStoringTheSameEvidenceStoreItOnce(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let items = (0..<2000).map { evidence($0, org: "acme") }
        let inserted = try await mapConcurrently(0..<4, width: 4) { _ in
            let run = runRecord("acme")
            try await store.beginRun(run)
            return try await store.storeEvidence(items.shuffled(), run: run)
        }
        #expect(inserted.reduce(0, +) == 2000)
        #expect(try await store.evidenceCount(organization: org("acme")) == 2000)
    }
}

/// The object store's promises, held by a local directory and S3 (moto) alike.
@Suite struct ObjectStoreContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case directory, s3
        var testDescription: String { rawValue }
    }

    func make(_ kind: Kind) async throws -> any ObjectStore {
        switch kind {
        case .directory: return try await LocalObjectStore.open(root: try ExternalTool.temporaryDirectory())
        case .s3: return S3ObjectStore(client: try s3Client())
        }
    }

    @Test(arguments: Kind.allCases)
    func objectsAreWrittenWholeReadBackAndRemoved(_ kind: Kind) async throws {
        let store = try await make(kind)
        let key = "acme/evidence/\(String(repeating: "ab", count: 32))/original.json"
        #expect(try await !store.exists(key))
        #expect(try await store.put(key, data: Data("first".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await !store.put(key, data: Data("other".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await store.get(key) == Data("first".utf8))
        #expect(try await store.put(key, data: Data("third".utf8), contentType: "application/json", ifAbsent: false))
        #expect(try await store.get(key) == Data("third".utf8))
        try await store.delete(key)
        try await store.delete(key)
        #expect(try await !store.exists(key))
        await #expect(throws: PipelineError.self) { _ = try await store.get(key) }
        if let local = store as? LocalObjectStore {
            #expect(try FileManager.default.contentsOfDirectory(atPath: local.root.path) == [".staging"], "empty folders are removed")
        }
    }
}
