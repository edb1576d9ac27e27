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

    /// Exceptions are kept per organization, audited when added and removed, and invisible to
    /// another organization (row-level security on PostgreSQL).
    @Test(arguments: Backend.allCases)
    func exceptionsAreKeptPerOrganizationAndAudited(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let expires = Date(timeIntervalSince1970: 1_800_000_000)
        let exception = RiskException(id: "exc-0011223344556677", checkID: "github.owners-limited", resource: "acme-corp",
                                      approver: "olive@acme.example", justification: "Two owners are on leave until March",
                                      expires: expires, createdBy: "olive@acme.example", createdAt: Date(timeIntervalSince1970: 1_790_000_000))
        try await store.addException(exception, to: org("acme"), actor: "olive@acme.example")
        #expect(try await store.exceptions(of: org("acme")) == [exception])
        #expect(try await store.exceptions(of: org("globex")).isEmpty)
        #expect(try await store.removeException(exception.id, from: org("globex"), actor: "x") == false)
        #expect(try await store.removeException(exception.id, from: org("acme"), actor: "olive@acme.example"))
        #expect(try await store.exceptions(of: org("acme")).isEmpty)
        let log = try await store.auditLog(of: org("acme")).filter { $0.entityType == "exception" }
        #expect(log.map(\.action) == ["exception.added", "exception.removed"])
        #expect(log.first?.detail == "github.owners-limited acme-corp until 2027-01-15T08:00:00Z, approved by olive@acme.example")
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
        let entries = try await store.auditLog(of: org("acme")).filter { $0.action != "organization.created" }
        #expect(entries.map(\.action) == ["run.started", "export.created", "run.succeeded"])
        #expect(entries.allSatisfy { $0.actor == "alice@acme.example" })
    }

    @Test(arguments: Backend.allCases)
    func membersCarryRolesAndEveryChangeIsAudited(_ backend: Backend) async throws {
        let store = try await makeStore(backend, organizations: [])
        let acme = Organization(id: org("acme"), name: "Acme Corp", integrations: [:])
        let members = [Member(actor: "olive@acme.example", role: .owner), Member(actor: "vic@acme.example", role: .viewer)]
        let github = Integration(kind: "github", settings: ["account": "acme-corp"])
        #expect(try await store.addOrganization(acme, members: members, integrations: [github], actor: "system"))
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

    /// Adding an organization that exists writes nothing: an import never overwrites a role or an
    /// integration changed since.
    @Test(arguments: Backend.allCases)
    func addingAnOrganizationAgainChangesNothing(_ backend: Backend) async throws {
        let store = try await makeStore(backend, organizations: [])
        let acme = Organization(id: org("acme"), name: "Acme Corp", integrations: [:])
        #expect(try await store.addOrganization(acme, members: [Member(actor: "olive@acme.example", role: .owner)],
                                                integrations: [], actor: "system"))
        try await store.setMember(Member(actor: "olive@acme.example", role: .admin), in: org("acme"), actor: "system")
        let renamed = Organization(id: org("acme"), name: "Renamed", integrations: [:])
        #expect(try await !store.addOrganization(renamed, members: [Member(actor: "olive@acme.example", role: .owner)],
                                                 integrations: [Integration(kind: "github", settings: ["account": "x"])],
                                                 actor: "system"))
        #expect(try await store.organization(org("acme"))?.name == "Acme Corp")
        #expect(try await store.role(of: "olive@acme.example", in: org("acme")) == .admin)
        #expect(try await store.integrations(of: org("acme")).isEmpty)
    }

    /// Removing an organization removes its members and integrations; its history stays, and a
    /// run for it is refused afterwards.
    @Test(arguments: Backend.allCases)
    func aRemovedOrganizationIsGoneButItsHistoryStays(_ backend: Backend) async throws {
        let store = try await makeStore(backend, organizations: ["globex"])
        let acme = Organization(id: org("acme"), name: "Acme Corp", integrations: [:])
        try await store.addOrganization(acme, members: [Member(actor: "olive@acme.example", role: .owner)],
                                        integrations: [Integration(kind: "github", settings: ["account": "acme-corp"])],
                                        actor: "system")
        let run = runRecord("acme")
        try await store.beginRun(run)
        try await store.storeEvidence((0..<3).map { evidence($0, org: "acme") }, run: run)
        try await store.finishRun(run, status: .succeeded, message: nil)
        #expect(try await store.organizations().map(\.id.rawValue) == ["acme", "globex"])
        #expect(try await store.removeOrganization(org("acme"), actor: "olive@acme.example"))
        #expect(try await !store.removeOrganization(org("acme"), actor: "olive@acme.example"))
        #expect(try await store.organizations().map(\.id.rawValue) == ["globex"])
        #expect(try await store.organization(org("acme")) == nil)
        #expect(try await store.role(of: "olive@acme.example", in: org("acme")) == nil)
        #expect(try await store.evidenceCount(organization: org("acme")) == 3)
        #expect(try await store.auditLog(of: org("acme")).last?.action == "organization.removed")
        await #expect(throws: PipelineError.self) {
            try await store.setMember(Member(actor: "x@acme.example", role: .viewer), in: org("acme"), actor: "system")
        }
    }

    /// Sealed credentials are kept as given and read back by kind; settings never carry them.
    @Test(arguments: Backend.allCases)
    func integrationSecretsAreKeptApartFromSettings(_ backend: Backend) async throws {
        let store = try await makeStore(backend)
        let sealed = SealedSecret(keyID: "k1", sealed: Data((0..<60).map { UInt8($0) }))
        try await store.setIntegration(Integration(kind: "github", settings: ["account": "acme-corp"], secret: sealed),
                                       in: org("acme"), actor: "system")
        #expect(try await store.integrationSecret("github", of: org("acme")) == sealed)
        #expect(try await store.integrationSecret("github", of: org("globex")) == nil)
        #expect(try await store.integrations(of: org("acme")) == ["github": ["account": "acme-corp"]])
        let resealed = SealedSecret(keyID: "k2", sealed: Data(repeating: 7, count: 44))
        try await store.setIntegration(Integration(kind: "github", settings: ["account": "acme-corp"], secret: resealed),
                                       in: org("acme"), actor: "system")
        #expect(try await store.allIntegrationSecrets(of: org("acme")) == ["github": resealed])
        let actions = try await store.auditLog(of: org("acme")).map(\.action).filter { $0.hasPrefix("integration.") }
        #expect(actions == ["integration.added", "integration.changed"])
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
