import Foundation
import Logging

/// Collects evidence from one integration. Emits evidence as it learns it; what it cannot
/// collect it emits as a failure and goes on with the rest. Throws only when it cannot start
/// at all (say, the integration is not configured).
public protocol EvidenceCollector: Sendable {
    var source: String { get }
    func collect(for organization: Organization, context: CollectContext,
                 emit: @escaping @Sendable (CollectEvent) async -> Void) async throws
    /// One cheap authenticated call, for `pipeline integrations test`: what it learned, or an
    /// error saying why the integration does not work.
    func probe(_ organization: Organization, transport: any HTTPTransport) async throws -> String
}

/// What a collector gets to work with.
public struct CollectContext: Sendable {
    /// Already wrapped with the stage's retry policy and timeout.
    public let transport: any HTTPTransport
    /// Requests a collector may keep in flight at once.
    public let concurrency: Int
    public let asOf: Date
    public let freshFor: Duration
    public let logger: Logger

    public init(transport: any HTTPTransport, concurrency: Int, asOf: Date, freshFor: Duration, logger: Logger) {
        self.transport = transport
        self.concurrency = concurrency
        self.asOf = asOf
        self.freshFor = freshFor
        self.logger = logger
    }
}

/// What checks keep of an answer: the fields they read, or why the answer cannot be read.
public enum EvidenceFacts: Sendable, Hashable {
    case value(JSONValue)
    case unreadable(String)
}

/// Evidence gathered in a run, looked up by source and operation, or by resource, in constant
/// time; with what could not be collected, looked up the same way, and the facts checks took
/// from each answer as it passed. Bodies are not kept.
public struct EvidenceIndex: Sendable {
    struct OperationKey: Hashable {
        let source: String
        let operation: String
    }

    struct ResourceKey: Hashable {
        let source: String
        let operation: String
        let resource: String
    }

    public private(set) var all: [Evidence] = []
    public private(set) var failures: [CollectionFailure] = []
    /// Facts of `all[i]` at `facts[i]`, its status at `statuses[i]` (compact, for checks that
    /// walk thousands of items); positions by evidence id.
    private var facts: [EvidenceFacts?] = []
    private var statuses: [Int32] = []
    private var positions: [String: Int] = [:]
    private var byOperation: [OperationKey: [Int]] = [:]
    /// The first evidence about each resource (most have one), and the rest where there are more.
    private var firstByResource: [ResourceKey: Int] = [:]
    private var moreByResource: [ResourceKey: [Int]] = [:]
    private var failuresByOperation: [OperationKey: [Int]] = [:]
    private var failuresByResource: [ResourceKey: [Int]] = [:]
    private var sourceFailures: [String: [Int]] = [:]
    private var memo = Memo()

    public init() {}

    /// Views derived from the evidence that several checks share (the active repositories): made
    /// once, by the first check that asks, and forgotten when evidence is added.
    final class Memo: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [String: any Sendable] = [:]

