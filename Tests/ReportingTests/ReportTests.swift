import Cryptography
import Foundation
import Pipeline
import PipelineTesting
@testable import Reporting
import Testing

let asOf = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z

/// Bodies of the sample evidence, by id.
func sampleBodies() throws -> [(Evidence, Data)] {
    let org = try OrganizationID("acme")
    return try (0..<5).map { n -> (Evidence, Data) in
        let body = Data("{\"n\": \(n)}\n".utf8)
        return (Evidence(id: try Digest.sha256Hex(Data("id\(n)".utf8)), organizationID: org, source: "github",
                         operation: "orgs/get", resource: "acme-corp/r\(n)", request: "GET /repos/acme-corp/r\(n)",
                         status: 200, collectedAt: asOf, freshUntil: asOf.addingTimeInterval(3600),
                         sha256: try Digest.sha256Hex(body), mediaType: "application/json", size: body.count), body)
    }
}

func sampleInput(controls: Int = 4, orgName: String = "Acme Corp") throws -> ReportInput {
    let org = Organization(id: try OrganizationID("acme"), name: orgName, integrations: [:])
    let evidence = try sampleBodies().map(\.0)
    let statuses: [CheckStatus] = [.pass, .fail, .notVerified, .notApplicable]
    let results = (0..<controls).map { n in
        CheckResult(checkID: "check.\(String(format: "%03d", n))", title: "Check number \(n) with a long title that must wrap across the page",
                    controls: [ControlRef(framework: "soc2", id: "CC\(n / 10 + 1).\(n % 10 + 1)")],
                    status: statuses[n % 4], reason: "Reason \(n).", findings: n % 4 == 1 ? ["acme-corp/r\(n): finding"] : [],
                    evidenceIDs: [evidence[n % 5].id])
    }
    let controlsStatus = results.map {
        ControlStatus(control: $0.controls[0], title: "Control \($0.controls[0].id)", status: $0.status,
                      checkIDs: [$0.checkID], evidenceIDs: $0.evidenceIDs,
                      points: $0.status == .pass ? 2 : 0, possible: [.pass, .fail, .notVerified].contains($0.status) ? 2 : 0)
    }
    let scores = ScoreSummary(frameworks: [FrameworkScore(framework: "soc2", controls: controlsStatus)])
    return ReportInput(organization: org, pipeline: "report", asOf: asOf, periodStart: asOf.addingTimeInterval(-90 * 86_400),
                       results: results, scores: scores, evidence: evidence,
                       failures: [CollectionFailure(source: "github", operation: "repos/get-branch-protection",
                                                    resource: "acme-corp/plans@main", reason: "answered 500")])
}

/// The sample evidence's originals in an object store, as a run leaves them.
func storedObjects() async throws -> InMemoryObjectStore {
    let objects = InMemoryObjectStore()
    for (evidence, body) in try sampleBodies() {
        _ = await objects.put(evidence.originalKey, data: body, contentType: evidence.mediaType, ifAbsent: true)
    }
    return objects
}

/// Renders into a fresh scratch folder, reading originals from `objects` (the stored samples
/// unless given), in pieces of `chunkSize` bytes.
func render(_ input: ReportInput, outputs: [RenderOptions.Output] = [.pdf, .bundle], objects: (any ObjectStore)? = nil,
            chunkSize: Int = 1 << 20) async throws -> RenderedExport {
    let store: any ObjectStore = if let objects { objects } else { try await storedObjects() }
    return try await BundleRenderer(chunkSize: chunkSize).render(input, options: RenderOptions(outputs: outputs), objects: store,
                                                                 scratch: try ExternalTool.temporaryDirectory())
}

