import Foundation
import Logging
import Pipeline
import PipelineTesting
import Stages
import Transport

let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let fixturesRoot = projectRoot.appendingPathComponent("fixtures/orgs")
let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Reference")
let asOf = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z

func temporaryDirectory() throws -> URL { try ExternalTool.temporaryDirectory() }

/// The demo organizations' GitHub accounts (as their organization.yml names them).
let demoAccounts = ["acme": "acme-corp", "globex": "globex", "initech": "initech"]

/// An answer as a collector emits it: the evidence and its body.
struct Answer {
    let evidence: Evidence
    let body: Data
    var id: String { evidence.id }
}

/// What a collection run gave: the index checks read, and every body by evidence id.
struct Collected {
    let organization: Organization
    let index: EvidenceIndex
    let bodies: [String: Data]
}

/// Collects a demo organization's GitHub evidence through the replay transport, reading every
/// answer through the built-in checks as the executor does.
func collect(_ org: String, recording: String? = nil) async throws -> Collected {
    let organization = Organization(id: try OrganizationID(org), name: org,
                                    integrations: ["github": ["account": demoAccounts[org] ?? org]])
    let file = recording ?? fixturesRoot.appendingPathComponent("\(org)/github.jsonl").path
    let transport = ResilientTransport(base: try await ReplayTransport.open(recording: file),
                                       retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)),
                                       timeout: .seconds(5))
    let context = CollectContext(transport: transport, concurrency: 4, asOf: asOf, freshFor: .seconds(3600),
                                 logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    let events = EventBox()
    do {
        try await GitHubCollector().collect(for: organization, context: context) { await events.add($0) }
    } catch {
        // As the executor does: a source that fails as a whole fails all its evidence.
        await events.add(.failure(CollectionFailure(source: "github", operation: "*", resource: org, reason: "\(error)")))
    }
    var bodies: [String: Data] = [:]
    var answers: [Answer] = []
    var failures: [CollectionFailure] = []
    for event in await events.events {
        switch event {
        case .evidence(let evidence, let body):
            bodies[evidence.id] = body
            answers.append(Answer(evidence: evidence, body: body))
        case .failure(let failure):
            failures.append(failure)
        }
    }
    return Collected(organization: organization, index: index(answers, failures: failures), bodies: bodies)
}

actor EventBox {
    var events: [CollectEvent] = []
    func add(_ event: CollectEvent) { events.append(event) }
}

/// The index the executor builds: each answer read once through the validator.
func index(_ items: [Answer], failures: [CollectionFailure] = [], validator: CheckValidator = CheckValidator(catalog: RepositoryCatalog.shared)) -> EvidenceIndex {
    var index = EvidenceIndex()
    for item in items { index.add(item.evidence, facts: validator.facts(of: item.evidence, body: item.body)) }
    for failure in failures { index.add(failure) }
    return index
}

/// Evidence with a JSON body, as the collector would make it.
func githubEvidence(_ operation: String, resource: String, status: Int = 200, json: String,
                    org: String = "acme") -> Answer {
    let body = Data(json.utf8)
    let evidence = try! EvidenceFactory.make(organization: try! OrganizationID(org), source: "github", operation: operation,
                                             resource: resource, request: "GET /\(resource)", status: status,
                                             mediaType: "application/json", body: body, collectedAt: asOf,
                                             freshFor: .seconds(3600))
    return Answer(evidence: evidence, body: body)
}
