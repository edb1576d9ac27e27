import Foundation
import Pipeline
import Cryptography
import PipelineTesting
@testable import Storage
@testable import Transport
import Testing

/// The two store pairs the same suite runs against.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case embedded
    case production

    var testDescription: String { rawValue }
}

/// One fresh database per test on the PostgreSQL peer, migrated by the owner role.
struct TestDatabase {
    let name: String
    let ownerURL: String
    let appURL: String

    static func make() async throws -> TestDatabase {
        let peers = try Peers.requirePostgres()
        let name = "lightsail_t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await PostgresConnection.connect(.init(url: peers.adminURL))
        try await admin.run { db in
            try db.execute("CREATE DATABASE \(name) OWNER lightsail_owner")
        }
        let database = TestDatabase(name: name, ownerURL: Peers.url(peers.ownerURL, database: name),
                                    appURL: Peers.url(peers.appURL, database: name))
        let owner = try await PostgresConnection.connect(.init(url: database.ownerURL))
        _ = try await PostgresMigrations.migrate(owner)
        return database
    }
}

/// A store of the given backend (the production one stops the test when PostgreSQL is not there),
/// holding the organizations named, without members.
func makeStore(_ backend: Backend, organizations: [String] = ["acme", "globex", "initech"]) async throws -> any EvidenceStore {
    let store: any EvidenceStore
    switch backend {
    case .embedded:
        store = try await SQLiteEvidenceStore(path: try ExternalTool.temporaryDirectory().appendingPathComponent("db.sqlite").path)
    case .production:
        let database = try await TestDatabase.make()
        store = try await PostgresEvidenceStore(settings: .init(url: database.appURL))
    }
    for id in organizations {
        try await store.addOrganization(Organization(id: org(id), name: id.capitalized, integrations: [:]), members: [],
                                        integrations: [], actor: "system")
    }
    return store
}

let asOf = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z

func org(_ raw: String) -> OrganizationID { try! OrganizationID(raw) }

/// Evidence as a collector describes it: ids and hashes computed as `EvidenceFactory` does, with
/// tabs, newlines and backslashes in the text fields COPY must escape.
func evidence(_ n: Int, org organization: String, body: String? = nil) -> Evidence {
    let content = Data((body ?? "{\"n\": \(n), \"text\": \"tab\\there\\nnewline \\\\ backslash\"}").utf8)
    let hash = try! Digest.sha256Hex(content)
    let identity = "lightsail-evidence-v1\n\(organization)\ngithub\norgs/get\nres-\(n)\nGET /res/\(n)\t\\x\n200\n\(hash)"
    return Evidence(id: try! Digest.sha256Hex(Data(identity.utf8)), organizationID: org(organization), source: "github",
                    operation: "orgs/get", resource: "res-\(n)", request: "GET /res/\(n)\t\\x", status: 200,
                    collectedAt: asOf, freshUntil: asOf.addingTimeInterval(3600), sha256: hash,
                    mediaType: "application/json", size: content.count)
}

func runRecord(_ organization: String, actor: String = "system") -> RunRecord {
    RunRecord(id: UUID().uuidString.lowercased(), organizationID: org(organization), pipeline: "report", asOf: asOf,
              actor: actor)
}
