import Cryptography
import Foundation
import Pipeline
import PipelineTesting
@testable import Reporting
import Testing

let asOf = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z

func sampleInput(controls: Int = 4, orgName: String = "Acme Corp") throws -> ReportInput {
    let org = Organization(id: try OrganizationID("acme"), name: orgName, integrations: [:])
    let evidence = (0..<5).map { n -> Evidence in
        let body = Data("{\"n\": \(n)}\n".utf8)
        return Evidence(id: Digest.sha256Hex(Data("id\(n)".utf8)), organizationID: org.id, source: "github",
                        operation: "orgs/get", resource: "acme-corp/r\(n)", request: "GET /repos/acme-corp/r\(n)",
                        status: 200, collectedAt: asOf, freshUntil: asOf.addingTimeInterval(3600),
                        sha256: Digest.sha256Hex(body), mediaType: "application/json", body: body)
    }
    let statuses: [CheckStatus] = [.pass, .fail, .notVerified, .notApplicable]
    let results = (0..<controls).map { n in
        CheckResult(checkID: "check.\(String(format: "%03d", n))", title: "Check number \(n) with a long title that must wrap across the page",
                    controls: [ControlRef(framework: "soc2", id: "CC\(n / 10 + 1).\(n % 10 + 1)")],
                    status: statuses[n % 4], reason: "Reason \(n).", findings: n % 4 == 1 ? ["acme-corp/r\(n): finding"] : [],
                    evidenceIDs: [evidence[n % 5].id])
    }
    let controlsStatus = results.map {
        ControlStatus(control: $0.controls[0], title: "Control \($0.controls[0].id)", status: $0.status,
                      checkIDs: [$0.checkID], evidenceIDs: $0.evidenceIDs)
    }
    let scores = ScoreSummary(frameworks: [FrameworkScore(framework: "soc2", controls: controlsStatus)])
    return ReportInput(organization: org, pipeline: "report", asOf: asOf, periodStart: asOf.addingTimeInterval(-90 * 86_400),
                       results: results, scores: scores, evidence: evidence,
                       failures: [CollectionFailure(source: "github", operation: "repos/get-branch-protection",
                                                    resource: "acme-corp/plans@main", reason: "answered 500")])
}

/// Whether a peer tool is there; in CI a missing one fails the test instead of skipping it.
func peer(_ name: String) -> Bool {
    if ExternalTool.find(name) != nil { return true }
    if ExternalTool.isCI { Issue.record("\(name) is not installed; .ci/run must install it") }
    return false
}

func write(_ data: Data, _ name: String) throws -> URL {
    let url = try ExternalTool.temporaryDirectory().appendingPathComponent(name)
    try data.write(to: url)
    return url
}

@Suite struct PDFReportTests {
    let renderer = BundleRenderer()
    let options = RenderOptions(outputs: [.pdf, .bundle])

    @Test func theReportReadsBackWithItsCoverControlsAndPageNumbers() throws {
        guard peer("pdfinfo"), peer("pdftotext") else { return }
        let export = try renderer.renderNow(try sampleInput(), options: options)
        let pdf = try #require(export.files.first { $0.kind == .pdf })
        let file = try write(pdf.data, "report.pdf")
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
        #expect(text.contains("1 of 3 evaluated controls passing"))
        #expect(text.contains("NOT VERIFIED"))
        #expect(text.contains("CC1.2"))
        #expect(text.contains("Page 1 of \(count)"))
        #expect(text.contains("Page \(count) of \(count)"))
        #expect(text.contains("answered 500"))
    }

    @Test func manyControlsFlowOntoMorePagesEachNumbered() throws {
        guard peer("pdfinfo"), peer("pdftotext") else { return }
        let export = try renderer.renderNow(try sampleInput(controls: 120), options: options)
        let file = try write(export.files[0].data, "report.pdf")
        let info = try ExternalTool.run("pdfinfo", [file.path]).stdout
        let pages = Int(info.split(separator: "\n").first { $0.hasPrefix("Pages:") }!.split(separator: " ").last!)!
        #expect(pages > 5)
        let text = try ExternalTool.run("pdftotext", [file.path, "-"]).stdout
        for page in 1...pages { #expect(text.contains("Page \(page) of \(pages)")) }
        #expect(text.contains("check.119"))
    }

    @Test func theSameInputGivesTheSameBytes() throws {
        let first = try renderer.renderNow(try sampleInput(), options: options)
        let second = try renderer.renderNow(try sampleInput(), options: options)
        #expect(first.id == second.id)
        #expect(first.files.map(\.data) == second.files.map(\.data))
        let other = try renderer.renderNow(try sampleInput(orgName: "Acme Corporation"), options: options)
        #expect(other.id != first.id)
    }

    @Test func outputsAreStoredUnderTheOrganizationsExports() throws {
        let export = try renderer.renderNow(try sampleInput(), options: RenderOptions(outputs: [.bundle]))
        #expect(export.files.map(\.key) == ["acme/exports/\(export.id).zip"])
        #expect(export.id.hasPrefix("exp-"))
    }
}

@Suite struct BundleTests {
    let renderer = BundleRenderer()

    func bundle() throws -> (URL, RenderedExport) {
        let export = try renderer.renderNow(try sampleInput(), options: RenderOptions(outputs: [.pdf, .bundle]))
        let zip = try #require(export.files.first { $0.kind == .bundle })
        return (try write(zip.data, "bundle.zip"), export)
    }

    @Test func unzipFindsNoErrors() throws {
        guard peer("unzip") else { return }
        let (file, _) = try bundle()
        let result = try ExternalTool.run("unzip", ["-t", file.path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("No errors detected"))
    }

    @Test func everyManifestHashMatchesItsFileInPythonsZipfile() throws {
        guard peer("python3") else { return }
        let (file, _) = try bundle()
        let script = """
        import hashlib, json, sys, zipfile
        z = zipfile.ZipFile(sys.argv[1])
        assert z.testzip() is None
        names = z.namelist()
        assert names == sorted(names), names
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
        #expect(result.stdout == "13 acme 2026-11-28T00:00:00Z\n")
    }

    @Test func sha256sumChecksTheUnzippedBundle() throws {
        guard peer("unzip"), peer("sha256sum") else { return }
        let (file, _) = try bundle()
        let folder = try ExternalTool.temporaryDirectory()
        #expect(try ExternalTool.run("unzip", ["-q", file.path, "-d", folder.path]).status == 0)
        let check = try ExternalTool.run("sha256sum", ["-c", "SHA256SUMS"], directory: folder)
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.split(separator: "\n").count == 14)
        // Tampering is caught.
        try Data("{}".utf8).write(to: folder.appendingPathComponent("results.json"))
        #expect(try ExternalTool.run("sha256sum", ["-c", "--quiet", "SHA256SUMS"], directory: folder).status != 0)
    }

    @Test func bytesDoNotDependOnTheMachinesTimeZone() throws {
        // ZipWriter pins the process to UTC; a later TZ change must not leak into entry times.
        let (first, _) = try bundle()
        setenv("TZ", "America/Los_Angeles", 1)
        tzset()
        defer { setenv("TZ", "UTC", 1); tzset() }
        let (second, _) = try bundle()
        #expect(try Data(contentsOf: first) == Data(contentsOf: second))
    }
}
