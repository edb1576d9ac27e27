import Foundation
import Pipeline

/// One automated check: what it verifies, the controls it supports, and how it decides.
public struct Check: Sendable {
    public let id: String
    public let title: String
    public let controls: [ControlRef]
    public let evaluate: @Sendable (EvidenceIndex, Organization) -> Verdict

    public init(id: String, title: String, controls: [ControlRef],
                evaluate: @escaping @Sendable (EvidenceIndex, Organization) -> Verdict) {
        self.id = id
        self.title = title
        self.controls = controls
        self.evaluate = evaluate
    }

    public struct Verdict: Sendable {
        public let status: CheckStatus
        public let reason: String
        public let findings: [String]
        public let evidence: [Evidence]

        public init(_ status: CheckStatus, _ reason: String, findings: [String] = [], evidence: [Evidence] = []) {
            self.status = status
            self.reason = reason
            self.findings = findings
            self.evidence = evidence
        }
    }

    func result(_ index: EvidenceIndex, _ organization: Organization) -> CheckResult {
        let verdict = evaluate(index, organization)
        return CheckResult(checkID: id, title: title, controls: controls, status: verdict.status, reason: verdict.reason,
                           findings: verdict.findings, evidenceIDs: verdict.evidence.map(\.id))
    }
}

/// Evaluates the built-in checks of the frameworks asked for.
public struct CheckValidator: Validator {
    public let checks: [Check]

    public init(checks: [Check] = GitHubChecks.all) {
        self.checks = checks
    }

    public func evaluate(_ evidence: EvidenceIndex, frameworks: [String], organization: Organization) -> [CheckResult] {
        checks
            .filter { check in check.controls.contains { frameworks.contains($0.framework) } }
            .map { $0.result(evidence, organization) }
            .sorted { $0.checkID < $1.checkID }
    }
}

/// Reading evidence bodies: a body that does not parse makes the check not_verified, never pass.
enum EvidenceReader {
    enum Outcome<T> {
        case value(T)
        case unreadable(String)
    }

    static func object(_ evidence: Evidence) -> Outcome<[String: Any]> {
        guard let value = try? JSONSerialization.jsonObject(with: evidence.body), let object = value as? [String: Any] else {
            return .unreadable("evidence \(evidence.id.prefix(12)) (\(evidence.request)) is not a JSON object")
        }
        return .value(object)
    }

    static func array(_ evidence: Evidence) -> Outcome<[[String: Any]]> {
        guard let value = try? JSONSerialization.jsonObject(with: evidence.body), let array = value as? [[String: Any]] else {
            return .unreadable("evidence \(evidence.id.prefix(12)) (\(evidence.request)) is not a JSON list of objects")
        }
        return .value(array)
    }
}
