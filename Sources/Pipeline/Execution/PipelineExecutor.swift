import Foundation
import Logging

/// The adapters a run uses, wired by the runner.
public struct StageSet: Sendable {
    public let collectors: [String: any EvidenceCollector]
    /// The transport a source of an organization talks through (live or replay), or nil when the
    /// organization has not connected that source. Throws when the integration is connected but
    /// unusable (credentials that do not open, a corrupt recording).
    public let transport: @Sendable (_ source: String, _ organization: Organization) async throws -> (any HTTPTransport)?
    public let validator: any Validator
    public let scorer: any Scorer
    public let renderer: any ReportRenderer
    /// Sends the notify stage's notices; nil sends none.
    public let notifier: (any Notifier)?

    public init(collectors: [any EvidenceCollector],
                transport: @escaping @Sendable (String, Organization) async throws -> (any HTTPTransport)?,
                validator: any Validator, scorer: any Scorer, renderer: any ReportRenderer, notifier: (any Notifier)? = nil) {
        self.collectors = Dictionary(collectors.map { ($0.source, $0) }, uniquingKeysWith: { a, _ in a })
        self.transport = transport
        self.validator = validator
        self.scorer = scorer
        self.renderer = renderer
        self.notifier = notifier
    }
}

/// One organization's run: its id, clock, the stores it writes to, and a scratch folder of its own
/// for the files it makes (the report and bundle before they are stored).
public struct RunContext: Sendable {
    public let run: RunRecord
    public let organization: Organization
    public let logger: Logger
    public let store: any EvidenceStore
    public let objects: any ObjectStore
    public let scratch: URL
    public let progress: @Sendable (ProgressEvent) -> Void
    public let sleeper: Sleeper

    public init(run: RunRecord, organization: Organization, logger: Logger, store: any EvidenceStore,
                objects: any ObjectStore, scratch: URL, progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in },
                sleeper: Sleeper = .continuous) {
        self.run = run
        self.organization = organization
        self.logger = logger
        self.store = store
        self.objects = objects
        self.scratch = scratch
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
    /// Sources that failed as a whole (credentials refused or unusable, a recording that cannot be
    /// read): source → why. Their checks are not verified; the other sources ran.
    public let sourceErrors: [String: String]
    /// Sources of the definition the organization has not connected.
    public let unconnected: [String]
    /// How long each stage took, in the order they ran (collect includes storing what it collected).
    public let timings: [(stage: StageKind, duration: Duration)]
    /// What changed since the previous run of the pipeline (nil without a validate stage).
    public var changes: RunChanges?
    /// Answers this run could not collect, taken from an earlier run while still fresh.
    public var reused: [String] = []
    /// Shared download links by object key, where the storage makes them.
    public var links: [String: URL] = [:]

    /// Evidence that could not be collected: every failure but the one standing for a source the
    /// organization has not connected (reported as such).
    public var notCollected: Int {
        failures.count { !($0.operation == "*" && unconnected.contains($0.source)) }
    }

    public func withLinks(_ links: [String: URL]) -> RunOutcome {
        var copy = self
        copy.links = links
        return copy
    }
}

/// Runs a definition's stages for one organization. Collectors stream evidence through a bounded
/// channel; each answer passes once through the checks' reading (which keeps only the fields they
/// need) and goes to the object store, a few at a time, and is then let go; each batch of rows
/// commits after its objects are durable. Then validate, score and render. Every write of a stage
/// is one transaction, every object is written whole, so a killed run can be run again.
public struct PipelineExecutor: Sendable {
    public let definition: PipelineDefinition
    public let stages: StageSet
    /// Objects written at once while collection streams in.
    public var writeWidth = 8
    /// Bytes of answers waiting between collectors and storage, and being written, at most (one
    /// larger answer still passes, alone).
    public var bodyBudget = 16 << 20
    /// What the report names as its origin (the runner reads the files).
    public var provenance: Provenance
    /// The catalog's words for each check (severity, remediation), for the report.
    public var catalog: Catalog?

