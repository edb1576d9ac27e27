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

    /// Signs each bundle's manifest (`manifest.json.sig`), when given.
    let signingKey: SigningKey?

    public init(chunkSize: Int = 1 << 20, executor: BlockingExecutor = .shared, signingKey: SigningKey? = nil) {
        self.signingKey = signingKey
        self.chunkSize = chunkSize
        self.executor = executor
    }

    /// Where an entry's bytes come from when it is written.
    enum Source {
        /// Bytes already in memory (the report's text, the documents).
        case text(Data)
        /// `metadata.json` of the input's evidence at this index, made again when written.
        case metadata(Int)
        /// The original of the input's evidence at this index, streamed from the object store.
        case original(Int)
        case file(URL)
    }

    struct Entry {
        let source: Source
        let file: BundleManifest.File
    }

    public func render(_ input: ReportInput, options: RenderOptions, objects: any ObjectStore, scratch: URL) async throws
        -> RenderedExport {
        let org = input.organization.id
        let names = ["pdf", "zip", "results", "manifest", "sums", "oscal", "zip-1", "zip-2", "zip-3"]
            .map { scratch.appendingPathComponent(Residue.temporaryName($0)) }
        let (pdf, zip, results, manifestFile, sumsFile, oscal) = (names[0], names[1], names[2], names[3], names[4], names[5])
        let executor = self.executor
        let bundle = options.outputs.contains(.bundle)
        let positions = ReportInput.positions(of: input.evidence)
        do {
            // The PDF is drawn on a thread of its own while the evidence streams into the zip.
            async let report: (transcript: [String], hash: (sha256: String, size: Int)) = executor.run {
                let transcript = try PDFReport(input: input, options: options, positions: positions).render(to: pdf)
                return (transcript, try Self.hash(file: pdf))
            }
            var originals = try await executor.run {
                try Self.evidenceEntries(input.evidence, hashMetadata: !bundle).sorted { $0.file.path < $1.file.path }
            }
            // The zip in order: the evidence, the documents that need no PDF, the report, the
            // manifest, its signature and SHA256SUMS. Deflating is most of a bundle's time, so a
            // large bundle is written as four parts at once (the evidence's two halves, the early
            // documents, the rest), each by its own writer, joined at the end (`ZipJoin`): the
            // bytes one writer makes. A small or a very large bundle has one writer.
            let (firstHalf, secondHalf) = Self.halves(originals)
            let parallel = bundle && !firstHalf.isEmpty
            let partFiles = parallel ? [zip] + names[6...8] : [zip]
            let parts: [ZipWriter] = bundle
                ? try await executor.run { try partFiles.map { try ZipWriter(file: $0, modified: input.asOf) } } : []
            let part = { (n: Int) in parts[min(n, parts.count - 1)] }

            // results.json, the OSCAL document, controls.csv and VERIFY.md, made on another thread
            // meanwhile (results.json lists every evidence id of every check, and the OSCAL
            // document every evidence item of every observation: each is written in pieces).
            async let early = earlyDocuments(input, positions: positions, results: results, oscal: oscal,
                                             into: parallel ? parts[2] : nil, objects: objects)
            if bundle {
                // Each metadata.json is made, hashed and written in one go; the manifest lists it so.
                async let firstHashed = write(firstHalf, to: parts[0], input: input, objects: objects)
                var hashed = try await write(secondHalf, to: part(1), input: input, objects: objects)
                hashed.merge(try await firstHashed) { _, new in new }
                originals = originals.map { entry in hashed[entry.file.path].map { Entry(source: entry.source, file: $0) } ?? entry }
                if let unhashed = originals.first(where: { $0.file.sha256.isEmpty }) {
                    throw PipelineError(.render, "\(unhashed.file.path) was not hashed as it was written")
                }
            }
            let earlyEntries = try await early
            if bundle && !parallel { try await write(earlyEntries, to: parts[0], input: input, objects: objects) }

            let (transcript, pdfHash) = try await report
            // The report's text, unwrapped: for auditors' tools, and for `pipeline verify` (the
            // PDF's bytes and line breaks follow the machine's fonts; its words do not).
            let text = Data((transcript.joined(separator: "\n") + "\n").utf8)
            var last = [Entry(source: .file(pdf), file: .init(path: "report.pdf", sha256: pdfHash.sha256, size: pdfHash.size)),
                        Entry(source: .text(text), file: .init(path: "report.txt", sha256: try Digest.sha256Hex(text), size: text.count))]
            let documents = (earlyEntries + last).sorted { $0.file.path < $1.file.path }
            let manifest = ManifestWriter(input: input, files: (originals + documents).map(\.file), signer: signingKey?.publicKey.fingerprint)
            let manifestHash = try await executor.run { try HashingFile.write(manifestFile) { try manifest.write($0) } }
            let manifestEntry = BundleManifest.File(path: "manifest.json", sha256: manifestHash.sha256, size: manifestHash.size)
            last.append(Entry(source: .file(manifestFile), file: manifestEntry))
            // The manifest's Ed25519 signature: `openssl pkeyutl -verify -pubin -inkey public.pem -rawin
            // -in manifest.json -sigfile manifest.json.sig` checks it with the exported public key.
            if let signingKey {
                // Pure Ed25519 reads the message twice: the manifest is mapped, not copied onto the heap.
                let signature = try await executor.run { Data(try signingKey.sign(try Data(contentsOf: manifestFile, options: .alwaysMapped))) }
                last.append(Entry(source: .text(signature), file: .init(path: "manifest.json.sig", sha256: try Digest.sha256Hex(signature),
                                                                        size: signature.count)))
            }
            let sumsHash = try await executor.run {
                try HashingFile.write(sumsFile) { try manifest.writeSHA256SUMS(including: [manifestEntry], $0) }
            }
            last.append(Entry(source: .file(sumsFile), file: .init(path: "SHA256SUMS", sha256: sumsHash.sha256, size: sumsHash.size)))
            let exportID = BundleManifest.exportID(manifestSHA256: manifestHash.sha256)

            var out: [RenderedExport.File] = []
            if options.outputs.contains(.pdf) {
                out.append(.init(kind: .pdf, key: "\(org)/exports/\(exportID).pdf", file: pdf,
                                 contentType: "application/pdf", sha256: pdfHash.sha256, size: pdfHash.size))
            }
            if bundle {
                try await write(last, to: part(3), input: input, objects: objects)
                try await executor.run {
                    for writer in parts { try writer.finish() }
                    for file in partFiles.dropFirst() {
                        try ZipJoin.append(file, to: zip)
                        try FileManager.default.removeItem(at: file)
                    }
                }
                let zipHash = try await executor.run { try Self.hash(file: zip) }
                out.append(.init(kind: .bundle, key: "\(org)/exports/\(exportID).zip", file: zip,
                                 contentType: "application/zip", sha256: zipHash.sha256, size: zipHash.size))
                // Kept beside the bundle: the next export's manifest links to this one by its hash.
                out.append(.init(kind: .manifest, key: "\(org)/exports/\(exportID).manifest.json", file: manifestFile,
                                 contentType: "application/json", sha256: manifestHash.sha256, size: manifestHash.size))
            }
            try await executor.run {
                for file in [results, sumsFile, oscal] { try? FileManager.default.removeItem(at: file) }
                if !bundle { try? FileManager.default.removeItem(at: manifestFile) }
            }
            return RenderedExport(id: exportID, files: out)
        } catch {
            try? await executor.run {
                for file in names { try? FileManager.default.removeItem(at: file) }
            }
            throw error
        }
    }

    /// Each distinct evidence item's original (its recorded hash and size) and `metadata.json`
    /// (hashed here when `hashMetadata`, else as it is written: see `write`).
    static func evidenceEntries(_ evidence: [Evidence], hashMetadata: Bool) throws -> [Entry] {
        var entries: [Entry] = []
        entries.reserveCapacity(evidence.count * 2)
        var seen = Set<String>()
        for (index, item) in evidence.enumerated() where seen.insert(item.id).inserted {
            let folder = "evidence/\(item.id)/"
            entries.append(Entry(source: .original(index), file: .init(path: folder + "original.\(item.fileExtension)",
                                                                       sha256: item.sha256, size: item.size)))
            var file = BundleManifest.File(path: folder + "metadata.json", sha256: "", size: 0)
            if hashMetadata {
                let metadata = item.canonicalJSON()
                file = .init(path: file.path, sha256: try Digest.sha256Hex(metadata), size: metadata.count)
            }
            entries.append(Entry(source: .metadata(index), file: file))
        }
        return entries
    }

    /// The documents that need no PDF, in their order in the zip, written into `part` when given.
    private func earlyDocuments(_ input: ReportInput, positions: [String: Int], results: URL, oscal: URL, into part: ZipWriter?,
                                objects: any ObjectStore) async throws -> [Entry] {
        let (resultsHash, oscalHash) = try await executor.run {
            let resultsHash = try HashingFile.write(results) { try ResultsDocument(input: input).write($0) }
            return (resultsHash, try HashingFile.write(oscal) { try BundleDocuments.writeOSCAL(input, positions: positions, $0) })
        }
        var documents = [Entry(source: .file(results), file: .init(path: "results.json", sha256: resultsHash.sha256, size: resultsHash.size)),
                         Entry(source: .file(oscal), file: .init(path: "assessment-results.json", sha256: oscalHash.sha256,
                                                                 size: oscalHash.size))]
        for (path, data) in [("VERIFY.md", BundleDocuments.verify(input, signer: signingKey?.publicKey)),
                             ("controls.csv", BundleDocuments.controlsCSV(input))] {
            documents.append(Entry(source: .text(data), file: .init(path: path, sha256: try Digest.sha256Hex(data), size: data.count)))
        }
        documents.sort { $0.file.path < $1.file.path }
        if let part { try await write(documents, to: part, input: input, objects: objects) }
        return documents
    }

    /// The evidence entries cut in two where half their bytes are written, for two writers; the
    /// first half empty (one writer) when the evidence is small or so large that the joined zip
    /// could need zip64. A rule of the evidence alone, so the bundle's bytes never depend on the
    /// machine (and the joined zip has the bytes one writer would make anyway).
    static func halves(_ entries: [Entry]) -> (first: [Entry], second: [Entry]) {
        let total = entries.reduce(0) { $0 + $1.file.size }
        guard total >= 8 << 20, total < 1 << 30, entries.count < 40_000 else { return ([], entries) }
        var bytes = 0
        let cut = entries.firstIndex { entry in
            bytes += entry.file.size
            return bytes >= total / 2
        } ?? entries.count
        return (Array(entries[..<cut]), Array(entries[cut...]))
    }

    /// Writes the entries in order. Small ones go in runs: their originals fetched a few at once,
    /// then the run written (and checked) in one job, so twenty thousand small entries cost a few
    /// hundred trips to the executor, not sixty thousand. Large ones stream alone.
    /// Returns the files of the `metadata.json` entries, hashed as they were made.
    @discardableResult
    private func write(_ entries: [Entry], to writer: ZipWriter, input: ReportInput, objects: any ObjectStore) async throws
        -> [String: BundleManifest.File] {
        var hashed: [String: BundleManifest.File] = [:]
        let executor = self.executor
        var run: [Entry] = []
        var runBytes = 0
        // The run being written while the next one is fetched and checked: the compressor waits
        // for neither the disk nor the hashing.
        var writing: Task<Void, any Error>?
        func settle() async throws {
            guard let task = writing else { return }
            writing = nil
            try await task.value
        }
        func flush() async throws {
            guard !run.isEmpty else { return }
            try Task.checkCancellation()
            let batch = run
            run.removeAll()
            runBytes = 0
            let fetched = try await mapConcurrently(batch.indices, width: 8) { index -> Data? in
                switch batch[index].source {
                case .original(let item):
                    let evidence = input.evidence[item]
                    let data: Data
                    do {
                        data = try await objects.get(evidence.originalKey)
                    } catch let error as PipelineError where error[.httpStatus] == "404" {
                        throw Self.missing(evidence, error)
                    }
                    guard data.count == evidence.size, try Digest.sha256Hex(data) == evidence.sha256 else { throw Self.changed(evidence) }
                    return data
                case .text(let data): return data
                case .metadata(let item): return input.evidence[item].canonicalJSON()
                case .file: return nil
                }
            }
            for (index, entry) in batch.enumerated() {
                if case .metadata = entry.source, let data = fetched[index] {
                    hashed[entry.file.path] = .init(path: entry.file.path, sha256: try Digest.sha256Hex(data), size: data.count)
                }
            }
            try await settle()
            writing = Task {
                try await executor.run {
                    for (index, entry) in batch.enumerated() {
                        if let data = fetched[index] { try writer.add(path: entry.file.path, data: data) }
                    }
                }
            }
        }
        do {
            for entry in entries {
                switch entry.source {
                case .original(let item) where input.evidence[item].size > chunkSize:
                    try await flush()
                    try await settle()
                    try await write(entry, to: writer, input: input, objects: objects)
                case .file:
                    try await flush()
                    try await settle()
                    try await write(entry, to: writer, input: input, objects: objects)
                default:
                    run.append(entry)
                    runBytes += entry.file.size
                    if run.count >= 128 || runBytes >= 4 << 20 { try await flush() }
                }
            }
            try await flush()
            try await settle()
            return hashed
        } catch {
            // Nothing may still write into the zip once this returns.
            _ = try? await writing?.value
            throw error
        }
    }

    /// Writes one large entry, streaming a file or an original from the object store (checking
    /// its hash as it passes).
    private func write(_ entry: Entry, to writer: ZipWriter, input: ReportInput, objects: any ObjectStore) async throws {
        let executor = self.executor
        let path = entry.file.path
        switch entry.source {
        case .metadata, .text:
            throw PipelineError(.render, "\(path) is written with the small entries")
        case .file(let file):
            try await executor.run { try writer.beginEntry(path: path, size: entry.file.size) }
            try await readFileInChunks(file, chunkSize: chunkSize, executor: executor) { chunk in
                try await executor.run { try writer.write(chunk) }
            }
            try await executor.run { try writer.endEntry() }
        case .original(let index):
            let evidence = input.evidence[index]
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
                throw Self.missing(evidence, error)
            }
            guard received == evidence.size, Digest.hex(try hasher.finalize()) == evidence.sha256 else {
                throw Self.changed(evidence)
            }
            try await executor.run { try writer.endEntry() }
        }
    }

    static func missing(_ evidence: Evidence, _ error: PipelineError) -> PipelineError {
        PipelineError(.storage, "evidence object \(evidence.originalKey) is missing from storage; the export was not made",
                      fields: error.fields.merging([.evidenceID: evidence.id, .integrity: "missing"]) { _, new in new })
    }

    static func changed(_ evidence: Evidence) -> PipelineError {
        PipelineError(.storage, "evidence object \(evidence.originalKey) does not match its recorded SHA-256 (\(evidence.sha256.prefix(12))…, \(evidence.size) bytes): it was changed in storage; the export was not made",
                      fields: [.evidenceID: evidence.id, .integrity: "changed"])
    }

    /// Hash and size of a file, read in pieces.
    static func hash(file: URL) throws -> (sha256: String, size: Int) {
        let (digest, size) = try Digest.sha256(file: file, code: .render)
        return (Digest.hex(digest), size)
    }
}

