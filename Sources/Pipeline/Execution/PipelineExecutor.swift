import Foundation
import Logging

/// The adapters a run uses, wired by the runner.
public struct StageSet: Sendable {
    public let collectors: [String: any EvidenceCollector]
    /// The transport a source of an organization talks through (live or replay).
    public let transport: @Sendable (_ source: String, _ organization: Organization) throws -> any HTTPTransport
    public let validator: any Validator
    public let scorer: any Scorer
    public let renderer: any ReportRenderer

    public init(collectors: [any EvidenceCollector],
                transport: @escaping @Sendable (String, Organization) throws -> any HTTPTransport,
                validator: any Validator, scorer: any Scorer, renderer: any ReportRenderer) {
        self.collectors = Dictionary(collectors.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        self.transport = transport
        self.validator = validator
        self.scorer = scorer
        self.renderer = renderer
    }
}

/// One organization's run: its id, clock and the stores it writes to.
public struct RunContext: Sendable {
    public let run: RunRecord
    public let organization: Organization
    public let logger: Logger
    public let store: any EvidenceStore
    public let objects: any ObjectStore
    public let progress: @Sendable (ProgressEvent) -> Void
    public let sleeper: Sleeper

    public init(run: RunRecord, organization: Organization, logger: Logger, store: any EvidenceStore,
                objects: any ObjectStore, progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in },
                sleeper: Sleeper = .continuous) {
        self.run = run
        self.organization = organization
        self.logger = logger
        self.store = store
        self.objects = objects
        self.progress = progress
        self.sleeper = sleeper
    }
}

public struct RunOutcome: Sendable {
    public let run: RunRecord
    public let evidenceCollected: Int
    public let evidenceNew: Int
    public let failures: [CollectionFailure]
    public let results: [CheckResult]
    public let scores: ScoreSummary?
    public let export: ExportRecord?
    /// Shared download links by object key, where the storage makes them.
    public var links: [String: URL] = [:]

    public func withLinks(_ links: [String: URL]) -> RunOutcome {
        var copy = self
        copy.links = links
        return copy
    }
}

/// Runs a definition's stages for one organization: collect streams evidence into store and
/// validate as it arrives; then score, then render. Every write of a stage is one transaction,
/// every object is written whole, so a killed run can be run again.
public struct PipelineExecutor: Sendable {
    public let definition: PipelineDefinition
    public let stages: StageSet

    public init(definition: PipelineDefinition, stages: StageSet) {
        self.definition = definition
        self.stages = stages
    }

    public func run(_ context: RunContext) async throws -> RunOutcome {
        let org = context.organization
        var logger = context.logger
        logger[metadataKey: "run.id"] = "\(context.run.id)"
        logger[metadataKey: "org.id"] = "\(org.id)"
        logger[metadataKey: "pipeline"] = "\(definition.name)"
        // Resolve every source's transport before anything is written: a missing or corrupt
        // recording, or an unconfigured integration, fails the run up front with its reason.
        var transports: [String: any HTTPTransport] = [:]
        for source in definition.collect?.sources ?? [] {
            guard stages.collectors[source] != nil else {
                throw PipelineError(.configuration, "no collector for source '\(source)' is built in")
            }
            transports[source] = try stages.transport(source, org)
        }
        let persist = definition.store != nil
        if persist { try await context.store.beginRun(context.run) }
        logger.info("run started")
        do {
            let outcome = try await runStages(context, transports: transports, logger: logger)
            if persist { try await context.store.finishRun(context.run, status: .succeeded, message: nil) }
            logger.info("run finished", metadata: ["evidence.new": "\(outcome.evidenceNew)",
                                                   "evidence.collected": "\(outcome.evidenceCollected)"])
            return outcome
        } catch {
            let cancelled = error is CancellationError || Task.isCancelled
            logger.error("run \(cancelled ? "cancelled" : "failed")", metadata: ["error": "\(error)"])
            if persist {
                // Recording the end must happen even when the run task is cancelled.
                let store = context.store
                let run = context.run
                let message = String(describing: error)
                try? await Task.detached {
                    try await store.finishRun(run, status: cancelled ? .cancelled : .failed, message: message)
                }.value
            }
            throw error
        }
    }