@Suite struct PDFReportTests {
    @Test(.needs("pdfinfo", "pdftotext")) func theReportReadsBackWithItsCoverControlsAndPageNumbers() async throws {
        let export = try await render(try sampleInput())
        let file = try #require(export.files.first { $0.kind == .pdf }).file
        let info = try ExternalTool.run("pdfinfo", [file.path])
        #expect(info.status == 0)
        #expect(info.stdout.contains("Title:           Compliance report: Acme Corp"))
        #expect(info.stdout.contains("CreationDate:    Sat Nov 28 00:00:00 2026 UTC"))
        let pages = try #require(info.stdout.split(separator: "\n").first { $0.hasPrefix("Pages:") })
        let count = Int(pages.split(separator: " ").last!)!
        let text = try ExternalTool.run("pdftotext", ["-layout", file.path, "-"]).stdout
        #expect(text.contains("Acme Corp"))
        #expect(text.contains("2026-08-30 to 2026-11-28 (UTC)"))
        #expect(text.contains("33%"))  // 1 passing of 3 evaluated (pass, fail, not verified; n/a left out)
        #expect(text.contains("1 of 3 evaluated criteria passing"))
        #expect(text.contains("NOT VERIFIED"))
        #expect(text.contains("CC1.2"))
        #expect(text.contains("Page 1 of \(count)"))
        #expect(text.contains("Page \(count) of \(count)"))
        #expect(text.contains("answered 500"))
    }