/// `results.json`: what the report says, for machines.
struct ResultsDocument {
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

    /// The canonical JSON of the document, element by element: each check and each criterion is
    /// encoded alone, so the thousands of evidence ids of a large organization never make one tree.
    func write(_ piece: ([UInt8]) throws -> Void) throws {
        try withoutActuallyEscaping(piece) { piece in
            var json = JSONStream(piece)
            json.beginObject()
            try json.member("as_of", try JSONValueEncoder.encode(asOf))
            json.key("checks")
            json.beginArray()
            for check in checks { try json.value(try JSONValueEncoder.encode(check)) }
            json.endArray()
            try json.member("not_collected", try JSONValueEncoder.encode(notCollected))
            try json.member("organization_id", .string(organizationID))
            try json.member("overall", .string(overall))
            json.key("scores")
            json.beginArray()
            for score in scores {
                json.beginObject()
                json.key("controls")
                json.beginArray()
                for control in score.controls { try json.value(try JSONValueEncoder.encode(control)) }
                json.endArray()
                try json.member("excepted", .number(Double(score.excepted)))
                try json.member("failed", .number(Double(score.failed)))
                try json.member("framework", .string(score.framework))
                try json.member("not_applicable", .number(Double(score.notApplicable)))
                try json.member("not_verified", .number(Double(score.notVerified)))
                try json.member("passed", .number(Double(score.passed)))
                try json.member("title", .string(score.title))
                json.endObject()
            }
            json.endArray()
            json.endObject()
            try json.finish()
        }
    }
}

/// A file written in pieces and hashed as it is written.
enum HashingFile {
    static func write(_ url: URL, _ produce: (_ write: ([UInt8]) throws -> Void) throws -> Void) throws
        -> (sha256: String, size: Int) {
        guard FileManager.default.createFile(atPath: url.path, contents: nil),
              let handle = FileHandle(forWritingAtPath: url.path) else {
            throw PipelineError(.render, "cannot write \(url.path)")
        }
        defer { try? handle.close() }
        let hasher = try SHA256Hasher()
        var size = 0
        try produce { piece in
            try piece.withUnsafeBytes { try hasher.update($0) }
            try handle.write(contentsOf: piece)
            size += piece.count
        }
        return (Digest.hex(try hasher.finalize()), size)
    }
}
