import Cryptography
import Foundation
import Pipeline

/// The bundle's table of contents: every file with its SHA-256 and size, sorted by path.
public struct BundleManifest: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        public let path: String
        public let sha256: String
        public let size: Int
    }

    public let format: String
    public let organizationID: String
    public let organizationName: String
    public let pipeline: String
    public let asOf: String
    public let periodStart: String
    public let files: [File]

    enum CodingKeys: String, CodingKey {
        case format, pipeline, files
        case organizationID = "organization_id"
        case organizationName = "organization_name"
        case asOf = "as_of"
        case periodStart = "period_start"
    }

    static let formatName = "lightsail-bundle/1"

    init(input: ReportInput, files: [(String, Data)]) {
        format = Self.formatName
        organizationID = input.organization.id.rawValue
        organizationName = input.organization.name
        pipeline = input.pipeline
        asOf = Timestamp.iso8601(input.asOf)
        periodStart = Timestamp.iso8601(input.periodStart)
        self.files = files.map { File(path: $0.0, sha256: Digest.sha256Hex($0.1), size: $0.1.count) }
            .sorted { $0.path < $1.path }
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// `sha256sum -c` input: `<hash>  <path>` lines.
    func sha256sums(including extra: [(String, Data)]) -> Data {
        let all = files.map { ($0.path, $0.sha256) } + extra.map { ($0.0, Digest.sha256Hex($0.1)) }
        return Data(all.sorted { $0.0 < $1.0 }.map { "\($0.1)  \($0.0)\n" }.joined().utf8)
    }
}
