import Foundation
import Logging

/// Collects evidence from one integration. Emits evidence as it learns it; what it cannot
/// collect it emits as a failure and goes on with the rest. Throws only when it cannot start
/// at all (say, the integration is not configured).
public protocol EvidenceCollector: Sendable {
    var source: String { get }
    func collect(for organization: Organization, context: CollectContext,
                 emit: @escaping @Sendable (CollectEvent) async -> Void) async throws
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

/// Evidence gathered in a run, by source and operation, with what could not be collected.
public struct EvidenceIndex: Sendable {
    public private(set) var all: [Evidence] = []
    public private(set) var failures: [CollectionFailure] = []
    private var byOperation: [String: [Evidence]] = [:]

    public init() {}

    public init(_ events: [CollectEvent]) {
        for event in events { add(event) }
    }

    public mutating func add(_ event: CollectEvent) {
        switch event {
        case .evidence(let evidence):
            all.append(evidence)
            byOperation["\(evidence.source) \(evidence.operation)", default: []].append(evidence)
        case .failure(let failure):
            failures.append(failure)
        }
    }

    public func evidence(source: String, operation: String) -> [Evidence] {
        byOperation["\(source) \(operation)"] ?? []
    }

    public func evidence(source: String, operation: String, resource: String) -> [Evidence] {
        evidence(source: source, operation: operation).filter { $0.resource == resource }
    }

    public func failures(source: String, operation: String? = nil) -> [CollectionFailure] {
        failures.filter { $0.source == source && (operation == nil || $0.operation == operation) }
    }
}

/// Evaluates checks against collected evidence.
public protocol Validator: Sendable {
    func evaluate(_ evidence: EvidenceIndex, frameworks: [String], organization: Organization) -> [CheckResult]
}

/// Rolls check results into control statuses and framework scores.
public protocol Scorer: Sendable {
    func score(_ results: [CheckResult], frameworks: [String]) -> ScoreSummary
}

/// Everything a report and bundle are made from. Same input, same bytes.
public struct ReportInput: Sendable {
    public let organization: Organization
    public let pipeline: String
    public let asOf: Date
    public let periodStart: Date
    public let results: [CheckResult]
    public let scores: ScoreSummary
    public let evidence: [Evidence]
    public let failures: [CollectionFailure]

    public init(organization: Organization, pipeline: String, asOf: Date, periodStart: Date, results: [CheckResult],
                scores: ScoreSummary, evidence: [Evidence], failures: [CollectionFailure]) {
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

/// Files a renderer made, to be put in the object store under the organization's exports.
public struct RenderedExport: Sendable {
    public struct File: Sendable {
        public let kind: Artifact.Kind
        public let key: String
        public let data: Data
        public let contentType: String
        public let sha256: String

        public init(kind: Artifact.Kind, key: String, data: Data, contentType: String, sha256: String) {
            self.kind = kind
            self.key = key
            self.data = data
            self.contentType = contentType
            self.sha256 = sha256
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
    func render(_ input: ReportInput, options: RenderOptions) async throws -> RenderedExport
}

/// What the runner observes of a run, for progress display and metrics.
public enum ProgressEvent: Sendable {
    case stageStarted(OrganizationID, StageKind)
    case evidenceCollected(OrganizationID, source: String, count: Int)
    case stageFinished(OrganizationID, StageKind, detail: String)
}
