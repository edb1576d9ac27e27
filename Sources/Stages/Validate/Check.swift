import Foundation
import Pipeline

/// One automated check: what it verifies, the controls it supports, what it reads of which
/// answers, and how it decides. Its words, severity and mapping come from the catalog (data); its
/// logic is built in (Swift) or declared there (`DeclarativeCheck`).
public struct Check: Sendable {
    public let id: String
    public private(set) var title: String
    public private(set) var controls: [ControlRef]
    public private(set) var severity: Catalog.Severity = .medium
    /// Met by uploaded documents: judged only where the validate stage asks for manual controls.
    public internal(set) var manual = false
    /// The fields of each kind of answer the check reads; only these are kept from a body.
    public let reads: [Reading]
    public let evaluate: @Sendable (EvidenceIndex, Organization) -> Verdict

    /// Built-in logic, described later by the catalog entry of the same id.
    public init(id: String, reads: [Reading], evaluate: @escaping @Sendable (EvidenceIndex, Organization) -> Verdict) {
        self.init(id: id, title: id, controls: [], reads: reads, evaluate: evaluate)
    }

    public init(id: String, title: String, controls: [ControlRef], reads: [Reading],
                evaluate: @escaping @Sendable (EvidenceIndex, Organization) -> Verdict) {
        self.id = id
        self.title = title
        self.controls = controls
        self.reads = reads
        self.evaluate = evaluate
    }

    /// The check with the catalog's words, severity and mapping.
    public func described(by spec: Catalog.CheckSpec) -> Check {
        var check = self
        check.title = spec.title
        check.controls = spec.controls
        check.severity = spec.severity
        return check
    }

    /// Fields a check reads of the answers of one operation of one source.
    public struct Reading: Sendable, Hashable {
        public let source: String
        public let operation: String
        public let fields: [FieldPath]

        public init(source: String, operation: String, fields: [FieldPath]) {
            self.source = source
            self.operation = operation
            self.fields = fields
        }
    }

    public struct Verdict: Sendable {
        public let status: CheckStatus
        public let reason: String
        public let findings: [String]
        /// Ids of the evidence the verdict rests on.
        public let evidenceIDs: [String]

        public init(_ status: CheckStatus, _ reason: String, findings: [String] = [], evidence: [Evidence] = []) {
            self.init(status, reason, findings: findings, evidenceIDs: evidence.map(\.id))
        }

        public init(_ status: CheckStatus, _ reason: String, findings: [String] = [], evidenceIDs: [String]) {
            self.status = status
            self.reason = reason
            self.findings = findings
            self.evidenceIDs = evidenceIDs
        }
    }

    func result(_ index: EvidenceIndex, _ organization: Organization) -> CheckResult {
        let verdict = evaluate(index, organization)
        return CheckResult(checkID: id, title: title, controls: controls, status: verdict.status, reason: verdict.reason,
                           findings: verdict.findings, evidenceIDs: verdict.evidenceIDs)
    }
}

/// Evaluates the built-in checks of the frameworks asked for. As answers pass, it keeps of each
/// only the fields some check reads (one parse per body, whatever the number of checks).
public struct CheckValidator: Validator {
    public let checks: [Check]
    let projections: [String: JSONProjection]

