import Foundation

/// A member's role in an organization, from the product's permission matrix.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    case owner, admin, member, viewer

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank > rhs.rank }
}

/// `resource:action`, as the product's permission matrix names them (`evidence:create`).
public struct Permission: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let resource: String
    public let action: String

    public init(_ resource: String, _ action: String) {
        self.resource = resource
        self.action = action
    }

    public init(stringLiteral value: String) {
        let parts = value.split(separator: ":", maxSplits: 1).map(String.init)
        self.init(parts[0], parts.count > 1 ? parts[1] : "*")
    }

    public var description: String { "\(resource):\(action)" }

    public static let runPipeline: Permission = "evidence:create"
    public static let readEvidence: Permission = "evidence:read"
    public static let createExport: Permission = "reports:create"
    public static let readReports: Permission = "reports:read"
    /// Sharing an export outside the organization: admins and owners (`reports:*`).
    public static let manageReports: Permission = "reports:manage"
    public static let manageMembers: Permission = "users:manage"
    public static let manageIntegrations: Permission = "integrations:manage"
    /// Risk exceptions are control decisions: admins and owners (`controls:*`) make them.
    public static let manageExceptions: Permission = "controls:manage"
    public static let readControls: Permission = "controls:read"
}

/// The product's permission matrix (owner `*`; admin manages users, integrations and every
/// compliance feature; member edits controls, evidence, policies and tasks and reads reports;
/// viewer reads).
public enum PermissionMatrix {
    public static let grants: [Role: [String]] = [
        .owner: ["*"],
        .admin: ["users:manage", "integrations:manage", "controls:*", "evidence:*", "policies:*", "tasks:*", "reports:*"],
        .member: ["controls:read", "controls:update", "evidence:*", "policies:read", "policies:update", "tasks:*",
                  "reports:read"],
        .viewer: ["controls:read", "evidence:read", "policies:read", "tasks:read", "reports:read"],
    ]

    public static func allows(_ role: Role, _ permission: Permission) -> Bool {
        (grants[role] ?? []).contains { grant in
            if grant == "*" { return true }
            let parts = grant.split(separator: ":", maxSplits: 1).map(String.init)
            return parts[0] == permission.resource && (parts[1] == "*" || parts[1] == permission.action)
        }
    }
}

/// Who acts: a person looked up in the organization's members, or the system (the scheduler),
/// which may do everything a pipeline does.
public enum Actor: Sendable, Hashable, CustomStringConvertible {
    case system
    case user(String)

    public static let systemName = "system"

    public init(_ name: String) {
        self = name == Self.systemName ? .system : .user(name)
    }

    public var description: String {
        switch self {
        case .system: return Self.systemName
        case .user(let name): return name
        }
    }

    /// Actor names: an email-like id, 1-254 printable characters without spaces or quotes.
    public static func isValidName(_ name: String) -> Bool {
        (1...254).contains(name.count) && name.unicodeScalars.allSatisfy {
            $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "'" && $0 != "\\"
        }
    }
}

public struct Member: Sendable, Hashable, Codable {
    public let actor: String
    public let role: Role

    public init(actor: String, role: Role) {
        self.actor = actor
        self.role = role
    }
}

/// One audit row: who did what to which entity, when.
public struct AuditEntry: Sendable, Hashable {
    public let organizationID: OrganizationID
    public let actor: String
    public let action: String
    public let entityType: String
    public let entityID: String
    public let detail: String

    public init(organizationID: OrganizationID, actor: String, action: String, entityType: String, entityID: String,
                detail: String = "") {
        self.organizationID = organizationID
        self.actor = actor
        self.action = action
        self.entityType = entityType
        self.entityID = entityID
        self.detail = detail
    }
}
