import Foundation

public enum CheckStatus: String, Sendable, Codable, CaseIterable, Comparable {
    case pass
    case fail
    case notVerified = "not_verified"
    case notApplicable = "not_applicable"
    case excepted

    /// Severity order used to roll several results into one: fail outranks not_verified, which
    /// outranks pass; so missing evidence can never lift a control to pass.
    var severity: Int {
        switch self {
        case .fail: return 4
        case .notVerified: return 3
        case .excepted: return 2
        case .pass: return 1
        case .notApplicable: return 0
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.severity < rhs.severity }

    /// The combined status of several results (of one check over many resources, or of the
    /// checks behind one control).
    public static func combine(_ statuses: some Sequence<CheckStatus>) -> CheckStatus {
        statuses.max() ?? .notApplicable
    }
}

/// A control of a framework: `soc2` `CC6.1`, `iso27001` `A.8.5`.
public struct ControlRef: Sendable, Hashable, Codable, Comparable {
    public let framework: String
    public let id: String

    public init(framework: String, id: String) {
        self.framework = framework
        self.id = id
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.framework, ControlRef.sortKey(lhs.id)) < (rhs.framework, ControlRef.sortKey(rhs.id))
    }

    /// `A.8.32` after `A.8.5`: numeric parts compare as numbers.
    static func sortKey(_ id: String) -> String {
        id.split(whereSeparator: { $0 == "." }).map { part in
            if let n = Int(part) { return String(repeating: "0", count: max(0, 6 - String(n).count)) + String(n) }
            if let digits = part.firstIndex(where: \.isNumber), let n = Int(part[digits...]) {
                return String(part[..<digits]) + String(repeating: "0", count: max(0, 6 - String(n).count)) + String(n)
            }
            return String(part)
        }.joined(separator: ".")
    }
}

/// The outcome of one check for one organization in one run.
public struct CheckResult: Sendable, Hashable, Codable {
    public let checkID: String
    public let title: String
    public let controls: [ControlRef]
    public let status: CheckStatus
    /// Why: for every status but pass, a sentence a compliance lead can act on.
    public let reason: String
    /// Specific offenders (`acme-corp/api: force pushes allowed on main`).
    public let findings: [String]
    /// Ids of the evidence the result rests on, sorted.
    public let evidenceIDs: [String]

    public init(checkID: String, title: String, controls: [ControlRef], status: CheckStatus, reason: String,
                findings: [String] = [], evidenceIDs: [String]) {
        self.checkID = checkID
        self.title = title
        self.controls = controls.sorted()
        self.status = status
        self.reason = reason
        self.findings = findings
        self.evidenceIDs = sortedUniqueIDs(evidenceIDs)
    }

    enum CodingKeys: String, CodingKey {
        case title, controls, status, reason, findings
        case checkID = "check_id"
        case evidenceIDs = "evidence_ids"
    }
}

/// Evidence ids once each, in order. Ids are hex SHA-256 digests, so they sort by the number their
/// first 16 digits make (ties, and ids of another form, by the whole text): thousands of ids sort in
/// a fraction of the time text comparison takes, in the same order.
public func sortedUniqueIDs(_ ids: [String]) -> [String] {
    // Already in order and once each (a list shared by several checks): nothing to do.
    if zip(ids, ids.dropFirst()).allSatisfy({ $0 < $1 }) { return ids }
    var keyed = ids.map { (hexPrefix($0), $0) }
    keyed.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
    var out: [String] = []
    out.reserveCapacity(keyed.count)
    for (_, id) in keyed where out.last != id {
        out.append(id)
    }
    return out
}

/// The first 16 characters as a hexadecimal number, or 0 when they are not hex digits (the text
/// then decides the order).
func hexPrefix(_ id: String) -> UInt64 {
    var value: UInt64 = 0
    var count = 0
    for byte in id.utf8.prefix(16) {
        let digit: UInt8
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
        default: return 0
        }
        value = value << 4 | UInt64(digit)
        count += 1
    }
    return count == 16 ? value : 0
}
