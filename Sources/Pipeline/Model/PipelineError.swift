import Foundation

/// The error every layer of the pipeline reports in. An opaque code with static constructors;
/// `description` is safe to print and never carries secrets or response bodies.
public struct PipelineError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable, Equatable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        public static let invalidOrganizationID = Code(name: "invalid-organization-id")
        public static let unknownOrganization = Code(name: "unknown-organization")
        public static let unknownPipeline = Code(name: "unknown-pipeline")
        public static let invalidDefinition = Code(name: "invalid-definition")
        public static let fixture = Code(name: "fixture")
        public static let transport = Code(name: "transport")
        public static let timeout = Code(name: "timeout")
        public static let storage = Code(name: "storage")
        public static let database = Code(name: "database")
        public static let render = Code(name: "render")
        public static let cancelled = Code(name: "cancelled")
        public static let configuration = Code(name: "configuration")
        public static let crypto = Code(name: "crypto")
        public static let forbidden = Code(name: "forbidden")
    }

    public let code: Code
    public let message: String
    /// Detail for debugging (may include raw peer output); never shown by `description`.
    public let detail: String?
    /// Whether retrying the same operation may succeed.
    public let isTransient: Bool
    /// The peer asked not to be retried before this (Retry-After, rate-limit reset).
    public let retryAfter: Duration?
    public let file: String
    public let line: Int

    public init(_ code: Code, _ message: String, detail: String? = nil, transient: Bool = false,
                retryAfter: Duration? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.detail = detail
        self.isTransient = transient
        self.retryAfter = retryAfter
        self.file = file
        self.line = line
    }

    public var description: String { "\(message) [\(code)]" }
    public var debugDescription: String {
        "\(description) at \(file):\(line)" + (detail.map { "\n\($0)" } ?? "")
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    public static func invalidOrganizationID(_ raw: String, file: String = #fileID, line: Int = #line) -> Self {
        .init(.invalidOrganizationID,
              "organization id \(quotedForMessage(raw)) is not valid: use 1-63 lowercase letters, digits and '-'",
              file: file, line: line)
    }

    public static func timeout(_ what: String, after: Duration, file: String = #fileID, line: Int = #line) -> Self {
        .init(.timeout, "\(what) timed out after \(after.formattedForHumans)", transient: true, file: file, line: line)
    }
}

extension Duration {
    /// `1.5s`, `250ms`, `2m`: the form definitions use.
    public var formattedForHumans: String {
        let ms = Int64(components.seconds) * 1000 + components.attoseconds / 1_000_000_000_000_000
        if ms % 3_600_000 == 0, ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}
