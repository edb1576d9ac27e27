import Foundation
import Logging
import Pipeline
import PipelineTesting
import Testing

func evidence(_ n: Int, org: OrganizationID) -> (Evidence, Data) {
    let body = Data("{\"n\":\(n)}".utf8)
    return (Evidence(id: String(format: "%064d", n), organizationID: org, source: "fake", operation: "items/get",
                     resource: "item-\(n)", request: "GET /items/\(n)", status: 200, collectedAt: Date(timeIntervalSince1970: 0),
                     freshUntil: Date(timeIntervalSince1970: 86_400), sha256: String(repeating: "0", count: 64),
                     mediaType: "application/json", size: body.count), body)
}

/// Emits `count` items; after the first `gate` items waits until the store has seen a batch,
/// which only happens if evidence flows on before collection ends.
struct StreamingCollector: EvidenceCollector {
    func probe(_ organization: Organization, transport: any HTTPTransport) async throws -> String { "" }
    let source = "fake"
    let count: Int
    let gate: Int
    let store: InMemoryEvidenceStore
    let hang: Bool

    func collect(for organization: Organization, context: CollectContext,
                 emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        for n in 0..<count {
            if n == gate {
                // A liveness guard, not a timing test: a loaded machine may take long to store a batch.
                let deadline = ContinuousClock.now + .seconds(120)
                while await store.batches.isEmpty {
                    guard ContinuousClock.now < deadline else { throw PipelineError(.transport, "store never saw a batch") }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            let (item, body) = evidence(n, org: organization.id)
            await emit(.evidence(item, body: body))
        }
        if hang { try await Task.sleep(for: .seconds(60)) }
    }
}

struct CountingValidator: Validator {
    func facts(of evidence: Evidence, body: Data) -> EvidenceFacts? { .value(.number(Double(body.count))) }
    func evaluate(_ evidence: EvidenceIndex, frameworks: [String], organization: Organization) -> [CheckResult] {
        [CheckResult(checkID: "fake.count", title: "count", controls: [ControlRef(framework: "soc2", id: "CC1.1")],
                     status: evidence.all.isEmpty ? .notVerified : .pass, reason: "\(evidence.all.count) items",
                     evidenceIDs: evidence.all.map(\.id))]
    }
}

struct SimpleScorer: Scorer {
    func score(_ results: [CheckResult], frameworks: [String]) -> ScoreSummary {
        ScoreSummary(frameworks: frameworks.map { framework in
            FrameworkScore(framework: framework, controls: results.map {
                ControlStatus(control: ControlRef(framework: framework, id: "CC1.1"), title: "t", status: $0.status,
                              checkIDs: [$0.checkID], evidenceIDs: $0.evidenceIDs)
            })
        })
    }
}

struct FakeRenderer: ReportRenderer {
    func render(_ input: ReportInput, options: RenderOptions, objects: any ObjectStore, scratch: URL) async throws
        -> RenderedExport {
        let file = scratch.appendingPathComponent("report.pdf")
        try Data("pdf".utf8).write(to: file)
        return RenderedExport(id: "exp-1", files: [.init(kind: .pdf, key: "\(input.organization.id)/exports/exp-1.pdf",
                                                         file: file, contentType: "application/pdf", sha256: "x", size: 3)])
    }
}

struct NoTransport: HTTPTransport {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse { HTTPResponse(status: 500) }
}

@Suite struct PipelineExecutorTests {
    func definition(batchSize: Int = 5) throws -> PipelineDefinition {
        let yaml = """
        name: report
        description: d
        stages:
          - type: collect
            sources: [fake]
          - type: validate
            frameworks: [soc2]
          - type: store
            batch_size: \(batchSize)
          - type: score
            frameworks: [soc2]
          - type: render
            outputs: [pdf]
        """
        let result = DefinitionLoader(vocabulary: Vocabulary(sources: ["fake"], frameworks: ["soc2"]))
            .load(text: yaml, file: "report.yml")
        return try #require(result.definition, "\(result.diagnostics)")
    }

    func context(_ store: any EvidenceStore, _ objects: any ObjectStore) throws -> RunContext {
        let org = Organization(id: try OrganizationID("acme"), name: "Acme", integrations: [:])
        return RunContext(run: RunRecord(id: "run-1", organizationID: org.id, pipeline: "report",
                                         asOf: Date(timeIntervalSince1970: 1_800_000_000), actor: "test"),
                          organization: org, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                          store: store, objects: objects, scratch: try ExternalTool.temporaryDirectory())
    }

    func stages(_ collector: any EvidenceCollector) -> StageSet {
        StageSet(collectors: [collector], transport: { _, _ in NoTransport() }, validator: CountingValidator(),
                 scorer: SimpleScorer(), renderer: FakeRenderer())
    }

    @Test func evidenceIsStoredWhileCollectionIsStillGoingOn() async throws {
        let store = InMemoryEvidenceStore()
        let objects = InMemoryObjectStore()
        let collector = StreamingCollector(count: 12, gate: 5, store: store, hang: false)
        let outcome = try await PipelineExecutor(definition: try definition(batchSize: 5), stages: stages(collector))
            .run(try context(store, objects))
        #expect(outcome.evidenceCollected == 12)
        #expect(outcome.evidenceNew == 12)
        #expect(await store.batches.map(\.count) == [5, 5, 2])
        #expect(outcome.results.first?.status == .pass)
        #expect(outcome.export?.artifacts.first?.location == "mem://acme/exports/exp-1.pdf")
        #expect(await objects.objects.keys.contains("acme/evidence/\(String(format: "%064d", 3))/original.json"))
        #expect(await objects.objects.keys.contains("acme/evidence/\(String(format: "%064d", 3))/metadata.json"))
        #expect(await store.finished == [.succeeded])
    }

    @Test func cancellingARunStopsItAndRecordsItAsCancelled() async throws {
        let store = InMemoryEvidenceStore()
        let objects = InMemoryObjectStore()
        let collector = StreamingCollector(count: 3, gate: 99, store: store, hang: true)
        let executor = PipelineExecutor(definition: try definition(batchSize: 100), stages: stages(collector))
        let ctx = try context(store, objects)
        let task = Task { try await executor.run(ctx) }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let start = ContinuousClock.now
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        // Well before the collector's minute-long hang ends (no tight bound: machines are shared).
        #expect(ContinuousClock.now - start < .seconds(30))
        #expect(await store.finished == [.cancelled])
        #expect(await store.resultsStored == 0)
        #expect(await store.exports.isEmpty)
        #expect(await objects.objects.keys.allSatisfy { !$0.contains("/exports/") })
    }

    @Test func aSourceWithoutACollectorFailsTheRunBeforeAnythingIsWritten() async throws {
        let store = InMemoryEvidenceStore()
        let executor = PipelineExecutor(definition: try definition(), stages: StageSet(
            collectors: [], transport: { _, _ in NoTransport() }, validator: CountingValidator(),
            scorer: SimpleScorer(), renderer: FakeRenderer()))
        await #expect(throws: PipelineError.self) { _ = try await executor.run(try context(store, InMemoryObjectStore())) }
        #expect(await store.finished.isEmpty)
    }
}

/// Emits `count` answers of `size` bytes as fast as it is let, counting what it sent.
struct FloodingCollector: EvidenceCollector {
    func probe(_ organization: Organization, transport: any HTTPTransport) async throws -> String { "" }
    let source = "fake"
    let count: Int
    let size: Int
    let sent: Sent

    final class Sent: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func increment() { lock.withLock { value += 1 } }
        var count: Int { lock.withLock { value } }
    }

    func collect(for organization: Organization, context: CollectContext,
                 emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        for n in 0..<count {
            var (item, _) = evidence(n, org: organization.id)
            let body = Data(repeating: UInt8(n % 251), count: size)
            item = Evidence(id: item.id, organizationID: item.organizationID, source: item.source, operation: item.operation,
                            resource: item.resource, request: item.request, status: item.status, collectedAt: item.collectedAt,
                            freshUntil: item.freshUntil, sha256: item.sha256, mediaType: item.mediaType, size: size)
            await emit(.evidence(item, body: body))
            sent.increment()
        }
    }
}

@Suite struct ExecutorBackPressureTests {
    func definition() throws -> PipelineDefinition {
        let yaml = """
        name: flood
        description: d
        stages:
          - type: collect
            sources: [fake]
          - type: store
            batch_size: 10
        """
        let result = DefinitionLoader(vocabulary: Vocabulary(sources: ["fake"], frameworks: ["soc2"])).load(text: yaml, file: "flood.yml")
        return try #require(result.definition, "\(result.diagnostics)")
    }

