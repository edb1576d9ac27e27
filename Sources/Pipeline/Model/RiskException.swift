import Foundation

/// A risk acceptance: an organization accepts that a check fails, for every resource or for one,
/// on someone's approval, until a date. An exception applies to failures only (missing evidence
/// is never accepted away) and stops applying when it expires; the result then says so.
public struct RiskException: Sendable, Hashable, Codable {
    public let id: String
    public let checkID: String
    /// The resource it covers (as the check's findings name it), or nil for the whole check.
    public let resource: String?
    public let approver: String
    public let justification: String
    public let expires: Date
    public let createdBy: String
    public let createdAt: Date

    public init(id: String, checkID: String, resource: String?, approver: String, justification: String, expires: Date,
                createdBy: String, createdAt: Date) {
        self.id = id
        self.checkID = checkID
        self.resource = resource
        self.approver = approver
        self.justification = justification
        self.expires = expires
        self.createdBy = createdBy
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, resource, approver, justification, expires
        case checkID = "check_id"
        case createdBy = "created_by"
        case createdAt = "created_at"
    }

    /// A new exception's id: `exc-` and 16 random hex digits.
    public static func newID() -> String {
        "exc-" + (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// Results with the organization's exceptions applied at the run's clock.
    public static func apply(_ exceptions: [RiskException], to results: [CheckResult], at clock: Date) -> [CheckResult] {
        guard !exceptions.isEmpty else { return results }
        let byCheck = Dictionary(grouping: exceptions, by: \.checkID)
        return results.map { result in
            guard let list = byCheck[result.checkID], result.status == .fail else { return result }
            let active = list.filter { $0.expires > clock }
            let expired = list.filter { $0.expires <= clock }.sorted { $0.expires < $1.expires }
            let expiredNote = expired.last.map {
                " An exception approved by \($0.approver)\($0.resource.map { " for \($0)" } ?? "") expired on \(Timestamp.day($0.expires))."
            } ?? ""
            if let whole = active.first(where: { $0.resource == nil }) {
                return CheckResult(checkID: result.checkID, title: result.title, controls: result.controls, status: .excepted,
                                   reason: "Accepted as a risk by \(whole.approver) until \(Timestamp.day(whole.expires)): \(whole.justification) (\(result.reason))",
                                   findings: result.findings, evidenceIDs: result.evidenceIDs)
            }
            let perResource = Dictionary(active.compactMap { e in e.resource.map { ($0, e) } }, uniquingKeysWith: { first, _ in first })
            var open = 0
            let findings = result.findings.map { finding -> String in
                guard let colon = finding.range(of: ": "), let exception = perResource[String(finding[..<colon.lowerBound])] else {
                    open += 1
                    return finding
                }
                return "\(finding) (excepted until \(Timestamp.day(exception.expires)) by \(exception.approver))"
            }
            if open == 0, !perResource.isEmpty {
                return CheckResult(checkID: result.checkID, title: result.title, controls: result.controls, status: .excepted,
                                   reason: "Every failing resource is accepted as a risk. (\(result.reason))\(expiredNote)",
                                   findings: findings, evidenceIDs: result.evidenceIDs)
            }
            return CheckResult(checkID: result.checkID, title: result.title, controls: result.controls, status: .fail,
                               reason: result.reason + expiredNote, findings: findings, evidenceIDs: result.evidenceIDs)
        }
    }
}