    public init(definition: PipelineDefinition, stages: StageSet, catalog: Catalog? = nil, provenance: Provenance = .unknown) {
        self.definition = definition
        self.stages = stages
        self.catalog = catalog
        self.provenance = provenance
    }

    public func run(_ context: RunContext) async throws -> RunOutcome {
        let org = context.organization
        var logger = context.logger
        logger[metadataKey: "run.id"] = "\(context.run.id)"
        logger[metadataKey: "org.id"] = "\(org.id)"
        logger[metadataKey: "pipeline"] = "\(definition.name)"
        for source in definition.collect?.sources ?? [] where stages.collectors[source] == nil {
            throw PipelineError(.configuration, "no collector for source '\(source)' is built in")
        }
        let persist = definition.store != nil
        if persist { try await context.store.beginRun(context.run) }
        logger.info("run started")
        // Which stage was running, for the line that says the run failed.
        let cursor = StageCursor()
        let progress = context.progress
        let tracked = RunContext(run: context.run, organization: org, logger: context.logger, store: context.store,
                                 objects: context.objects, scratch: context.scratch, progress: { event in
                                     if case .stageStarted(_, let stage) = event { cursor.set(stage) }
                                     progress(event)
                                 }, sleeper: context.sleeper)
        do {
            let outcome = try await runStages(tracked, logger: logger)
            if persist {
                // Each connected integration's outcome, for `pipeline integrations status`.
                let now = Date()
                for source in definition.collect?.sources ?? [] where !outcome.unconnected.contains(source) {
                    try await context.store.recordIntegrationOutcome(source, of: org.id, run: context.run.id, at: now,
                                                                     error: outcome.sourceErrors[source])
                }
                try await context.store.finishRun(context.run, status: .succeeded, message: nil)
            }
            logger.info("run finished", metadata: ["evidence.new": "\(outcome.evidenceNew)",
                                                   "evidence.collected": "\(outcome.evidenceCollected)"])
            if let notify = definition.notify {
                await send(RunNotice.events(of: outcome, wanted: notify.on), context, notify, logger: logger)
            }
            return outcome
        } catch {
            let cancelled = error is CancellationError || Task.isCancelled
            logger.error("run \(cancelled ? "cancelled" : "failed")",
                         metadata: ["error": "\(error)", "stage": "\(cursor.current?.rawValue ?? "start")"])
            if persist {
                // Recording the end must happen even when the run task is cancelled.
                let store = context.store
                let run = context.run
                let message = String(describing: error)
                try? await Task.detached {
                    try await store.finishRun(run, status: cancelled ? .cancelled : .failed, message: message)
                }.value
            }
            if !cancelled, let notify = definition.notify, notify.on.contains(.runFailed) {
                let reason = (error as? PipelineError)?.message ?? String(describing: error)
                await send([RunNotice.Event(kind: .runFailed, summary: "the run failed: \(reason)")], context, notify, logger: logger)
            }
            throw error
        }
    }

    /// The notify stage: sends the run's events, if any. A notice that cannot be sent is logged;
    /// it never changes the run's outcome.
    private func send(_ events: [RunNotice.Event], _ context: RunContext, _ options: NotifyOptions, logger: Logger) async {
        guard !events.isEmpty, let notifier = stages.notifier else { return }
        let notice = RunNotice(organizationID: context.organization.id.rawValue, organizationName: context.organization.name,
                               pipeline: definition.name, runID: context.run.id, asOf: context.run.asOf, events: events)
        var logger = logger
        logger[metadataKey: "stage"] = "notify"
        do {
            // A failed run's task may be cancelled; the notice still goes.
            try await Task { try await notifier.send(notice, options: options) }.value
            logger.info("notified", metadata: ["events": "\(events.map(\.kind.rawValue).joined(separator: ","))"])
        } catch {
            logger.warning("could not notify", metadata: ["error": "\(error)"])
        }
    }

