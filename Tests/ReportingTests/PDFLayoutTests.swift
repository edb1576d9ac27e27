import Cryptography
import Foundation
import Pipeline
import PipelineTesting
@testable import Reporting
import Testing

/// The report read back with poppler: its contents agree with the pages, no text leaves the page
/// box, and names in any script render.
@Suite struct PDFLayoutTests {
    /// Page texts, by page number, from `pdftotext` (pages end in form feeds).
    func pages(_ file: URL) throws -> [String] {
        let text = try ExternalTool.run("pdftotext", ["-layout", file.path, "-"]).stdout
        return [""] + text.components(separatedBy: "\u{0C}").dropLast()
    }

    /// Every word's box from `pdftotext -bbox-layout`, outside the page less a 20-point rim.
    func wordsOutsideThePage(_ file: URL) throws -> String {
        let script = """
        import re, sys
        html = open(sys.argv[1], encoding="utf-8").read()
        bad = []
        words = 0
        for page in re.finditer(r'<page width="([\\d.]+)" height="([\\d.]+)">(.*?)</page>', html, re.S):
            w, h = float(page.group(1)), float(page.group(2))
            for m in re.finditer(r'<word xMin="([\\d.-]+)" yMin="([\\d.-]+)" xMax="([\\d.-]+)" yMax="([\\d.-]+)">(.*?)</word>', page.group(3)):
                x0, y0, x1, y1 = map(float, m.groups()[:4])
                words += 1
                if x0 < 20 or y0 < 20 or x1 > w - 20 or y1 > h - 20: bad.append(m.group(5))
        print("words" if words > 1000 else "few words", len(bad), bad[:5])
        """
        let html = file.deletingPathExtension().appendingPathExtension("html")
        #expect(try ExternalTool.run("pdftotext", ["-bbox-layout", file.path, html.path]).status == 0)
        return try ExternalTool.run("python3", ["-c", script, html.path]).stdout
    }

    func pdf(_ input: ReportInput) async throws -> URL {
        let export = try await render(input, outputs: [.pdf])
        return try #require(export.files.first { $0.kind == .pdf }).file
    }

    /// 2,000 checks: the contents run to many pages, and each entry's page holds its section.
    @Test(.needs("pdftotext", "python3")) func theContentsAgreeWithThePagesOfAReportOf2000Checks() async throws {
        let file = try await pdf(try sampleInput(controls: 2000))
        let pages = try pages(file)
        #expect(pages.count > 100)
        var entries: [(String, Int)] = []
        var page = 2
        while page < pages.count, entries.isEmpty || !pages[page].contains("Executive summary\n") || page == 2 {
            for line in pages[page].split(separator: "\n") {
                let parts = line.trimmingCharacters(in: .whitespaces).split(separator: " ").map(String.init)
                guard parts.count > 1, let number = Int(parts.last!), !line.contains("Page ") else { continue }
                entries.append((parts.dropLast().joined(separator: " "), number))
            }
            page += 1
            if entries.count >= 2000 + 8 { break }
        }
        #expect(entries.count >= 2000 + 8, "\(entries.count) contents entries")
        var wrong: [String] = []
        for (title, number) in entries {
            let start = String(title.replacingOccurrences(of: "…", with: "").prefix(24))
            guard number < pages.count else { wrong.append("\(title) → \(number) (past the end)"); continue }
            let flat = pages[number].replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            if !flat.contains(start) { wrong.append("\(title) → \(number)") }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(try wordsOutsideThePage(file) == "words 0 []\n")
    }

    /// One check over 5,000 repositories: thousands of findings and evidence ids, a row with a
    /// cell longer than a page, an unbroken 400-character resource name. Nothing leaves the page;
    /// every page is numbered.
    @Test(.needs("pdftotext", "python3")) func aCheckOver5000RepositoriesStaysInsideThePages() async throws {
        let base = try sampleInput(controls: 4)
        let evidence = try sampleBodies().map(\.0)
        let ids = try (0..<5000).map { try Digest.sha256Hex(Data("repo\($0)".utf8)) }
        let long = String(repeating: "x", count: 400)
        let huge = CheckResult(checkID: "github.branch-protection", title: "Default branches are protected",
                               controls: [ControlRef(framework: "soc2", id: "CC8.1")], status: .fail,
                               reason: "5000 branches are not protected.",
                               findings: (0..<5000).map { "acme-corp/repository-\($0): main is not protected" } + ["acme-corp/\(long)"],
                               evidenceIDs: ids + evidence.map(\.id))
        let control = ControlStatus(control: ControlRef(framework: "soc2", id: "CC8.1"),
                                    title: "Changes are authorized, tested, approved and implemented " + long,
                                    status: .fail, checkIDs: [huge.checkID], evidenceIDs: huge.evidenceIDs, points: 0, possible: 3)
        let scores = ScoreSummary(frameworks: [FrameworkScore(framework: "soc2", controls: base.scores.frameworks[0].controls + [control])])
        let input = ReportInput(organization: base.organization, pipeline: "report", asOf: asOf, periodStart: base.periodStart,
                                results: base.results + [huge], scores: scores, evidence: evidence, failures: base.failures)
        let file = try await pdf(input)
        let pages = try pages(file)
        let total = pages.count - 1
        #expect(total > 50)
        for number in 1...total { #expect(pages[number].contains("Page \(number) of \(total)")) }
        #expect(pages.joined().contains("acme-corp/repository-4999: main is not protected"))
        #expect(pages.joined().contains("and 5001 more (see the evidence appendix)"))
        let outside = try wordsOutsideThePage(file)
        #expect(outside == "words 0 []\n", "\(outside)")
    }

    /// Names with accents, CJK and right-to-left scripts are drawn (a CJK font is embedded) and
    /// read back.
    @Test(.needs("pdftotext", "pdffonts")) func namesInAnyScriptRender() async throws {
        let file = try await pdf(try sampleInput(orgName: "Ñandú Åkesson 株式会社 שלום עולם مرحبا"))
        let text = try ExternalTool.run("pdftotext", [file.path, "-"]).stdout
        #expect(text.contains("Ñandú Åkesson"))
        #expect(text.contains("株式会社"))
        #expect(text.contains("שלום") || text.contains("םולש"))
        let fonts = try ExternalTool.run("pdffonts", [file.path]).stdout
        #expect(fonts.contains("DejaVuSans"))
        #expect(fonts.contains("WenQuanYi") || fonts.contains("Noto") || fonts.contains("Droid"), "\(fonts)")
    }

    /// The PDF's outline (bookmarks) lists the sections; its metadata comes from the run.
    @Test(.needs("pdftohtml", "pdfinfo")) func theOutlineAndMetadataAreThere() async throws {
        let file = try await pdf(try sampleInput(controls: 12))
        let xml = try ExternalTool.run("pdftohtml", ["-xml", "-i", "-stdout", "-q", file.path]).stdout
        for title in ["Executive summary", "Failing checks", "Exceptions", "Changes since the last run", "All checks", "Evidence appendix"] {
            #expect(xml.contains("<outline") && xml.contains(">\(title)</item>"), "outline lacks \(title)")
        }
        let info = try ExternalTool.run("pdfinfo", [file.path]).stdout
        #expect(info.contains("Subject:         Compliance evidence for Acme Corp (acme), 2026-08-30 to 2026-11-28"))
        #expect(info.contains("Keywords:        compliance, evidence, Acme Corp, soc2"))
        #expect(info.contains("CreationDate:    Sat Nov 28 00:00:00 2026 UTC"))
    }
}
