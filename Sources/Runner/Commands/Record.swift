import ArgumentParser
import Foundation
import Logging
import Pipeline
import Stages
import Transport

struct Record: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Capture a live integration's exchanges into a recording, secrets scrubbed.",
        discussion: """
        Runs the source's collection against the live API once and writes every exchange to \
        DIR/<kind>.jsonl (mode 0600): no request header (credentials and signatures live there), \
        credential query parameters masked, the integration's secrets replaced wherever they appear. \
        Nothing is stored. Replay it offline with `pipeline integrations add --recording FILE`, or \
        hand it to support so that a finding can be reproduced.
        """)
    @Option(name: .long, help: "Organization id.") var org: String
    @Option(name: .long, help: "Integration kind.") var kind: String
    @Option(name: .long, help: "Folder to write the recording into.") var out: String
    @Option(name: .long, help: "Where definitions declaring http sources are.") var pipelines = "pipelines"
    @OptionGroup var backends: BackendOptions
    @OptionGroup var actorOption: ActorOption

    func run() async throws {
        do {
            let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                      permission: .manageIntegrations, what: "record integrations")
            let stored = try await context.store.organization(context.organization).map { IntegrationTransports.withEnvironment($0) }
            let declared = stored?.integrations[kind]?["type"] == "http"
                ? Integrations.TestIntegration.declarations(of: kind, in: pipelines) : []
            guard let organization = stored, organization.integrations[kind] != nil,
                  let collector = (BuiltIn.collectors + declared.map { HTTPSourceCollector($0) }).first(where: { $0.source == kind }) else {
                throw PipelineError(.invalidInput, "\(context.organization) has no \(quotedForMessage(kind)) integration")
            }
            guard organization.integrations[kind]?["recording"] == nil else {
                throw PipelineError(.invalidInput, "the \(kind) integration of \(context.organization) replays a recording already; connect it live to record")
            }
            let folder = URL(fileURLWithPath: out)
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            } catch {
                throw PipelineError(.invalidInput, "cannot create \(out): \(error.localizedDescription)")
            }
            let live = try await IntegrationTransports(store: context.store, backends: backends, declared: declared).live(kind, of: organization)
            let file = folder.appendingPathComponent("\(kind).jsonl")
            let recorder = try RecordingTransport(base: live.transport, file: file, secrets: live.secrets, rewrites: live.rewrites)
            let transport = ResilientTransport(base: recorder, retry: RetryPolicy(), timeout: .seconds(60))
            let counter = EventCounter()
            let collect = CollectContext(transport: transport, concurrency: 8, asOf: Date(), freshFor: .seconds(86_400),
                                         logger: Logger(label: "lightsail.record"))
            // What was recorded is kept even when the source fails (credentials refused is worth
            // reproducing too).
            var failure: (any Error)?
            do {
                try await collector.collect(for: organization, context: collect) { counter.add($0) }
            } catch {
                failure = error
            }
            try recorder.close()
            print("\(context.organization): recorded \(recorder.exchanges) exchanges of \(kind) (\(counter.evidence) evidence items, \(counter.failures) not collected) to \(file.path)"
                  + (failure == nil ? "" : "; the source failed"))
            if let failure { throw failure }
        } catch {
            throw report(error)
        }
    }
}

final class EventCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts = (evidence: 0, failures: 0)
    func add(_ event: CollectEvent) {
        lock.withLock {
            if case .evidence = event { counts.evidence += 1 } else { counts.failures += 1 }
        }
    }
    var evidence: Int { lock.withLock { counts.evidence } }
    var failures: Int { lock.withLock { counts.failures } }
}