    /// What collection gathered: the index the checks read, and the counts the summary prints.
    struct Collected {
        var index = EvidenceIndex()
        var received = 0
        var new = 0
    }

    private func runStages(_ context: RunContext, logger: Logger) async throws -> RunOutcome {
        let org = context.organization
        var collected = Collected()
        let sources = SourceOutcomes()
        var timings: [(StageKind, Duration)] = []
        let clock = ContinuousClock()

        if let collect = definition.collect {
            context.progress(.stageStarted(org.id, .collect))
            let started = clock.now
            let channel = BoundedChannel<CollectEvent>(capacity: bodyBudget)
            // The producer is a child of this group: an error on either side cancels the other,
            // and a producer waiting for room stops waiting.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer { channel.finish() }
                    try await collectAll(collect, sources: sources, context: context, logger: logger) { event in
                        try? await channel.send(event, weight: event.weight)
                    }
                }
                try await consume(channel.elements, into: &collected, context: context)
                try await group.waitForAll()
            }
            try Task.checkCancellation()
            timings.append((.collect, clock.now - started))
            context.progress(.stageFinished(org.id, .collect, detail:
                "\(collected.index.all.count) evidence items, \(collected.index.failures.count) not collected"))
            if definition.store != nil {
                context.progress(.stageFinished(org.id, .store, detail: "\(collected.new) new evidence items"))
            }
        }

        // What this run could not collect, taken from the latest earlier run that did while that
        // evidence is fresh; once stale, the failure says when it was collected.
        let failures = collected.index.failures
        var reused: [String] = []
        if definition.validate != nil, failures.contains(where: { $0.operation != "*" }) {
            reused = try await reuseLastCollected(&collected, context: context)
        }

        var results: [CheckResult] = []
        var changes: RunChanges?
        var exceptions: [RiskException] = []
        if let validate = definition.validate {
            context.progress(.stageStarted(org.id, .validate))
            let started = clock.now
            // Manual controls are met by what people uploaded, as of the run's clock.
            collected.index.setClock(context.run.asOf, manualControls: validate.manualControls)
            if validate.manualControls {
                for upload in try await context.store.uploadedEvidence(of: org.id) where upload.evidence.collectedAt <= context.run.asOf {
                    collected.index.add(upload: upload.evidence, supporting: upload.controls)
                }
            }
            results = stages.validator.evaluate(collected.index, frameworks: validate.frameworks, organization: org)
            // Risks the organization accepted, at the run's clock (expired ones say so).
            exceptions = try await context.store.exceptions(of: org.id)
            results = RiskException.apply(exceptions, to: results, at: context.run.asOf)
            // What changed since the organization's previous run of this pipeline.
            let previous = try await context.store.previousResults(of: org.id, pipeline: definition.name, before: context.run.id)
            changes = RunChanges.compute(previous: previous, results: results,
                                         resources: Set(collected.index.all.map { "\($0.source) \($0.resource)" }),
                                         exceptions: exceptions, clock: context.run.asOf)
            timings.append((.validate, clock.now - started))
            let failing = results.count { $0.status == .fail }
            let unverified = results.count { $0.status == .notVerified }
            context.progress(.stageFinished(org.id, .validate, detail:
                "\(results.count) checks, \(failing) failing, \(unverified) not verified"))
        }

        var scores: ScoreSummary?
        if let score = definition.score {
            context.progress(.stageStarted(org.id, .score))
            let started = clock.now
            let summary = stages.scorer.score(results, frameworks: score.frameworks)
            scores = summary
            timings.append((.score, clock.now - started))
            context.progress(.stageFinished(org.id, .score, detail: "overall \(summary.percentText)"))
        }
        try Task.checkCancellation()
        if definition.store != nil {
            let started = clock.now
            try await context.store.storeResults(results, scores: scores ?? ScoreSummary(frameworks: []), run: context.run)
            if let changes { try await context.store.storeChanges(changes, run: context.run) }
            timings.append((.store, clock.now - started))
        }

        var export: ExportRecord?
        if let render = definition.render, let scores {
            context.progress(.stageStarted(org.id, .render))
            let started = clock.now
            let periodStart = context.run.asOf.addingTimeInterval(-Double(render.periodDays) * 86_400)
            let report = try await reportContext(context, exceptions: exceptions, changes: changes, scores: scores)
            let input = ReportInput(organization: org, pipeline: definition.name, asOf: context.run.asOf,
                                    periodStart: periodStart, results: results, scores: scores,
                                    evidence: collected.index.all,
                                    // In a fixed order: sources fail concurrently, the report must not vary with it.
                                    failures: collected.index.failures.sorted {
                                        ($0.source, $0.operation, $0.resource, $0.reason) < ($1.source, $1.operation, $1.resource, $1.reason)
                                    }, context: report)
            let rendered: RenderedExport
            do {
                rendered = try await stages.renderer.render(input, options: render, objects: context.objects, scratch: context.scratch)
            } catch let error as PipelineError where error[.integrity] != nil {
                // Stored evidence that no longer matches its hash is a security event, kept in the audit log.
                try await context.store.audit(AuditEntry(organizationID: org.id, actor: context.run.actor,
                                                         action: "evidence.integrity_failed", entityType: "evidence",
                                                         entityID: error[.evidenceID] ?? "", detail: error.message))
                throw error
            }
            try Task.checkCancellation()
            var artifacts: [Artifact] = []
            for file in rendered.files {
                try validateObjectKey(file.key, organization: org.id)
                try await context.objects.put(file.key, file: file.file, contentType: file.contentType, ifAbsent: true)
                artifacts.append(Artifact(kind: file.kind, key: file.key, sha256: file.sha256, size: file.size,
                                          location: context.objects.location(of: file.key)))
            }
            try await context.objects.sync()
            let record = ExportRecord(id: rendered.id, organizationID: org.id, artifacts: artifacts)
            if definition.store != nil { try await context.store.storeExport(record, run: context.run) }
            export = record
            timings.append((.render, clock.now - started))
            context.progress(.stageFinished(org.id, .render, detail: "export \(rendered.id)"))
        }

        return RunOutcome(run: context.run, evidenceCollected: collected.received, evidenceNew: collected.new,
                          failures: failures, results: results, scores: scores, export: export,
                          sourceErrors: sources.errors, unconnected: sources.unconnected.sorted(), timings: timings,
                          changes: changes, reused: reused)
    }

    /// What the report shows beside the results. Only what came before the run's clock counts (the
    /// export it follows, the score's trend), so running again with the same `--as-of` makes the
    /// same report.
    private func reportContext(_ context: RunContext, exceptions: [RiskException], changes: RunChanges?,
                               scores: ScoreSummary) async throws -> ReportContext {
        let org = context.organization.id
        let asOf = context.run.asOf
        let previous = try await context.store.exports(of: org, before: asOf, limit: 1).first?.link
        var history: [ScoreRecord] = []
        var runAt: [Date: String] = [:]
        for record in try await context.store.scoreHistory(of: org, runs: 60)
        where record.pipeline == definition.name && record.asOf < asOf {
            // One run per clock: the newest of those that ran at the same `--as-of`.
            let run = runAt[record.asOf, default: record.runID]
            runAt[record.asOf] = run
            if run == record.runID { history.append(record) }
        }
        history = scores.frameworks.map { score in
            ScoreRecord(runID: context.run.id, pipeline: definition.name, asOf: asOf, framework: score.framework,
                        points: score.points, possible: score.possible, passed: score.passed, failed: score.failed,
                        notVerified: score.notVerified)
        } + history
        let checks = Dictionary((catalog?.checks ?? []).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return ReportContext(provenance: provenance, previousExport: previous, history: history,
                             exceptions: exceptions, changes: changes, checks: checks)
    }

    /// Replaces each failure (of one operation about one resource, not of a whole source) for which
    /// nothing was collected by what the latest earlier run collected of it, read back from the
    /// object store, while it is fresh (that run's clock plus the evidence's time to live); a
    /// stale or unreadable one leaves the failure, saying when the evidence was collected.
    /// Returns what was reused.
    private func reuseLastCollected(_ collected: inout Collected, context: RunContext) async throws -> [String] {
        let index = collected.index
        var rebuilt = EvidenceIndex()
        for (position, evidence) in index.all.enumerated() { rebuilt.add(evidence, facts: index.facts(at: position)) }
        var reused: [String] = []
        var replaced = Set<String>()
        for failure in index.failures {
            let key = "\(failure.source) \(failure.operation) \(failure.resource)"
            if replaced.contains(key) { continue }
            guard failure.operation != "*", index.evidence(source: failure.source, operation: failure.operation, resource: failure.resource).isEmpty,
                  let last = try await context.store.lastCollected(of: context.organization.id, source: failure.source,
                                                                    operation: failure.operation, resource: failure.resource,
                                                                    before: context.run.asOf),
                  !last.evidence.isEmpty else {
                rebuilt.add(failure)
                continue
            }
            let window = last.evidence.map { $0.freshUntil.timeIntervalSince($0.collectedAt) }.min() ?? 0
            let freshUntil = last.asOf.addingTimeInterval(window)
            if freshUntil > context.run.asOf {
                var items: [(Evidence, EvidenceFacts?)] = []
                for evidence in last.evidence {
                    guard let body = try? await context.objects.get(evidence.originalKey) else { break }
                    items.append((evidence, stages.validator.facts(of: evidence, body: body)))
                }
                if items.count == last.evidence.count {
                    for (evidence, facts) in items { rebuilt.add(evidence, facts: facts) }
                    replaced.insert(key)
                    reused.append("\(key): collected at \(Timestamp.iso8601(last.asOf)), fresh until \(Timestamp.iso8601(freshUntil)) (\(failure.reason))")
                    continue
                }
            }
            let state = freshUntil > context.run.asOf ? "could not be read back" : "went stale at \(Timestamp.iso8601(freshUntil))"
            rebuilt.add(CollectionFailure(source: failure.source, operation: failure.operation, resource: failure.resource,
                                          reason: "\(failure.reason); the last evidence, collected at \(Timestamp.iso8601(last.asOf)), \(state)"))
        }
        collected.index = rebuilt
        return reused
    }

    /// Takes events as they come: every answer once through the checks' reading, then to the
    /// object store with at most `writeWidth` writes in flight (a body is let go once written);
    /// every `batch_size` items, the objects are made durable and the rows commit.
    private func consume(_ events: some AsyncSequence<CollectEvent, Never>, into collected: inout Collected,
                         context: RunContext) async throws {
        let org = context.organization.id
        let persist = definition.store != nil
        let readFacts = definition.validate != nil
        let batchSize = definition.store?.batchSize ?? 100
        let validator = stages.validator
        let objects = context.objects
        var batch: [Evidence] = []
        var perSource: [String: Int] = [:]
        var seen = Set<String>()
        try await withThrowingTaskGroup(of: Int.self) { writes in
            var inFlight = 0
            var bytesInFlight = 0
            for await event in events {
                switch event {
                case .failure(let failure):
                    collected.index.add(failure)
                case .evidence(let evidence, let body):
                    collected.received += 1
                    perSource[evidence.source, default: 0] += 1
                    context.progress(.evidenceCollected(org, source: evidence.source, count: perSource[evidence.source]!))
                    // The same evidence seen twice in a run is kept, stored and linked once.
                    guard seen.insert(evidence.id).inserted else { continue }
                    collected.index.add(evidence, facts: readFacts ? validator.facts(of: evidence, body: body) : nil)
                    guard persist else { continue }
                    try validateObjectKey(evidence.originalKey, organization: org)
                    while inFlight > 0, inFlight >= writeWidth || bytesInFlight + body.count > bodyBudget {
                        bytesInFlight -= try await writes.next() ?? 0
                        inFlight -= 1
                    }
                    writes.addTask {
                        try await Self.putObjects(evidence, body: body, objects: objects)
                        return body.count
                    }
                    inFlight += 1
                    bytesInFlight += body.count
                    batch.append(evidence)
                    if batch.count >= batchSize {
                        try await writes.waitForAll()
                        inFlight = 0
                        bytesInFlight = 0
                        collected.new += try await commit(batch, context)
                        batch.removeAll(keepingCapacity: true)
                    }
                }
            }
            try await writes.waitForAll()
        }
        try Task.checkCancellation()
        if !batch.isEmpty { collected.new += try await commit(batch, context) }
    }

    /// Objects first, then rows: a row never points at an object that is not there, or not durable.
    private func commit(_ batch: [Evidence], _ context: RunContext) async throws -> Int {
        try await context.objects.sync()
        return try await context.store.storeEvidence(batch, run: context.run)
    }

    private static func putObjects(_ evidence: Evidence, body: Data, objects: any ObjectStore) async throws {
        try await objects.put(evidence.originalKey, data: body, contentType: evidence.mediaType, ifAbsent: true)
        try await objects.put(evidence.metadataKey, data: evidence.canonicalJSON(), contentType: "application/json",
                              ifAbsent: true)
    }

    /// How each source ended, as the collectors report it.
    final class SourceOutcomes: @unchecked Sendable {
        private let lock = NSLock()
        private var failed: [String: String] = [:]
        private var notConnected: [String] = []
        func fail(_ source: String, _ reason: String) { lock.withLock { failed[source] = reason } }
        func notConnected(_ source: String) { lock.withLock { notConnected.append(source) } }
        var errors: [String: String] { lock.withLock { failed } }
        var unconnected: [String] { lock.withLock { notConnected } }
    }

    /// Runs every source of the stage, `sourceConcurrency` at once. A source the organization has
    /// not connected, or that cannot start (its credentials refused, its recording unreadable), is
    /// recorded as a failure of all its evidence, never as a pass, and the others run.
    private func collectAll(_ options: CollectOptions, sources: SourceOutcomes,
                            context: RunContext, logger: Logger,
                            emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        let org = context.organization
        let stages = self.stages
        let sleeper = context.sleeper
        try await forEachConcurrently(options.sources, width: options.sourceConcurrency) { source in
            var sourceLogger = logger
            sourceLogger[metadataKey: "source"] = "\(source)"
            sourceLogger[metadataKey: "stage"] = "collect"
            guard let collector = stages.collectors[source] else { return }
            do {
                guard let base = try await stages.transport(source, org) else {
                    sources.notConnected(source)
                    await emit(.failure(CollectionFailure(source: source, operation: "*", resource: org.id.rawValue,
                                                          reason: "\(org.id) has not connected a \(source) integration")))
                    return
                }
                // `concurrency` is what the API sees: requests of this source in flight at once.
                let transport = LimitedTransport(base: ResilientTransport(base: base, retry: options.retry, timeout: options.timeout,
                                                                          sleeper: sleeper),
                                                 permits: options.concurrency)
                let collectContext = CollectContext(transport: transport, concurrency: options.concurrency,
                                                    asOf: context.run.asOf, freshFor: options.freshFor,
                                                    logger: sourceLogger)
                try await collector.collect(for: org, context: collectContext, emit: emit)
            } catch let error as CancellationError {
                throw error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                sourceLogger.warning("source failed", metadata: ["error": "\(error)"])
                sources.fail(source, (error as? PipelineError)?.message ?? "\(error)")
                await emit(.failure(CollectionFailure(source: source, operation: "*", resource: org.id.rawValue,
                                                      reason: "\(error)")))
            }
        }
    }
}

/// The stage a run is in, set as each starts.
final class StageCursor: @unchecked Sendable {
    private let lock = NSLock()
    private var stage: StageKind?
    var current: StageKind? { lock.withLock { stage } }
    func set(_ stage: StageKind) { lock.withLock { self.stage = stage } }
}