    @Test(.needs("pdfinfo", "pdftotext")) func manyControlsFlowOntoMorePagesEachNumbered() async throws {
        let export = try await render(try sampleInput(controls: 120))
        let file = export.files[0].file
        let info = try ExternalTool.run("pdfinfo", [file.path]).stdout
        let pages = Int(info.split(separator: "\n").first { $0.hasPrefix("Pages:") }!.split(separator: " ").last!)!
        #expect(pages > 5)
        let text = try ExternalTool.run("pdftotext", [file.path, "-"]).stdout
        for page in 1...pages { #expect(text.contains("Page \(page) of \(pages)")) }
        #expect(text.contains("check.119"))
    }

    @Test func theSameInputGivesTheSameBytes() async throws {
        let first = try await render(try sampleInput())
        // Read in other piece sizes: the bytes must not depend on how originals were streamed.
        let second = try await render(try sampleInput(), chunkSize: 3)
        #expect(first.id == second.id)
        #expect(try first.files.map { try Data(contentsOf: $0.file) } == second.files.map { try Data(contentsOf: $0.file) })
        #expect(first.files.map(\.sha256) == second.files.map(\.sha256))
        let other = try await render(try sampleInput(orgName: "Acme Corporation"))
        #expect(other.id != first.id)
    }

    @Test func outputsAreStoredUnderTheOrganizationsExports() async throws {
        let export = try await render(try sampleInput(), outputs: [.bundle])
        // The manifest is kept beside the bundle: the next export links to it by its hash.
        #expect(export.files.map(\.key) == ["acme/exports/\(export.id).zip", "acme/exports/\(export.id).manifest.json"])
        #expect(export.id == "exp-" + String(export.files[1].sha256.prefix(24)))
        let file = export.files[0]
        #expect(try Digest.sha256Hex(try Data(contentsOf: file.file)) == file.sha256)
        #expect(try Data(contentsOf: file.file).count == file.size)
    }
}

@Suite struct BundleTests {
    func bundle(asOf time: Date = asOf) async throws -> (URL, RenderedExport) {
        var input = try sampleInput()
        input = ReportInput(organization: input.organization, pipeline: input.pipeline, asOf: time, periodStart: input.periodStart,
                            results: input.results, scores: input.scores, evidence: input.evidence, failures: input.failures)
        let export = try await render(input)
        return (try #require(export.files.first { $0.kind == .bundle }).file, export)
    }

    @Test(.needs("unzip")) func unzipFindsNoErrors() async throws {
        let (file, _) = try await bundle()
        let result = try ExternalTool.run("unzip", ["-t", file.path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("No errors detected"))
    }

    @Test(.needs("python3")) func everyManifestHashMatchesItsFileInPythonsZipfile() async throws {
        let (file, _) = try await bundle()
        let script = """
        import hashlib, json, sys, zipfile
        z = zipfile.ZipFile(sys.argv[1])
        assert z.testzip() is None
        names = z.namelist()
        # The evidence first (streamed while the PDF is drawn), then the documents that need no PDF,
        # the report, then what lists them.
        evidence = [n for n in names if n.startswith("evidence/")]
        report = ["report.pdf", "report.txt", "manifest.json", "SHA256SUMS"]
        assert names == sorted(evidence) + sorted(n for n in names if n not in evidence and n not in report) + report, names
        m = json.loads(z.read("manifest.json"))
        listed = {f["path"] for f in m["files"]}
        assert listed == set(names) - {"manifest.json", "SHA256SUMS"}, listed ^ set(names)
        for f in m["files"]:
            data = z.read(f["path"])
            assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
            assert len(data) == f["size"], f["path"]
        for info in z.infolist():
            assert info.date_time == (2026, 11, 28, 0, 0, 0), info.date_time
        print(len(m["files"]), m["organization_id"], m["as_of"])
        """
        let result = try ExternalTool.run("python3", ["-c", script, file.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "16 acme 2026-11-28T00:00:00Z\n")
    }

    @Test(.needs("unzip", "sha256sum")) func sha256sumChecksTheUnzippedBundle() async throws {
        let (file, _) = try await bundle()
        let folder = try ExternalTool.temporaryDirectory()
        #expect(try ExternalTool.run("unzip", ["-q", file.path, "-d", folder.path]).status == 0)
        let check = try ExternalTool.run("sha256sum", ["-c", "SHA256SUMS"], directory: folder)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.split(separator: "\n").count == 17)
        // Tampering is caught.
        try Data("{}".utf8).write(to: folder.appendingPathComponent("results.json"))
        #expect(try ExternalTool.run("sha256sum", ["-c", "--quiet", "SHA256SUMS"], directory: folder).status != 0)
    }

    /// DOS entry times are set from the run clock's UTC fields, whatever the local time zone
    /// (the process never changes its environment to get there).
    @Test(.needs("python3")) func entryTimesAreTheRunClockInUTC() async throws {
        let clock = Date(timeIntervalSince1970: 1_795_873_531)  // 2026-11-28T13:45:31Z
        let (file, _) = try await bundle(asOf: clock)
        let script = "import sys, zipfile; print({i.date_time for i in zipfile.ZipFile(sys.argv[1]).infolist()})"
        let result = try ExternalTool.run("python3", ["-c", script, file.path])
        #expect(result.stdout == "{(2026, 11, 28, 13, 45, 30)}\n", "\(result.stderr)")
        let (day, time) = ZipTimes.dos(clock)
        let expectedDay: UInt16 = 46 << 9 | 11 << 5 | 28      // 2026 is 46 years after 1980
        let expectedTime: UInt16 = 13 << 11 | 45 << 5 | 15    // two-second units
        #expect(day == expectedDay)
        #expect(time == expectedTime)
    }

    @Test func anOriginalChangedInStorageFailsTheExportNamingIt() async throws {
        let objects = try await storedObjects()
        let input = try sampleInput()
        let victim = input.evidence[2]
        await objects.tamper(victim.originalKey, with: Data("{\"n\": 9}\n".utf8))  // same size, other bytes
        do {
            _ = try await render(input, objects: objects)
            Issue.record("a tampered original went into the bundle")
        } catch {
            #expect("\(error)".contains("evidence object \(victim.originalKey) does not match its recorded SHA-256"), "\(error)")
        }
        await objects.tamper(victim.originalKey, with: Data("{\"n\": 2, \"extra\": true}\n".utf8))  // longer
        await #expect(throws: PipelineError.self) { _ = try await render(input, objects: objects) }
    }

    @Test func aMissingOriginalFailsTheExportNamingIt() async throws {
        let objects = try await storedObjects()
        let input = try sampleInput()
        await objects.delete(input.evidence[0].originalKey)
        do {
            _ = try await render(input, objects: objects)
            Issue.record("an export was made without one of its originals")
        } catch {
            #expect("\(error)".contains("evidence object \(input.evidence[0].originalKey) is missing from storage"), "\(error)")
        }
    }
}
