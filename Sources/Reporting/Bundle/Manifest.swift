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
    /// The fingerprint of the key whose signature is `manifest.json.sig`, when signed.
    public let signer: String?

    enum CodingKeys: String, CodingKey {
        case format, pipeline, files
        case organizationID = "organization_id"
        case organizationName = "organization_name"
        case asOf = "as_of"
        case periodStart = "period_start"
        case signer
    }

    static let formatName = "lightsail-bundle/1"

    init(input: ReportInput, files: [File], signer: String? = nil) {
        self.signer = signer
        format = Self.formatName
        organizationID = input.organization.id.rawValue
        organizationName = input.organization.name
        pipeline = input.pipeline
        asOf = Timestamp.iso8601(input.asOf)
        periodStart = Timestamp.iso8601(input.periodStart)
        self.files = files.sorted { $0.path < $1.path }
    }

    /// Canonical JSON, written entry by entry in pieces (a bundle can list tens of thousands of
    /// files).
    func write(_ piece: ([UInt8]) throws -> Void) throws {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 16)
        func flush(force: Bool = false) throws {
            if force || out.count >= 1 << 16 {
                try piece(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        func member(_ key: String, _ value: String, last: Bool = false) {
            out.append(contentsOf: "  ".utf8)
            JSONValue.writeString(key, into: &out)
            out.append(contentsOf: " : ".utf8)
            JSONValue.writeString(value, into: &out)
            out.append(contentsOf: (last ? "\n" : ",\n").utf8)
        }
        out.append(contentsOf: "{\n".utf8)
        member("as_of", asOf)
        out.append(contentsOf: "  \"files\" : [".utf8)
        for (index, file) in files.enumerated() {
            out.append(contentsOf: (index == 0 ? "\n    " : ",\n    ").utf8)
            JSONValue.object(["path": .string(file.path), "sha256": .string(file.sha256), "size": .number(Double(file.size))])
                .write(into: &out, indent: 2)
            try flush()
        }
        out.append(contentsOf: (files.isEmpty ? "],\n" : "\n  ],\n").utf8)
        member("format", format)
        member("organization_id", organizationID)
        member("organization_name", organizationName)
        member("period_start", periodStart)
        member("pipeline", pipeline, last: signer == nil)
        if let signer { member("signer", signer, last: true) }
        out.append(contentsOf: "}\n".utf8)
        try flush(force: true)
    }

    /// `sha256sum -c` input: `<hash>  <path>` lines of the manifest's files and `extra`, in pieces.
    func writeSHA256SUMS(including extra: [File], _ piece: ([UInt8]) throws -> Void) throws {
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