    /// Every check the catalog lists: built-in logic described by its entry, or the entry's
    /// declared rule. An entry with neither is left out (`unimplemented` names it for lint).
    public init(catalog: Catalog, builtIns: [Check] = CheckValidator.builtIns) {
        let logic = Dictionary(builtIns.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.init(checks: catalog.checks.compactMap { spec in
            if let rule = spec.rule { return DeclarativeCheck.make(spec, rule) }
            if spec.source == ManualCheck.source { return ManualCheck.make(spec) }
            return logic[spec.id]?.described(by: spec)
        })
    }

    /// The checks whose logic is Swift.
    public static let builtIns: [Check] = GitHubChecks.all + AWSChecks.all + GoogleWorkspaceChecks.all

    /// Catalog entries without logic: no rule, and no built-in check of their id.
    public static func unimplemented(_ catalog: Catalog) -> [Catalog.CheckSpec] {
        let ids = Set(builtIns.map(\.id))
        return catalog.checks.filter { $0.rule == nil && $0.source != ManualCheck.source && !ids.contains($0.id) }
    }

    public init(checks: [Check]) {
        self.checks = checks
        var fields: [String: Set<FieldPath>] = [:]
        for reading in checks.flatMap(\.reads) {
            fields[Self.key(reading.source, reading.operation), default: []].formUnion(reading.fields)
        }
        projections = fields.mapValues(JSONProjection.init)
    }

    static func key(_ source: String, _ operation: String) -> String { "\(source) \(operation)" }

    public func facts(of evidence: Evidence, body: Data) -> EvidenceFacts? {
        guard let projection = projections[Self.key(evidence.source, evidence.operation)],
              !projection.paths.isEmpty else { return nil }
        if evidence.mediaType.contains("xml") {
            do {
                return .value(projection.apply(try XMLValue.parse(body)))
            } catch {
                return .unreadable("evidence \(evidence.id.prefix(12)) (\(evidence.request)) is not XML: \(error)")
            }
        }
        do {
            return .value(try projection.apply(body))
        } catch {
            return .unreadable("evidence \(evidence.id.prefix(12)) (\(evidence.request)) is not JSON: \(error)")
        }
    }

    public func evaluate(_ evidence: EvidenceIndex, frameworks: [String], organization: Organization) -> [CheckResult] {
        // Checks of sources this run did not collect from are not evaluated (a definition that
        // reads GitHub alone says nothing of AWS); a source collected from but not connected, or
        // failing, is in the index with its failure, and its checks are not verified.
        let sources = evidence.sources
        return checks
            .filter { check in check.controls.contains { frameworks.contains($0.framework) } }
            .filter { check in check.manual ? evidence.manualControls : Set(check.reads.map(\.source)).isSubset(of: sources) }
            .map { $0.result(evidence, organization) }
            .sorted { $0.checkID < $1.checkID }
    }
}

/// Reading what checks kept of an answer: an answer that does not parse, or is not the shape
/// expected, makes the check not_verified, never pass.
enum EvidenceReader {
    enum Outcome<T> {
        case value(T)
        case unreadable(String)
    }

    static func value(_ evidence: Evidence, in index: EvidenceIndex) -> Outcome<JSONValue> {
        value(evidence, facts: index.facts(of: evidence))
    }

    static func value(_ evidence: Evidence, facts: EvidenceFacts?) -> Outcome<JSONValue> {
        switch facts {
        case .value(let value)?: return .value(value)
        case .unreadable(let why)?: return .unreadable(why)
        case nil: return .unreadable("evidence \(evidence.id.prefix(12)) (\(evidence.request)) was not read")
        }
    }

    static func object(_ evidence: Evidence, in index: EvidenceIndex) -> Outcome<JSONValue> {
        object(evidence, facts: index.facts(of: evidence))
    }

    static func object(_ evidence: Evidence, facts: EvidenceFacts?) -> Outcome<JSONValue> {
        switch value(evidence, facts: facts) {
        case .value(let value) where value.object != nil: return .value(value)
        case .value: return .unreadable("evidence \(evidence.id.prefix(12)) (\(evidence.request)) is not a JSON object")
        case .unreadable(let why): return .unreadable(why)
        }
    }

    static func array(_ evidence: Evidence, in index: EvidenceIndex) -> Outcome<[JSONValue]> {
        array(evidence, facts: index.facts(of: evidence))
    }

    static func array(_ evidence: Evidence, facts: EvidenceFacts?) -> Outcome<[JSONValue]> {
        switch value(evidence, facts: facts) {
        case .value(.array(let list)) where list.allSatisfy({ $0.object != nil }): return .value(list)
        case .value: return .unreadable("evidence \(evidence.id.prefix(12)) (\(evidence.request)) is not a JSON list of objects")
        case .unreadable(let why): return .unreadable(why)
        }
    }
}