    func context(_ store: any EvidenceStore, _ objects: any ObjectStore) throws -> RunContext {
        let org = Organization(id: try OrganizationID("acme"), name: "Acme", integrations: [:])
        return RunContext(run: RunRecord(id: "run-1", organizationID: org.id, pipeline: "flood",
                                         asOf: Date(timeIntervalSince1970: 1_800_000_000), actor: "test"),
                          organization: org, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                          store: store, objects: objects, scratch: try ExternalTool.temporaryDirectory())
    }

    @Test func aFastCollectorWaitsForSlowStorageInsteadOfFillingMemory() async throws {
        let store = InMemoryEvidenceStore()
        let objects = InMemoryObjectStore()
        await objects.slowDown(.milliseconds(3))
        let sent = FloodingCollector.Sent()
        var executor = PipelineExecutor(definition: try definition(), stages: StageSet(
            collectors: [FloodingCollector(count: 60, size: 1 << 20, sent: sent)], transport: { _, _ in NoTransport() },
            validator: CountingValidator(), scorer: SimpleScorer(), renderer: FakeRenderer()))
        executor.bodyBudget = 4 << 20
        executor.writeWidth = 4
        let run = Task { try await executor.run(try context(store, objects)) }
        // However far the collector gets ahead, it is never more than the stream's room (4 MB),
        // the writes in flight (4 MB) and the answers in hand ahead of the stored ones.
        var widest = 0
        while !(await store.finished.contains(.succeeded)) {
            let stored = await objects.puts / 2  // original and metadata
            widest = max(widest, sent.count - stored)
            try await Task.sleep(for: .milliseconds(1))
        }
        _ = try await run.value
        #expect(widest <= 11, "the collector ran \(widest) answers of 1 MB ahead of storage")
        #expect(await store.ids.count == 60)
    }

    @Test func eachBatchOfRowsCommitsOnlyAfterItsObjectsAreDurable() async throws {
        let store = InMemoryEvidenceStore()
        let objects = InMemoryObjectStore()
        await store.beforeStoringEvidence { batch in
            let unsynced = await objects.unsynced
            #expect(batch.allSatisfy { !unsynced.contains($0.originalKey) && !unsynced.contains($0.metadataKey) })
        }
        let sent = FloodingCollector.Sent()
        let executor = PipelineExecutor(definition: try definition(), stages: StageSet(
            collectors: [FloodingCollector(count: 25, size: 100, sent: sent)], transport: { _, _ in NoTransport() },
            validator: CountingValidator(), scorer: SimpleScorer(), renderer: FakeRenderer()))
        _ = try await executor.run(try context(store, objects))
        #expect(await store.batches.map(\.count) == [10, 10, 5])
        #expect(await objects.syncs >= 3)
        #expect(await objects.objects.count == 50)
    }
}
