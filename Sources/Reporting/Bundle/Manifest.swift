import Cryptography
import Foundation
import Pipeline

/// The bundle's table of contents, signed: every file with its SHA-256 and size; every evidence
/// item with where and when it was collected; what made the bundle (program, definition, catalog,
/// framework versions); and the link to the organization's export before it.
public struct BundleManifest: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        public let path: String
        public let sha256: String
        public let size: Int
    }

    /// One evidence item: its identity, its clock, and its original's path and hash in the bundle.
    public struct EvidenceItem: Codable, Sendable, Equatable {
        public let id: String
        public let source: String
        public let operation: String
        public let resource: String
        public let collectedAt: String
        public let freshUntil: String
        public let original: String
        public let sha256: String
        public let size: Int

        enum CodingKeys: String, CodingKey {
            case id, source, operation, resource, original, sha256, size
            case collectedAt = "collected_at"
            case freshUntil = "fresh_until"
        }
    }

    public struct Catalog: Codable, Sendable, Equatable {
        public let sha256: String?
        public let files: [Provenance.FileDigest]
    }

    public let format: String
    public let generator: String
    public let organizationID: String
    public let organizationName: String
    public let pipeline: String
    public let asOf: String
    public let periodStart: String
    public let definition: Provenance.FileDigest?
    public let catalog: Catalog
    public let frameworks: [Provenance.FrameworkVersion]
    public let evidence: [EvidenceItem]
    public let files: [File]
    /// The organization's export before this one: its id and its manifest's SHA-256.
    public let previous: ExportLink?
    /// The fingerprint of the key whose signature is `manifest.json.sig`, when signed.
    public let signer: String?

    enum CodingKeys: String, CodingKey {
        case format, generator, pipeline, definition, catalog, frameworks, evidence, files, previous, signer
        case organizationID = "organization_id"
        case organizationName = "organization_name"
        case asOf = "as_of"
        case periodStart = "period_start"
    }

    static let formatName = "lightsail-bundle/2"
    /// Files a bundle holds beside those the manifest lists: the manifest itself, its signature and
    /// `SHA256SUMS` (which lists the manifest too).
    public static let unlisted: Set<String> = ["manifest.json", "manifest.json.sig", "SHA256SUMS"]

    /// The export id a manifest of this SHA-256 gives its bundle.
    public static func exportID(manifestSHA256: String) -> String { "exp-" + String(manifestSHA256.prefix(24)) }
}

/// Writes a bundle's `manifest.json` (as `BundleManifest` reads it) and `SHA256SUMS` from the
/// run's input, item by item: the evidence is described straight from the input, never copied.
struct ManifestWriter {
    let input: ReportInput
    /// Sorted by path.
    let files: [BundleManifest.File]
    let signer: String?

    init(input: ReportInput, files: [BundleManifest.File], signer: String?) {
        self.input = input
        self.files = files.sorted { $0.path < $1.path }
        self.signer = signer
    }

    /// Canonical JSON (keys sorted, two-space indent), written member by member in pieces: a bundle
    /// can list tens of thousands of files and evidence items.
    func write(_ piece: ([UInt8]) throws -> Void) throws {
        let provenance = input.context.provenance
        try withoutActuallyEscaping(piece) { piece in
            var json = JSONStream(piece)
            func digest(_ file: Provenance.FileDigest) -> JSONValue {
                .object(["path": .string(file.path), "sha256": .string(file.sha256)])
            }
            json.beginObject()
            try json.member("as_of", .string(Timestamp.iso8601(input.asOf)))
            try json.member("catalog", .object(["sha256": provenance.catalogSHA256.map(JSONValue.string) ?? .null,
                                                "files": .array(provenance.catalogFiles.map(digest))]))
            try json.member("definition", provenance.definition.map(digest) ?? .null)
            json.key("evidence")
            json.beginArray()
            // Each item once, by id (the order is the index's, sorted here through their positions).
            var seen = Set<String>()
            let order = input.evidence.indices.filter { seen.insert(input.evidence[$0].id).inserted }
                .sorted { input.evidence[$0].id < input.evidence[$1].id }
            for index in order {
                let item = input.evidence[index]
                try json.value(.object(["id": .string(item.id), "source": .string(item.source), "operation": .string(item.operation),
                                        "resource": .string(item.resource), "collected_at": .string(Timestamp.iso8601(item.collectedAt)),
                                        "fresh_until": .string(Timestamp.iso8601(item.freshUntil)),
                                        "original": .string("evidence/\(item.id)/original.\(item.fileExtension)"),
                                        "sha256": .string(item.sha256), "size": .number(Double(item.size))]))
            }
            json.endArray()
            json.key("files")
            json.beginArray()
            for file in files {
                try json.value(.object(["path": .string(file.path), "sha256": .string(file.sha256), "size": .number(Double(file.size))]))
            }
            json.endArray()
            try json.member("format", .string(BundleManifest.formatName))
            try json.member("frameworks", .array(provenance.frameworks.map { framework in
                .object(["id": .string(framework.id), "title": .string(framework.title), "version": .string(framework.version)])
            }))
            try json.member("generator", .string(provenance.generator))
            try json.member("organization_id", .string(input.organization.id.rawValue))
            try json.member("organization_name", .string(input.organization.name))
            try json.member("period_start", .string(Timestamp.iso8601(input.periodStart)))
            try json.member("pipeline", .string(input.pipeline))
            try json.member("previous", input.context.previousExport.map { .object(["id": .string($0.id), "manifest_sha256": .string($0.manifestSHA256)]) } ?? .null)
            try json.member("signer", signer.map(JSONValue.string) ?? .null)
            json.endObject()
            try json.finish()
        }
    }

    /// `sha256sum -c` input: `<hash>  <path>` lines of the manifest's files and `extra`, in pieces.
    func writeSHA256SUMS(including extra: [BundleManifest.File], _ piece: ([UInt8]) throws -> Void) throws {
        var out: [UInt8] = []
        for file in (files + extra).sorted(by: { $0.path < $1.path }) {
            out.append(contentsOf: "\(file.sha256)  \(file.path)\n".utf8)
            if out.count >= 1 << 16 {
                try piece(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        try piece(out)
    }
}
