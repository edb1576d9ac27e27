import Cryptography
import Foundation
import Pipeline
import PipelineTesting
@testable import Reporting
import Testing

/// Two zip writers deflating at once, joined: the bundle must not differ from one writer's.
@Suite struct ZipJoinTests {
    /// Entries of every kind the bundle has: tiny ones stored, text deflated, a large one in pieces.
    static let entries: [(path: String, data: Data)] = (0..<24).map { n in
        let size = [10, 900, 5_000, 300_000][n % 4]
        var generator = SplitMix(seed: UInt64(n))
        let words = ["alpha", "beta", "gamma", "delta", "{\"id\": ", "\n"]
        var text = ""
        while text.utf8.count < size { text += words[Int(generator.next() % UInt64(words.count))] }
        return ("evidence/\(String(format: "%02d", n))/original.json", Data(text.utf8.prefix(size)))
    }

    static func write(_ entries: ArraySlice<(path: String, data: Data)>, to file: URL) throws {
        let writer = try ZipWriter(file: file, modified: asOf)
        for entry in entries {
            try writer.beginEntry(path: entry.path, size: entry.data.count)
            // In pieces, as originals stream.
            for start in stride(from: 0, to: entry.data.count, by: 65_536) {
                try writer.write(entry.data[start..<min(start + 65_536, entry.data.count)])
            }
            try writer.endEntry()
        }
        try writer.finish()
    }

    @Test(.needs("unzip", "python3"), arguments: [1, 11, 23])
    func twoPartsJoinedAreTheBytesOfOneWriter(_ cut: Int) throws {
        let folder = try ExternalTool.temporaryDirectory()
        let whole = folder.appendingPathComponent("whole.zip")
        let head = folder.appendingPathComponent("head.zip")
        let tail = folder.appendingPathComponent("tail.zip")
        try Self.write(Self.entries[...], to: whole)
        try Self.write(Self.entries[..<cut], to: head)
        try Self.write(Self.entries[cut...], to: tail)
        try ZipJoin.append(tail, to: head)
        #expect(try Data(contentsOf: head) == Data(contentsOf: whole))
        let test = try ExternalTool.run("unzip", ["-t", head.path])
        #expect(test.status == 0, "\(test.stdout)\(test.stderr)")
        let script = """
            import sys, zipfile
            z = zipfile.ZipFile(sys.argv[1])
            print(z.testzip(), [i.filename for i in z.infolist()] == sorted(i.filename for i in z.infolist()), len(z.infolist()))
            """
        #expect(try ExternalTool.run("python3", ["-c", script, head.path]).stdout == "None True 24\n")
    }

    @Test func aPartThatIsNoZipIsNamed() throws {
        let folder = try ExternalTool.temporaryDirectory()
        let head = folder.appendingPathComponent("head.zip")
        let tail = folder.appendingPathComponent("tail.zip")
        try Self.write(Self.entries[..<3], to: head)
        try Data("not a zip at all, but long enough to have an end record".utf8).write(to: tail)
        #expect { try ZipJoin.append(tail, to: head) } throws: { "\($0)".contains("end record") }
    }

    /// A bundle whose evidence is large enough to be written by two writers: it verifies offline,
    /// keeps the evidence in order, and two renders give the same bytes.
    @Test(.needs("unzip")) func aBundleWrittenInTwoPartsVerifiesAndIsReproducible() async throws {
        let org = try OrganizationID("acme")
        let objects = InMemoryObjectStore()
        var evidence: [Evidence] = []
        for n in 0..<40 {
            var generator = SplitMix(seed: UInt64(n))
            let body = Data((0..<300_000).map { _ in UInt8(97 + generator.next() % 8) })
            let item = Evidence(id: try Digest.sha256Hex(Data("large\(n)".utf8)), organizationID: org, source: "github",
                                operation: "repos/list", resource: "acme-corp/r\(n)", request: "GET /orgs/acme-corp/repos?page=\(n)",
                                status: 200, collectedAt: asOf, freshUntil: asOf.addingTimeInterval(3600),
                                sha256: try Digest.sha256Hex(body), mediaType: "application/json", size: body.count)
            _ = await objects.put(item.originalKey, data: body, contentType: item.mediaType, ifAbsent: true)
            evidence.append(item)
        }
        let base = try sampleInput()
        let input = ReportInput(organization: base.organization, pipeline: base.pipeline, asOf: asOf, periodStart: base.periodStart,
                                results: base.results, scores: base.scores, evidence: evidence, failures: [])
        let entries = try BundleRenderer.evidenceEntries(evidence, hashMetadata: false).sorted { $0.file.path < $1.file.path }
        #expect(!BundleRenderer.halves(entries).first.isEmpty, "the evidence is large enough to be split")

        let first = try await render(input, outputs: [.bundle], objects: objects)
        let second = try await render(input, outputs: [.bundle], objects: objects)
        let zip = try #require(first.files.first { $0.kind == .bundle })
        #expect(zip.sha256 == second.files.first { $0.kind == .bundle }?.sha256)
        let report = try BundleVerifier.verify(zip: zip.file.path, publicKey: nil, previous: nil)
        #expect(report.isValid && report.filesChecked > 80, "\(report.problems)")
        let test = try ExternalTool.run("unzip", ["-t", zip.file.path])
        #expect(test.status == 0 && test.stdout.contains("No errors detected"), "\(test.stdout)")
        // Nothing of the second writer is left in the scratch folder.
        let scratch = try FileManager.default.contentsOfDirectory(atPath: zip.file.deletingLastPathComponent().path)
        #expect(!scratch.contains { $0.contains("zip-tail") }, "\(scratch)")
    }
}

/// A small deterministic generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
