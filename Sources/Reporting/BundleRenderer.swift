import Cryptography
import Foundation
import Pipeline

/// Renders a run into a PDF report and a zip bundle for auditors, as files in the run's scratch
/// folder, to be stored under `{organization_id}/exports/`. Each evidence original streams from
/// the object store into the zip in pieces, its SHA-256 checked as it passes: an object changed in
/// storage fails the export, naming it. The export id is derived from the bundle's manifest, so
/// the same evidence and run clock give the same export, byte for byte.
public struct BundleRenderer: ReportRenderer {
    /// Pieces an original is read and written in; objects up to this size are read in one go.
    let chunkSize: Int
    let executor: BlockingExecutor

    public init(chunkSize: Int = 1 << 20, executor: BlockingExecutor = .shared) {
        self.chunkSize = chunkSize
        self.executor = executor
    }

    /// A small document of the bundle, made in memory when it is written (and once before, for
    /// its hash).
    enum Document {
        case results, readme
        case metadata(Evidence)
    }

    enum Source {
        case document(Document)
        case original(Evidence)
        case file(URL)
        case bytes(Data)
    }

    public func render(_ input: ReportInput, options: RenderOptions, objects: any ObjectStore, scratch: URL) async throws
        -> RenderedExport {
        let org = input.organization.id
        let pdf = scratch.appendingPathComponent(Residue.temporaryName("pdf"))
        let zip = scratch.appendingPathComponent(Residue.temporaryName("zip"))
        let executor = self.executor
        do {
            try await executor.run { try PDFReport(input: input, options: options).render(to: pdf) }
            let pdfHash = try await executor.run { try Self.hash(file: pdf) }

            // Every entry's hash and size, before the first is written: SHA256SUMS sorts first.
            var entries: [(path: String, source: Source, hash: String, size: Int)] = [
                ("report.pdf", .file(pdf), pdfHash.sha256, pdfHash.size),
            ]
            var seen = Set<String>()
            for evidence in input.evidence where seen.insert(evidence.id).inserted {
                entries.append(("evidence/\(evidence.id)/original.\(evidence.fileExtension)", .original(evidence),
                                evidence.sha256, evidence.size))
                let metadata = try document(.metadata(evidence), input)
                entries.append(("evidence/\(evidence.id)/metadata.json", .document(.metadata(evidence)),
                                try Digest.sha256Hex(metadata), metadata.count))
            }
            for (path, kind) in [("results.json", Document.results), ("README.txt", .readme)] {
                let data = try document(kind, input)
                entries.append((path, .document(kind), try Digest.sha256Hex(data), data.count))
            }
            let manifest = BundleManifest(input: input, files: entries.map { .init(path: $0.path, sha256: $0.hash, size: $0.size) })
            let manifestData = try manifest.json()
            let manifestFile = BundleManifest.File(path: "manifest.json", sha256: try Digest.sha256Hex(manifestData),
                                                   size: manifestData.count)
            let sums = manifest.sha256sums(including: [manifestFile])
            entries.append(("manifest.json", .bytes(manifestData), manifestFile.sha256, manifestData.count))
            entries.append(("SHA256SUMS", .bytes(sums), try Digest.sha256Hex(sums), sums.count))
            let exportID = "exp-" + String(try Digest.sha256Hex(manifestData).prefix(24))

            var out: [RenderedExport.File] = []
            if options.outputs.contains(.pdf) {
                out.append(.init(kind: .pdf, key: "\(org)/exports/\(exportID).pdf", file: pdf,
                                 contentType: "application/pdf", sha256: pdfHash.sha256, size: pdfHash.size))
            }
            if options.outputs.contains(.bundle) {
                let writer = try await executor.run { try ZipWriter(file: zip, modified: input.asOf) }
                for entry in entries.sorted(by: { $0.path < $1.path }) {
                    try Task.checkCancellation()
                    try await write(entry.path, entry.source, size: entry.size, to: writer, input: input, objects: objects)
                }
                try await executor.run { try writer.finish() }
                let zipHash = try await executor.run { try Self.hash(file: zip) }
                out.append(.init(kind: .bundle, key: "\(org)/exports/\(exportID).zip", file: zip,
                                 contentType: "application/zip", sha256: zipHash.sha256, size: zipHash.size))
            }
            return RenderedExport(id: exportID, files: out)
        } catch {
            try? await executor.run {
                try? FileManager.default.removeItem(at: pdf)
                try? FileManager.default.removeItem(at: zip)
            }
            throw error
        }
    }