        func value<T: Sendable>(_ key: String, _ make: () -> T) -> T {
            if let known = lock.withLock({ values[key] }) as? T { return known }
            let made = make()
            lock.withLock { values[key] = made }
            return made
        }
    }

    public func derived<T: Sendable>(_ key: String, _ make: () -> T) -> T {
        memo.value(key, make)
    }

    public mutating func add(_ evidence: Evidence, facts: EvidenceFacts?) {
        memo = Memo()
        byOperation[OperationKey(source: evidence.source, operation: evidence.operation), default: []].append(all.count)
        let key = ResourceKey(source: evidence.source, operation: evidence.operation, resource: evidence.resource)
        if firstByResource[key] == nil {
            firstByResource[key] = all.count
        } else {
            moreByResource[key, default: []].append(all.count)
        }
        positions[evidence.id] = all.count
        all.append(evidence)
        self.facts.append(facts)
        statuses.append(Int32(clamping: evidence.status))
    }

    public mutating func add(_ failure: CollectionFailure) {
        memo = Memo()
        let index = failures.count
        failures.append(failure)
        if failure.operation == "*" {
            sourceFailures[failure.source, default: []].append(index)
            return
        }
        failuresByOperation[OperationKey(source: failure.source, operation: failure.operation), default: []].append(index)
        failuresByResource[ResourceKey(source: failure.source, operation: failure.operation, resource: failure.resource),
                           default: []].append(index)
    }

    public func evidence(source: String, operation: String) -> [Evidence] {
        (byOperation[OperationKey(source: source, operation: operation)] ?? []).map { all[$0] }
    }

    public func evidence(source: String, operation: String, resource: String) -> [Evidence] {
        let key = ResourceKey(source: source, operation: operation, resource: resource)
        guard let first = firstByResource[key] else { return [] }
        return ([first] + (moreByResource[key] ?? [])).map { all[$0] }
    }

    /// Where the first evidence of `operation` about `resource` is (for `all` and `facts(at:)`),
    /// without making a list or copying it.
    public func position(source: String, operation: String, resource: String) -> Int? {
        firstByResource[ResourceKey(source: source, operation: operation, resource: resource)]
    }

    /// The facts of the evidence at `position` in `all`.
    public func facts(at position: Int) -> EvidenceFacts? {
        facts[position]
    }

    /// The status of the evidence at `position` in `all`, without touching the rest of it.
    public func status(at position: Int) -> Int {
        Int(statuses[position])
    }

    /// What the checks took from the evidence's answer when it was collected.
    public func facts(of evidence: Evidence) -> EvidenceFacts? {
        positions[evidence.id].flatMap { facts[$0] }
    }

    /// The run's clock, for checks that judge freshness.
    public private(set) var clock: Date?
    private var uploadsByControl: [String: [Int]] = [:]

    /// Whether manual controls are judged in this run (the validate stage's `manual_controls`).
    public private(set) var manualControls = false

    public mutating func setClock(_ date: Date, manualControls: Bool = false) {
        clock = date
        self.manualControls = manualControls
    }

    /// Adds evidence a person uploaded, supporting `controls` (manual controls read it by control).
    public mutating func add(upload: Evidence, supporting controls: [String]) {
        add(upload, facts: nil)
        for control in controls { uploadsByControl[control, default: []].append(all.count - 1) }
    }

    /// Uploaded evidence supporting `control`.
    public func uploads(supporting control: String) -> [Evidence] {
        (uploadsByControl[control] ?? []).map { all[$0] }
    }

    /// The sources that answered or failed in this run.
    public var sources: Set<String> {
        Set(byOperation.keys.map(\.source)).union(failures.map(\.source))
    }

    /// Failures of `operation` (of any resource), and of the whole source.
    public func failures(source: String, operation: String) -> [CollectionFailure] {
        ((failuresByOperation[OperationKey(source: source, operation: operation)] ?? []) + (sourceFailures[source] ?? []))
            .map { failures[$0] }
    }

    /// Failures of `operation` about `resource`, and of the whole source.
    public func failures(source: String, operation: String, resource: String) -> [CollectionFailure] {
        let key = ResourceKey(source: source, operation: operation, resource: resource)
        return ((failuresByResource[key] ?? []) + (sourceFailures[source] ?? [])).map { failures[$0] }
    }
}

/// Evaluates checks against collected evidence.
public protocol Validator: Sendable {
    /// What the checks read of an answer, taken once as it passes on its way to storage (the body
    /// is not kept); nil when no check reads this kind of answer.
    func facts(of evidence: Evidence, body: Data) -> EvidenceFacts?
    func evaluate(_ evidence: EvidenceIndex, frameworks: [String], organization: Organization) -> [CheckResult]
}

/// Rolls check results into control statuses and framework scores.
public protocol Scorer: Sendable {
    func score(_ results: [CheckResult], frameworks: [String]) -> ScoreSummary
}

/// Everything a report and bundle are made from. Same input (and stored originals), same bytes.
public struct ReportInput: Sendable {
    public let organization: Organization
    public let pipeline: String
    public let asOf: Date
    public let periodStart: Date
    public let results: [CheckResult]
    public let scores: ScoreSummary
    /// The run's evidence, described; each original is read from the object store when the bundle
    /// is written.
    public let evidence: [Evidence]
    public let failures: [CollectionFailure]
    public let context: ReportContext

    public init(organization: Organization, pipeline: String, asOf: Date, periodStart: Date, results: [CheckResult],
                scores: ScoreSummary, evidence: [Evidence], failures: [CollectionFailure], context: ReportContext = ReportContext()) {
        self.context = context
        self.organization = organization
        self.pipeline = pipeline
        self.asOf = asOf
        self.periodStart = periodStart
        self.results = results
        self.scores = scores
        self.evidence = evidence
        self.failures = failures
    }
}

/// Files a renderer made in the run's scratch folder, to be put in the object store under the
/// organization's exports.
public struct RenderedExport: Sendable {
    public struct File: Sendable {
        public let kind: Artifact.Kind
        public let key: String
        public let file: URL
        public let contentType: String
        public let sha256: String
        public let size: Int

        public init(kind: Artifact.Kind, key: String, file: URL, contentType: String, sha256: String, size: Int) {
            self.kind = kind
            self.key = key
            self.file = file
            self.contentType = contentType
            self.sha256 = sha256
            self.size = size
        }
    }

    public let id: String
    public let files: [File]

    public init(id: String, files: [File]) {
        self.id = id
        self.files = files
    }
}

public protocol ReportRenderer: Sendable {
    /// Renders the report and bundle into files under `scratch`, streaming each evidence original
    /// from `objects` into the bundle: memory does not grow with the evidence.
    func render(_ input: ReportInput, options: RenderOptions, objects: any ObjectStore, scratch: URL) async throws
        -> RenderedExport
}

/// What the runner observes of a run, for progress display and metrics.
public enum ProgressEvent: Sendable {
    case stageStarted(OrganizationID, StageKind)
    case evidenceCollected(OrganizationID, source: String, count: Int)
    case stageFinished(OrganizationID, StageKind, detail: String)
}
