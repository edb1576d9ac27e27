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
        /// A source refused the integration's credentials (401, a token exchange refused).
        public static let authentication = Code(name: "authentication")
        /// An integration failed as a whole; the run went on without it.
        public static let integration = Code(name: "integration")
        /// A user's mistake in what they asked (an unknown member, a file that is not there): exit 2.
        public static let invalidInput = Code(name: "invalid-input")
    }

    /// A structured fact about the failure that callers branch on (never the message text).
    public struct Field: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public init(_ name: String) { self.name = name }

        /// PostgreSQL's SQLSTATE (`23505` unique violation, `57014` query cancelled).
        public static let sqlState = Field("sqlstate")
        public static let serverMessage = Field("server.message")
        public static let serverDetail = Field("server.detail")
        public static let serverHint = Field("server.hint")
        public static let serverConstraint = Field("server.constraint")
        /// HTTP status of the answer that failed.
        public static let httpStatus = Field("http.status")
        /// S3's error code (`SignatureDoesNotMatch`, `SlowDown`, `NoSuchKey`).
        public static let s3Code = Field("s3.code")
        /// libcurl's result code.
        public static let curlCode = Field("curl.code")
        /// The evidence an integrity failure is about, and what was wrong with its stored object
        /// (`changed`, `missing`).
        public static let evidenceID = Field("evidence.id")
        public static let integrity = Field("evidence.integrity")
    }

    public let code: Code
    public let message: String
    /// Structured facts (SQLSTATE, HTTP status, S3 error code); safe to print, never secrets.
    public let fields: [Field: String]
    /// Detail for debugging (may include raw peer output); never shown by `description`.
    public let detail: String?
    /// Whether retrying the same operation may succeed.
    public let isTransient: Bool
    /// The peer asked not to be retried before this (Retry-After, rate-limit reset).
    public let retryAfter: Duration?
    public let file: String
    public let line: Int

    public init(_ code: Code, _ message: String, detail: String? = nil, fields: [Field: String] = [:],
                transient: Bool = false, retryAfter: Duration? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.fields = fields
        self.detail = detail
        self.isTransient = transient
        self.retryAfter = retryAfter
        self.file = file
        self.line = line
    }

    public subscript(field: Field) -> String? { fields[field] }

    public var description: String { "\(message) [\(code)]" }
    /// The description with where it was made, the structured fields and the detail: for
    /// `--log-level debug`.
    public var debugDescription: String {
        let facts = fields.sorted { $0.key.name < $1.key.name }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(description) at \(file):\(line)" + (facts.isEmpty ? "" : " (\(facts))") + (detail.map { "\n\($0)" } ?? "")
    }

    /// The same error with more facts, a different message or transience.
    public func with(fields more: [Field: String] = [:], message: String? = nil) -> PipelineError {
        PipelineError(code, message ?? self.message, detail: detail, fields: fields.merging(more) { _, new in new },
                      transient: isTransient, retryAfter: retryAfter, file: file, line: line)
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
