import Foundation
import Logging
import Pipeline
import Stages

let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let fixturesRoot = projectRoot.appendingPathComponent("fixtures/orgs")
let sharedReference = projectRoot.deletingLastPathComponent().appendingPathComponent("shared/reference")
let asOf = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lightsail-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Collects a fixture organization's GitHub evidence through the replay transport.
func collect(_ org: String, recording: String? = nil) async throws -> (Organization, EvidenceIndex) {
    let directory = FixtureOrganizations(root: fixturesRoot)
    let organization = try await directory.organization(try OrganizationID(org))
    let file = try recording ?? directory.recording(for: "github", of: organization)
    let transport = ResilientTransport(base: try ReplayTransport(recording: file),
                                       retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)),
                                       timeout: .seconds(5))
    let context = CollectContext(transport: transport, concurrency: 4, asOf: asOf, freshFor: .seconds(3600),
                                 logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    let events = EventBox()
    try await GitHubCollector().collect(for: organization, context: context) { await events.add($0) }
    return (organization, EvidenceIndex(await events.events))
}

actor EventBox {
    var events: [CollectEvent] = []
    func add(_ event: CollectEvent) { events.append(event) }
}

/// Evidence with a JSON body, as the collector would make it.
func githubEvidence(_ operation: String, resource: String, status: Int = 200, json: String,
                    org: String = "acme") -> Evidence {
    EvidenceFactory.make(organization: try! OrganizationID(org), source: "github", operation: operation,
                         resource: resource, request: "GET /\(resource)", status: status,
                         mediaType: "application/json", body: Data(json.utf8), collectedAt: asOf,
                         freshFor: .seconds(3600))
}
