import Foundation

/// The results of an earlier run, to say what changed since.
public struct PreviousResults: Sendable, Hashable {
    public let runID: String
    public let asOf: Date
    /// Check id → status and findings.
    public let results: [String: (status: CheckStatus, findings: [String])]
    /// `source resource` of the run's evidence.
    public let resources: Set<String>

    public init(runID: String, asOf: Date, results: [String: (status: CheckStatus, findings: [String])], resources: Set<String>) {
        self.runID = runID
        self.asOf = asOf
        self.results = results
        self.resources = resources
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.runID == b.runID && a.asOf == b.asOf && a.resources == b.resources
            && a.results.mapValues { "\($0.status.rawValue) \($0.findings)" } == b.results.mapValues { "\($0.status.rawValue) \($0.findings)" }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(runID) }
}

/// What changed since the organization's previous run of the same pipeline, stored with the run
/// for its report: checks newly failing or passing, offenders that appeared or went away,
/// resources new or vanished from the evidence, and exceptions that expired in between.
public struct RunChanges: Sendable, Hashable, Codable {
    public let previousRun: String?
    public let newlyFailing: [String]
    public let newlyPassing: [String]
    /// `check: finding` of offenders not there before, and of those gone since.
    public let newFindings: [String]
    public let resolvedFindings: [String]
    /// `source resource` of evidence resources.
    public let newResources: [String]
    public let vanishedResources: [String]
    public let exceptionsExpired: [String]

    enum CodingKeys: String, CodingKey {
        case previousRun = "previous_run"
        case newlyFailing = "newly_failing"
        case newlyPassing = "newly_passing"
        case newFindings = "new_findings"
        case resolvedFindings = "resolved_findings"
        case newResources = "new_resources"
        case vanishedResources = "vanished_resources"
        case exceptionsExpired = "exceptions_expired"
    }

    public var isEmpty: Bool {
        newlyFailing.isEmpty && newlyPassing.isEmpty && newFindings.isEmpty && resolvedFindings.isEmpty
            && newResources.isEmpty && vanishedResources.isEmpty && exceptionsExpired.isEmpty
    }

    /// One line for a summary: `2 newly failing, 1 newly passing, …`, or that nothing changed.
    public var summary: String {
        guard previousRun != nil else { return "first run" }
        let counts: [(Int, String)] = [
            (newlyFailing.count, "newly failing"), (newlyPassing.count, "newly passing"), (newFindings.count, "new findings"),
            (resolvedFindings.count, "resolved findings"), (newResources.count, "new resources"),
            (vanishedResources.count, "vanished resources"), (exceptionsExpired.count, "exceptions expired"),
        ]
        let parts: [String] = counts.filter { $0.0 > 0 }.map { count, what in "\(count) \(what)" }
        return parts.isEmpty ? "nothing changed" : parts.joined(separator: ", ")
    }

    public static func compute(previous: PreviousResults?, results: [CheckResult], resources: Set<String>,
                               exceptions: [RiskException], clock: Date) -> RunChanges {
        guard let previous else {
            return RunChanges(previousRun: nil, newlyFailing: [], newlyPassing: [], newFindings: [], resolvedFindings: [],
                              newResources: [], vanishedResources: [], exceptionsExpired: [])
        }
        var failing: [String] = [], passing: [String] = [], added: [String] = [], resolved: [String] = []
        for result in results {
            let before = previous.results[result.checkID]
            if result.status == .fail, before?.status != .fail { failing.append(result.checkID) }
            if result.status == .pass, let status = before?.status, status != .pass { passing.append(result.checkID) }
            let old = Set(before?.findings ?? [])
            let now = Set(result.findings)
            added += now.subtracting(old).map { "\(result.checkID): \($0)" }
            resolved += old.subtracting(now).map { "\(result.checkID): \($0)" }
        }
        let expired = exceptions.filter { $0.expires > previous.asOf && $0.expires <= clock }
            .map { "\($0.checkID)\($0.resource.map { " \($0)" } ?? ""): approved by \($0.approver), expired \(Timestamp.iso8601($0.expires))" }
        return RunChanges(previousRun: previous.runID, newlyFailing: failing.sorted(), newlyPassing: passing.sorted(),
                          newFindings: added.sorted(), resolvedFindings: resolved.sorted(),
                          newResources: resources.subtracting(previous.resources).sorted(),
                          vanishedResources: previous.resources.subtracting(resources).sorted(), exceptionsExpired: expired.sorted())
    }
}

/// A framework's score in one run, for the trend.
public struct ScoreRecord: Sendable, Hashable, Codable {
    public let runID: String
    public let pipeline: String
    public let asOf: Date
    public let framework: String
    public let points: Int
    public let possible: Int
    public let passed: Int
    public let failed: Int
    public let notVerified: Int

    public init(runID: String, pipeline: String, asOf: Date, framework: String, points: Int, possible: Int, passed: Int,
                failed: Int, notVerified: Int) {
        self.runID = runID
        self.pipeline = pipeline
        self.asOf = asOf
        self.framework = framework
        self.points = points
        self.possible = possible
        self.passed = passed
        self.failed = failed
        self.notVerified = notVerified
    }

    public var percentText: String {
        possible == 0 ? "n/a" : "\(Int((Double(points) / Double(possible) * 100).rounded()))%"
    }

    enum CodingKeys: String, CodingKey {
        case framework, points, possible, passed, failed, pipeline
        case runID = "run_id"
        case asOf = "as_of"
        case notVerified = "not_verified"
    }
}
