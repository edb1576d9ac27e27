import Foundation

/// The frameworks, their criteria and controls, and the checks mapped to them: data, loaded from
/// `frameworks/*.yml` and `checks/*.yml` beside the definitions (see pipelines/checks/README.md).
public struct Catalog: Sendable {
    public struct Control: Sendable, Hashable, Codable {
        public let id: String
        public let title: String
    }

    public struct Framework: Sendable, Hashable {
        public let id: String
        public let title: String
        public let version: String
        /// In the order the file lists them.
        public let controls: [Control]
        public let file: String

        public init(id: String, title: String, version: String, controls: [Control], file: String) {
            self.id = id
            self.title = title
            self.version = version
            self.controls = controls
            self.file = file
        }

        public func title(of control: String) -> String? { controls.first { $0.id == control }?.title }
    }

    public enum Severity: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
        case low, medium, high, critical

        /// A check's weight in a score.
        public var weight: Int {
            switch self {
            case .low: return 1
            case .medium: return 2
            case .high: return 3
            case .critical: return 4
            }
        }

        public static func < (a: Self, b: Self) -> Bool { a.weight < b.weight }
    }

    /// How a declarative check decides: over each resource of each answer of one operation.
    public struct Rule: Sendable, Hashable {
        /// The evidence's operation (`orgs/get`).
        public let operation: String
        /// Where the resources are in an answer: nil for the answer itself, `[]` (`@`) for an
        /// answer that is a list, a path to a list otherwise.
        public let each: [String]?
        /// Each resource's name: `{field.path}` placeholders over the resource.
        public let resource: String
        /// Which resources the check is about (all when nil).
        public let applies: CheckExpression?
        public let pass: CheckExpression
        /// The expressions as written, for `controls show`.
        public let appliesText: String?
        public let passText: String

        public init(operation: String, each: [String]?, resource: String, applies: CheckExpression?, pass: CheckExpression,
                    appliesText: String?, passText: String) {
            self.operation = operation
            self.each = each
            self.resource = resource
            self.applies = applies
            self.pass = pass
            self.appliesText = appliesText
            self.passText = passText
        }

        /// Every field of an answer the rule reads, for the projection that keeps only those.
        public var fields: [FieldPath] {
            var paths: [[String]] = resourcePlaceholders.map { $0.split(separator: ".").map(String.init) }
            paths += (applies?.paths ?? []) + pass.paths
            let prefix = each.map { $0 + ["[]"] } ?? []
            return Array(Set(paths.map { FieldPath(components: prefix + $0) })).sorted { $0.description < $1.description }
        }

        var resourcePlaceholders: [String] {
            (try? HTTPSourceDefinition.placeholders(resource).get()) ?? []
        }
    }

    public struct CheckSpec: Sendable, Hashable {
        public let id: String
        public let title: String
        public let description: String
        public let severity: Severity
        public let remediation: String
        public let controls: [ControlRef]
        public let source: String
        /// The declarative rule, or nil for a check whose logic is built in.
        public let rule: Rule?
        public let file: String

        public init(id: String, title: String, description: String, severity: Severity, remediation: String,
                    controls: [ControlRef], source: String, rule: Rule?, file: String) {
            self.id = id
            self.title = title
            self.description = description
            self.severity = severity
            self.remediation = remediation
            self.controls = controls
            self.source = source
            self.rule = rule
            self.file = file
        }
    }

    public let frameworks: [String: Framework]
    /// By id, in id order.
    public let checks: [CheckSpec]

    public init(frameworks: [Framework], checks: [CheckSpec]) {
        self.frameworks = Dictionary(frameworks.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.checks = checks.sorted { $0.id < $1.id }
    }

    public func check(_ id: String) -> CheckSpec? { checks.first { $0.id == id } }

    public func title(of control: ControlRef) -> String {
        frameworks[control.framework]?.title(of: control.id) ?? control.id
    }

    public func frameworkTitle(_ id: String) -> String {
        frameworks[id]?.title ?? id
    }
}
