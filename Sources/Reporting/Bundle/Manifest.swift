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

    init(input: ReportInput, files: [File]) {
        format = Self.formatName
        organizationID = input.organization.id.rawValue
        organizationName = input.organization.name
        pipeline = input.pipeline
        asOf = Timestamp.iso8601(input.asOf)
        periodStart = Timestamp.iso8601(input.periodStart)
        self.files = files.sorted { $0.path < $1.path }
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            return try encoder.encode(self) + Data("\n".utf8)
        } catch {
            throw PipelineError(.render, "cannot encode the bundle manifest: \(error)")
        }
    }

    /// `sha256sum -c` input: `<hash>  <path>` lines, the manifest's files and `extra`.
    func sha256sums(including extra: [File]) -> Data {
        let all = (files + extra).sorted { $0.path < $1.path }
        return Data(all.map { "\($0.sha256)  \($0.path)\n" }.joined().utf8)
    }
}
