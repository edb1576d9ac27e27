import Foundation

/// This program, as a bundle's manifest names it.
public enum Generator {
    public static let name = "lightsail-pipeline"
    public static let version = "0.9.0"
    public static var description: String { "\(name) \(version)" }
}

/// What a run's report was made from, for the bundle's manifest: the program, the definition's and
/// the catalog's SHA-256, and each framework's version. The runner fills it in (it reads the files);
/// a run without it (a test) says "unknown".
public struct Provenance: Sendable, Hashable {
    /// A file by its path relative to the definitions folder and the SHA-256 of its bytes.
    public struct FileDigest: Sendable, Hashable, Codable {
        public let path: String
        public let sha256: String

        public init(path: String, sha256: String) {
            self.path = path
            self.sha256 = sha256
        }
    }

    public struct FrameworkVersion: Sendable, Hashable, Codable {
        public let id: String
        public let title: String
        public let version: String

        public init(id: String, title: String, version: String) {
            self.id = id
            self.title = title
            self.version = version
        }
    }

    public let generator: String
    public let definition: FileDigest?
    /// The SHA-256 of the catalog's `sha256sum` listing: its files' `<sha256>  <path>` lines in
    /// path order (`sha256sum checks/*.yml frameworks/*.yml | sha256sum` in the definitions folder).
    public let catalogSHA256: String?
    public let catalogFiles: [FileDigest]
    public let frameworks: [FrameworkVersion]

    public init(generator: String = Generator.description, definition: FileDigest?, catalogSHA256: String?,
                catalogFiles: [FileDigest], frameworks: [FrameworkVersion]) {
        self.generator = generator
        self.definition = definition
        self.catalogSHA256 = catalogSHA256
        self.catalogFiles = catalogFiles.sorted { $0.path < $1.path }
        self.frameworks = frameworks.sorted { $0.id < $1.id }
    }

    /// A run that was not told (tests, benchmarks of one stage): the program only.
    public static let unknown = Provenance(definition: nil, catalogSHA256: nil, catalogFiles: [], frameworks: [])

    /// The catalog's `sha256sum` listing (what `catalogSHA256` hashes).
    public static func catalogListing(_ files: [FileDigest]) -> String {
        files.sorted { $0.path < $1.path }.map { "\($0.sha256)  \($0.path)\n" }.joined()
    }
}

/// The export before this one, which a bundle's manifest links to: its id and the SHA-256 of its
/// `manifest.json`.
public struct ExportLink: Sendable, Hashable, Codable {
    public let id: String
    public let manifestSHA256: String

    public init(id: String, manifestSHA256: String) {
        self.id = id
        self.manifestSHA256 = manifestSHA256
    }

    enum CodingKeys: String, CodingKey {
        case id
        case manifestSHA256 = "manifest_sha256"
    }
}

/// An export as the store lists it, for `pipeline exports list`.
public struct ExportSummary: Sendable, Hashable, Codable {
    public let id: String
    public let runID: String
    public let pipeline: String
    public let asOf: Date
    public let createdAt: Date
    public let artifacts: [Artifact]

    public init(id: String, runID: String, pipeline: String, asOf: Date, createdAt: Date, artifacts: [Artifact]) {
        self.id = id
        self.runID = runID
        self.pipeline = pipeline
        self.asOf = asOf
        self.createdAt = createdAt
        self.artifacts = artifacts
    }

    /// The chain link to this export, when it recorded its manifest.
    public var link: ExportLink? {
        artifacts.first { $0.kind == .manifest }.map { ExportLink(id: id, manifestSHA256: $0.sha256) }
    }

    enum CodingKeys: String, CodingKey {
        case id, pipeline, artifacts
        case runID = "run_id"
        case asOf = "as_of"
        case createdAt = "created_at"
    }
}

/// What else a report shows beside the run's results: where it came from, the export it follows,
/// the score's trend, the exceptions in force, what changed, and the catalog's words for each check.
public struct ReportContext: Sendable {
    public var provenance: Provenance
    public var previousExport: ExportLink?
    /// Framework scores of earlier runs, newest first.
    public var history: [ScoreRecord]
    public var exceptions: [RiskException]
    public var changes: RunChanges?
    /// The catalog's entries for the checks (severity, description, remediation), by id.
    public var checks: [String: Catalog.CheckSpec]

    public init(provenance: Provenance = .unknown, previousExport: ExportLink? = nil, history: [ScoreRecord] = [],
                exceptions: [RiskException] = [], changes: RunChanges? = nil, checks: [String: Catalog.CheckSpec] = [:]) {
        self.provenance = provenance
        self.previousExport = previousExport
        self.history = history
        self.exceptions = exceptions
        self.changes = changes
        self.checks = checks
    }
}
