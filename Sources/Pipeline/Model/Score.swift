import Foundation

/// One control's standing in a run: its checks rolled into one status.
public struct ControlStatus: Sendable, Hashable, Codable {
    public let control: ControlRef
    public let title: String
    public let status: CheckStatus
    public let checkIDs: [String]
    public let evidenceIDs: [String]
    /// Severity weights of the passing checks, and of every evaluated one (pass, fail,
    /// not_verified): the criterion's score is points over possible.
    public let points: Int
    public let possible: Int

    public init(control: ControlRef, title: String, status: CheckStatus, checkIDs: [String], evidenceIDs: [String],
                points: Int = 0, possible: Int = 0) {
        self.control = control
        self.title = title
        self.status = status
        self.checkIDs = checkIDs.sorted()
        self.evidenceIDs = sortedUniqueIDs(evidenceIDs)
        self.points = points
        self.possible = possible
    }

    enum CodingKeys: String, CodingKey {
        case control, title, status, points, possible
        case checkIDs = "check_ids"
        case evidenceIDs = "evidence_ids"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        control = try container.decode(ControlRef.self, forKey: .control)
        title = try container.decode(String.self, forKey: .title)
        status = try container.decode(CheckStatus.self, forKey: .status)
        checkIDs = try container.decode([String].self, forKey: .checkIDs)
        evidenceIDs = try container.decode([String].self, forKey: .evidenceIDs)
        points = try container.decodeIfPresent(Int.self, forKey: .points) ?? 0
        possible = try container.decodeIfPresent(Int.self, forKey: .possible) ?? 0
    }
}

/// A framework's score: the severity weights of its criteria's passing checks over those of
/// their evaluated checks (pass, fail, not_verified: missing evidence lowers a score, it never
/// raises one; not_applicable and excepted are left out of both sides). A critical check weighs
/// four times a low one. The criteria are counted too: passing, failing, not verified.
public struct FrameworkScore: Sendable, Hashable, Codable {
    public let framework: String
    /// As the catalog names it (the framework's id in scores stored before titles were kept).
    public let title: String
    public let passed: Int
    public let failed: Int
    public let notVerified: Int
    public let notApplicable: Int
    public let excepted: Int
    public let controls: [ControlStatus]

    public var evaluated: Int { passed + failed + notVerified }
    /// Severity-weighted points of passing checks, and of every evaluated one, over the criteria.
    public var points: Int { controls.reduce(0) { $0 + $1.points } }
    public var possible: Int { controls.reduce(0) { $0 + $1.possible } }
    /// In 0...1, weighted by severity; nil when nothing was evaluated.
    public var ratio: Double? { possible == 0 ? nil : Double(points) / Double(possible) }
    /// `67%` or `n/a`.
    public var percentText: String {
        guard let ratio else { return "n/a" }
        return "\(Int((ratio * 100).rounded()))%"
    }

    public init(framework: String, title: String? = nil, controls: [ControlStatus]) {
        self.framework = framework
        self.title = title ?? framework
        self.controls = controls.sorted { $0.control < $1.control }
        passed = controls.count { $0.status == .pass }
        failed = controls.count { $0.status == .fail }
        notVerified = controls.count { $0.status == .notVerified }
        notApplicable = controls.count { $0.status == .notApplicable }
        excepted = controls.count { $0.status == .excepted }
    }

    enum CodingKeys: String, CodingKey {
        case framework, title, passed, failed, controls
        case notVerified = "not_verified"
        case notApplicable = "not_applicable"
        case excepted
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        framework = try container.decode(String.self, forKey: .framework)
        title = try container.decodeIfPresent(String.self, forKey: .title) ?? framework
        passed = try container.decode(Int.self, forKey: .passed)
        failed = try container.decode(Int.self, forKey: .failed)
        notVerified = try container.decode(Int.self, forKey: .notVerified)
        notApplicable = try container.decode(Int.self, forKey: .notApplicable)
        excepted = try container.decode(Int.self, forKey: .excepted)
        controls = try container.decode([ControlStatus].self, forKey: .controls)
    }
}

/// Overall standing: the sum over frameworks.
public struct ScoreSummary: Sendable, Hashable, Codable {
    public let frameworks: [FrameworkScore]

    public init(frameworks: [FrameworkScore]) {
        self.frameworks = frameworks.sorted { $0.framework < $1.framework }
    }

    public var passed: Int { frameworks.reduce(0) { $0 + $1.passed } }
    public var evaluated: Int { frameworks.reduce(0) { $0 + $1.evaluated } }
    public var points: Int { frameworks.reduce(0) { $0 + $1.points } }
    public var possible: Int { frameworks.reduce(0) { $0 + $1.possible } }
    /// Over every framework, weighted by severity.
    public var ratio: Double? { possible == 0 ? nil : Double(points) / Double(possible) }
    public var percentText: String {
        guard let ratio else { return "n/a" }
        return "\(Int((ratio * 100).rounded()))%"
    }
}