    private func runStages(_ context: RunContext, transports: [String: any HTTPTransport],
                           logger: Logger) async throws -> RunOutcome {
        let org = context.organization
        var index = EvidenceIndex()
        var newEvidence = 0

        if let collect = definition.collect {
            context.progress(.stageStarted(org.id, .collect))
            let (stream, continuation) = AsyncStream<CollectEvent>.makeStream()
            // Consume as evidence arrives: store in batches while collection goes on. The
            // producer is a child of this group: an error on either side cancels the other.
            let batchSize = definition.store?.batchSize ?? 100
            var batch: [Evidence] = []
            var perSource: [String: Int] = [:]
            var persisted = Set<String>()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { continuation.finish() }
                    try await collectAll(collect, transports: transports, context: context, logger: logger) { event in
                        continuation.yield(event)
                    }
                }
                for await event in stream {
                    index.add(event)
                    guard case .evidence(let evidence) = event else { continue }
                    perSource[evidence.source, default: 0] += 1
                    context.progress(.evidenceCollected(org.id, source: evidence.source,
                                                        count: perSource[evidence.source]!))
                    // The same evidence seen twice in a run is stored and linked once.
                    guard persisted.insert(evidence.id).inserted else { continue }
                    batch.append(evidence)
                    if batch.count >= batchSize, definition.store != nil {
                        newEvidence += try await persistEvidence(batch, context)
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                try await group.waitForAll()
            }
            try Task.checkCancellation()
            if definition.store != nil, !batch.isEmpty {
                newEvidence += try await persistEvidence(batch, context)
            }
            context.progress(.stageFinished(org.id, .collect, detail:
                "\(index.all.count) evidence items, \(index.failures.count) not collected"))
            if definition.store != nil {
                context.progress(.stageFinished(org.id, .store, detail: "\(newEvidence) new evidence items"))
            }
        }

        var results: [CheckResult] = []
        if let validate = definition.validate {
            context.progress(.stageStarted(org.id, .validate))
            results = stages.validator.evaluate(index, frameworks: validate.frameworks, organization: org)
            let failing = results.count { $0.status == .fail }
            let unverified = results.count { $0.status == .notVerified }
            context.progress(.stageFinished(org.id, .validate, detail:
                "\(results.count) checks, \(failing) failing, \(unverified) not verified"))
        }

        var scores: ScoreSummary?
        if let score = definition.score {
            context.progress(.stageStarted(org.id, .score))
            let summary = stages.scorer.score(results, frameworks: score.frameworks)
            scores = summary
            context.progress(.stageFinished(org.id, .score, detail: "overall \(summary.percentText)"))
        }
        try Task.checkCancellation()
        if definition.store != nil {
            try await context.store.storeResults(results, scores: scores ?? ScoreSummary(frameworks: []), run: context.run)
        }

        var export: ExportRecord?
        if let render = definition.render, let scores {
            context.progress(.stageStarted(org.id, .render))
            let periodStart = context.run.asOf.addingTimeInterval(-Double(render.periodDays) * 86_400)
            let input = ReportInput(organization: org, pipeline: definition.name, asOf: context.run.asOf,
                                    periodStart: periodStart, results: results, scores: scores,
                                    evidence: index.all, failures: index.failures)
            let rendered = try await stages.renderer.render(input, options: render)
            try Task.checkCancellation()
            var artifacts: [Artifact] = []
            for file in rendered.files {
                try validateObjectKey(file.key, organization: org.id)
                try await context.objects.put(file.key, data: file.data, contentType: file.contentType, ifAbsent: true)
                artifacts.append(Artifact(kind: file.kind, key: file.key, sha256: file.sha256, size: file.data.count,
                                          location: context.objects.location(of: file.key)))
            }
            let record = ExportRecord(id: rendered.id, organizationID: org.id, artifacts: artifacts)
            if definition.store != nil { try await context.store.storeExport(record, run: context.run) }
            export = record
            context.progress(.stageFinished(org.id, .render, detail: "export \(rendered.id)"))
        }

        return RunOutcome(run: context.run, evidenceCollected: index.all.count, evidenceNew: newEvidence,
                          failures: index.failures, results: results, scores: scores, export: export)
    }

    /// Runs every source of the stage, `sourceConcurrency` at once. A source that cannot start is
    /// recorded as a failure of all its evidence, never as a pass.
    private func collectAll(_ options: CollectOptions, transports: [String: any HTTPTransport],
                            context: RunContext, logger: Logger,
                            emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        let org = context.organization
        let stages = self.stages
        let sleeper = context.sleeper
        try await forEachConcurrently(options.sources, width: options.sourceConcurrency) { source in
            var sourceLogger = logger
            sourceLogger[metadataKey: "source"] = "\(source)"
            guard let collector = stages.collectors[source], let base = transports[source] else { return }
            do {
                let transport = ResilientTransport(base: base, retry: options.retry, timeout: options.timeout,
                                                   sleeper: sleeper)
                let collectContext = CollectContext(transport: transport, concurrency: options.concurrency,
                                                    asOf: context.run.asOf, freshFor: options.freshFor,
                                                    logger: sourceLogger)
                try await collector.collect(for: org, context: collectContext, emit: emit)
            } catch let error as CancellationError {
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                sourceLogger.warning("source failed", metadata: ["error": "\(error)"])
                await emit(.failure(CollectionFailure(source: source, operation: "*", resource: org.id.rawValue,
                                                      reason: "\(error)")))
            }
        }
    }

    private func persistEvidence(_ batch: [Evidence], _ context: RunContext) async throws -> Int {
        // Objects first, then rows: a row never points at an object that is not there.
        for evidence in batch {
            try validateObjectKey(evidence.originalKey, organization: context.organization.id)
            try await context.objects.put(evidence.originalKey, data: evidence.body,
                                          contentType: evidence.mediaType, ifAbsent: true)
            try await context.objects.put(evidence.metadataKey, data: evidence.metadata.canonicalJSON(),
                                          contentType: "application/json", ifAbsent: true)
        }
        return try await context.store.storeEvidence(batch, run: context.run)
    }
}