    /// Writes one entry, streaming an original from the object store and checking its hash.
    private func write(_ path: String, _ source: Source, size: Int, to writer: ZipWriter, input: ReportInput,
                       objects: any ObjectStore) async throws {
        let executor = self.executor
        switch source {
        case .bytes(let data):
            try await executor.run { try writer.add(path: path, data: data) }
        case .document(let kind):
            let data = try document(kind, input)
            try await executor.run { try writer.add(path: path, data: data) }
        case .file(let file):
            try await executor.run { try writer.beginEntry(path: path, size: size) }
            try await readFileInChunks(file, chunkSize: chunkSize, executor: executor) { chunk in
                try await executor.run { try writer.write(chunk) }
            }
            try await executor.run { try writer.endEntry() }
        case .original(let evidence):
            let hasher = try SHA256Hasher()
            var received = 0
            try await executor.run { try writer.beginEntry(path: path, size: evidence.size) }
            do {
                try await objects.read(evidence.originalKey, chunkSize: chunkSize) { chunk in
                    received += chunk.count
                    guard received <= evidence.size else { throw Self.changed(evidence) }
                    try await executor.run {
                        try hasher.update(chunk)
                        try writer.write(chunk)
                    }
                }
            } catch let error as PipelineError where error[.httpStatus] == "404" {
                throw PipelineError(.storage, "evidence object \(evidence.originalKey) is missing from storage; the export was not made",
                                    fields: error.fields)
            }
            guard received == evidence.size, Digest.hex(try hasher.finalize()) == evidence.sha256 else {
                throw Self.changed(evidence)
            }
            try await executor.run { try writer.endEntry() }
        }
    }

    static func changed(_ evidence: Evidence) -> PipelineError {
        PipelineError(.storage, "evidence object \(evidence.originalKey) does not match its recorded SHA-256 (\(evidence.sha256.prefix(12))…, \(evidence.size) bytes): it was changed in storage; the export was not made")
    }

    func document(_ kind: Document, _ input: ReportInput) throws -> Data {
        switch kind {
        case .metadata(let evidence): return try evidence.canonicalJSON()
        case .readme: return Data(readme(input).utf8)
        case .results:
            do {
                return try JSONEncoder.canonical.encode(ResultsDocument(input: input))
            } catch {
                throw PipelineError(.render, "cannot encode results.json: \(error)")
            }
        }
    }

    static func hash(file: URL) throws -> (sha256: String, size: Int) {
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw PipelineError(.render, "cannot read \(file.path)")
        }
        defer { try? handle.close() }
        let hasher = try SHA256Hasher()
        var size = 0
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            try hasher.update(chunk)
            size += chunk.count
        }
        return (Digest.hex(try hasher.finalize()), size)
    }

    func readme(_ input: ReportInput) -> String {
        """
        Lightsail evidence bundle
        =========================

        Organization: \(input.organization.name) (\(input.organization.id))
        Pipeline:     \(input.pipeline)
        Evidence as of \(Timestamp.iso8601(input.asOf)); period from \(Timestamp.day(input.periodStart)).

        Contents
          report.pdf                         the compliance report
          results.json                       every check result, control status and score
          evidence/<id>/original.<ext>       each piece of evidence exactly as the API answered
          evidence/<id>/metadata.json        where it came from, when, and its SHA-256
          manifest.json                      every file above with its SHA-256 and size
          SHA256SUMS                         the same hashes, for sha256sum

        Checking the bundle needs nothing but standard tools. In the unzipped folder:

          sha256sum -c SHA256SUMS

        Every line must say OK. Each evidence id is the SHA-256 of the evidence's identity
        (organization, source, operation, resource, request, status and content hash); the
        `sha256` in metadata.json is the hash of original.<ext>:

          sha256sum evidence/<id>/original.*

        """
    }
}

/// `results.json`: what the report says, for machines.
struct ResultsDocument: Encodable {
    let organizationID: String
    let asOf: Date
    let overall: String
    let scores: [FrameworkScore]
    let checks: [CheckResult]
    let notCollected: [CollectionFailure]

    init(input: ReportInput) {
        organizationID = input.organization.id.rawValue
        asOf = input.asOf
        overall = input.scores.percentText
        scores = input.scores.frameworks
        checks = input.results
        notCollected = input.failures.sorted { ($0.operation, $0.resource, $0.reason) < ($1.operation, $1.resource, $1.reason) }
    }

    enum CodingKeys: String, CodingKey {
        case overall, scores, checks
        case organizationID = "organization_id"
        case asOf = "as_of"
        case notCollected = "not_collected"
    }
}
