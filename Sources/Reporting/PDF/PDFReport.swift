import Foundation
import Pipeline

/// Draws the compliance report: a cover; the contents with page numbers (links, and the PDF's
/// bookmarks); an executive summary with charts; the failing checks with their resources and
/// remediation; a section per criterion of each framework; exceptions; what changed since the
/// last run; every check; the evidence appendix. "Page n of N" on every page.
///
/// Laid out three times: once for the sections' titles (the contents' length), once to learn
/// each section's page, once to draw.
struct PDFReport {
    let input: ReportInput
    let options: RenderOptions
    /// Each evidence item once, in the input's order.
    let distinctEvidence: [Evidence]
    /// Where each evidence id first is in the input's evidence.
    let positions: [String: Int]

    init(input: ReportInput, options: RenderOptions, positions: [String: Int]? = nil) {
        self.input = input
        self.options = options
        let positions = positions ?? ReportInput.positions(of: input.evidence)
        self.positions = positions
        distinctEvidence = input.evidence.indices.filter { positions[input.evidence[$0].id] == $0 }.map { input.evidence[$0] }
    }

    static let margin = 50.0
    static let contentWidth = PDFCanvas.pageWidth - 2 * margin
    static let bottom = PDFCanvas.pageHeight - 60
    /// Evidence listed by id under a check or criterion before the rest is left to the appendix.
    static let evidenceShown = 4

    /// Draws the report into `file`; returns its text: each paragraph, field and table row once,
    /// unwrapped (so it does not depend on the fonts' widths), without page furniture, contents
    /// or chart labels.
    @discardableResult
    func render(to file: URL) throws -> [String] {
        let canvas = try PDFCanvas(file: file, title: "\(options.title): \(input.organization.name)",
                                   author: "Lightsail",
                                   subject: "Compliance evidence for \(input.organization.name) (\(input.organization.id)), \(Timestamp.day(input.periodStart)) to \(Timestamp.day(input.asOf))",
                                   keywords: (["compliance", "evidence", input.organization.name] + input.scores.frameworks.map(\.title)).joined(separator: ", "),
                                   createdAt: input.asOf)
        var titles = Writer(canvas: canvas, mode: .titles, footer: footer)
        layout(&titles, contents: [])
        var counter = Writer(canvas: canvas, mode: .measure, footer: footer)
        layout(&counter, contents: titles.sections)
        var writer = Writer(canvas: canvas, mode: .draw, totalPages: counter.page, footer: footer)
        layout(&writer, contents: counter.sections)
        writer.finishPage()
        try canvas.finish()
        return writer.transcript
    }

    var footer: String {
        "Lightsail · \(input.organization.name) (\(input.organization.id)) · evidence as of \(Timestamp.iso8601(input.asOf))"
    }

    func layout(_ w: inout Writer, contents: [Writer.Section]) {
        cover(&w)
        w.pageBreak()
        self.contents(&w, contents)
        summary(&w)
        failing(&w)
        for score in input.scores.frameworks { criteria(&w, score) }
        exceptions(&w)
        changes(&w)
        checks(&w)
        evidence(&w)
    }

    // MARK: Cover and contents

    func cover(_ w: inout Writer) {
        let provenance = input.context.provenance
        w.band(height: 8, color: (0.11, 0.29, 0.55))
        w.space(40)
        w.paragraph(options.title, font: .bold, size: 26)
        w.space(6)
        w.paragraph(input.organization.name, font: .regular, size: 18)
        w.space(18)
        w.field("Organization", "\(input.organization.id)")
        let versions = Dictionary(provenance.frameworks.map { ($0.id, $0.version) }, uniquingKeysWith: { a, _ in a })
        w.field("Frameworks", input.scores.frameworks.map { score in
            versions[score.framework].map { "\(score.title), version \($0)" } ?? score.title
        }.joined(separator: "; "))
        w.field("Observation period", "\(Timestamp.day(input.periodStart)) to \(Timestamp.day(input.asOf)) (UTC)")
        w.field("Generated at", "\(Timestamp.iso8601(input.asOf)) (the run's clock; evidence as of then)")
        w.field("Pipeline", input.pipeline)
        w.field("Evidence items", "\(distinctEvidence.count) collected, \(input.failures.count) could not be collected")
        w.field("Generator", provenance.generator)
        w.field("Previous export", input.context.previousExport.map { "\($0.id) (manifest SHA-256 \($0.manifestSHA256))" }
                ?? "none: the organization's first export")
        w.space(24)
        w.paragraph("Overall score", font: .bold, size: 12)
        w.paragraph(input.scores.percentText, font: .bold, size: 44, color: scoreColor(input.scores.ratio))
        w.paragraph("\(input.scores.passed) of \(input.scores.evaluated) evaluated criteria passing", font: .regular, size: 11)
        w.space(16)
        for score in input.scores.frameworks {
            w.paragraph("\(score.title): \(score.percentText)", font: .bold, size: 13)
            w.paragraph("\(score.passed) passed · \(score.failed) failed · \(score.notVerified) not verified · "
                        + "\(score.notApplicable) not applicable · \(score.excepted) excepted", font: .regular, size: 10)
            w.space(6)
        }
        w.space(12)
        w.paragraph("A score weighs each evaluated check (passed, failed or not verified) by its severity, from low (1) to critical (4), "
                    + "over the criteria it supports; not applicable and excepted checks are left out. A check never passes on missing, "
                    + "stale or unreadable evidence: such a check is not verified, with the reason. Evidence ids are SHA-256 digests; the "
                    + "export bundle carries every evidence file with its hash, a signed manifest, and report.txt, the text of this report.",
                    font: .regular, size: 9, color: (0.3, 0.3, 0.3))
    }

    func contents(_ w: inout Writer, _ sections: [Writer.Section]) {
        w.paragraph("Contents", font: .bold, size: 18, color: (0.11, 0.29, 0.55), record: false)
        w.space(8)
        for section in sections { w.contentsLine(section) }
    }

    // MARK: Summary and charts

    func summary(_ w: inout Writer) {
        w.section("Executive summary", level: 1)
        let failing = input.results.filter { $0.status == .fail }
        let unverified = input.results.count { $0.status == .notVerified }
        w.paragraph("Overall score \(input.scores.percentText): \(input.scores.passed) of \(input.scores.evaluated) evaluated criteria pass. "
                    + "Of \(input.results.count) checks, \(input.results.count { $0.status == .pass }) pass, \(failing.count) fail and "
                    + "\(unverified) could not be verified. \(distinctEvidence.count) evidence items were collected; "
                    + "\(input.failures.count) could not be.", font: .regular, size: 10)
        if let changes = input.context.changes, changes.previousRun != nil {
            w.paragraph("Since the last run: \(changes.newlyFailing.count) checks newly failing, \(changes.newlyPassing.count) newly passing, "
                        + "\(changes.newFindings.count) new findings, \(changes.resolvedFindings.count) resolved.", font: .regular, size: 10)
        }
        w.space(12)
        scoreChart(&w)
        statusChart(&w)
        trendChart(&w)
    }

    /// Score per framework: a bar each, 0 to 100%.
    func scoreChart(_ w: inout Writer) {
        let frameworks = input.scores.frameworks
        w.paragraph("Score by framework", font: .bold, size: 12)
        let labelWidth = 170.0
        let barWidth = PDFReport.contentWidth - labelWidth - 40
        w.chart(height: Double(frameworks.count) * 24 + 18) { canvas, top in
            let x0 = PDFReport.margin + labelWidth
            canvas.setFont(.regular, size: 7)
            for tick in stride(from: 0, through: 100, by: 25) {
                let x = x0 + barWidth * Double(tick) / 100
                canvas.setColor(0.85, 0.85, 0.85)
                canvas.line(x1: x, y1: top, x2: x, y2: top + Double(frameworks.count) * 24)
                canvas.setColor(0.45, 0.45, 0.45)
                canvas.text("\(tick)%", x: x - 6, y: top + Double(frameworks.count) * 24 + 10)
            }
            for (index, score) in frameworks.enumerated() {
                let y = top + Double(index) * 24 + 4
                canvas.setColor(0, 0, 0)
                canvas.setFont(.regular, size: 9)
                canvas.text(canvas.fit(score.title, width: labelWidth - 8), x: PDFReport.margin, y: y + 11)
                let ratio = score.ratio ?? 0
                let color = scoreColor(score.ratio)
                canvas.setColor(0.93, 0.93, 0.93)
                canvas.fillRect(x: x0, y: y, width: barWidth, height: 15)
                canvas.setColor(color.0, color.1, color.2)
                canvas.fillRect(x: x0, y: y, width: barWidth * ratio, height: 15)
                canvas.setColor(0, 0, 0)
                canvas.setFont(.bold, size: 9)
                canvas.text(score.percentText, x: x0 + barWidth + 6, y: y + 11)
            }
        }
        w.space(14)
    }

    /// Shares of the criteria by status, a stacked bar per framework, with a legend.
    func statusChart(_ w: inout Writer) {
        let frameworks = input.scores.frameworks
        w.paragraph("Criteria by status", font: .bold, size: 12)
        let statuses: [(CheckStatus, String)] = [(.pass, "passed"), (.fail, "failed"), (.notVerified, "not verified"),
                                                 (.excepted, "excepted"), (.notApplicable, "not applicable")]
        let labelWidth = 170.0
        let barWidth = PDFReport.contentWidth - labelWidth
        w.chart(height: Double(frameworks.count) * 24 + 20) { canvas, top in
            let x0 = PDFReport.margin + labelWidth
            for (index, score) in frameworks.enumerated() {
                let y = top + Double(index) * 24
                canvas.setColor(0, 0, 0)
                canvas.setFont(.regular, size: 9)
                canvas.text(canvas.fit(score.title, width: labelWidth - 8), x: PDFReport.margin, y: y + 11)
                let total = Double(max(score.controls.count, 1))
                var x = x0
                for (status, _) in statuses {
                    let count = score.controls.count { $0.status == status }
                    guard count > 0 else { continue }
                    let width = barWidth * Double(count) / total
                    let color = PDFReport.statusRGB(status, light: status == .notApplicable)
                    canvas.setColor(color.0, color.1, color.2)
                    canvas.fillRect(x: x, y: y, width: width, height: 15)
                    canvas.setFont(.bold, size: 7)
                    let label = "\(count)"
                    if canvas.width(of: label) + 4 < width {
                        canvas.setColor(1, 1, 1)
                        canvas.text(label, x: x + 3, y: y + 10.5)
                    }
                    x += width
                }
            }
            // The legend.
            var x = PDFReport.margin
            let y = top + Double(frameworks.count) * 24 + 4
            canvas.setFont(.regular, size: 8)
            for (status, name) in statuses {
                let color = PDFReport.statusRGB(status, light: status == .notApplicable)
                canvas.setColor(color.0, color.1, color.2)
                canvas.fillRect(x: x, y: y, width: 9, height: 9)
                canvas.setColor(0.2, 0.2, 0.2)
                canvas.text(name, x: x + 12, y: y + 8)
                x += 12 + canvas.width(of: name) + 14
            }
        }
        w.space(14)
    }

    /// The score of each framework over the organization's recent runs, oldest left.
    func trendChart(_ w: inout Writer) {
        let history = input.context.history
        let clocks = Array(Set(history.map(\.asOf))).sorted().suffix(12)
        w.paragraph("Score over recent runs", font: .bold, size: 12)
        guard clocks.count > 1 else {
            w.paragraph("This is the first run of \(input.pipeline) for \(input.organization.name): the trend starts here.",
                        font: .regular, size: 9, color: (0.3, 0.3, 0.3))
            return
        }
        let frameworks = input.scores.frameworks.map(\.framework)
        let height = 130.0
        let plotWidth = PDFReport.contentWidth - 40
        let palette: [(Double, Double, Double)] = [(0.11, 0.29, 0.55), (0.85, 0.45, 0.1), (0.3, 0.6, 0.3), (0.55, 0.2, 0.55)]
        w.chart(height: height + 40) { canvas, top in
            let x0 = PDFReport.margin + 30
            canvas.setFont(.regular, size: 7)
            for tick in stride(from: 0, through: 100, by: 25) {
                let y = top + height - height * Double(tick) / 100
                canvas.setColor(0.88, 0.88, 0.88)
                canvas.line(x1: x0, y1: y, x2: x0 + plotWidth, y2: y)
                canvas.setColor(0.45, 0.45, 0.45)
                canvas.text("\(tick)%", x: PDFReport.margin, y: y + 2.5)
            }
            let step = plotWidth / Double(clocks.count - 1)
            for (index, clock) in clocks.enumerated() where index % max(1, clocks.count / 6) == 0 || index == clocks.count - 1 {
                canvas.setColor(0.45, 0.45, 0.45)
                let label = Timestamp.day(clock)
                canvas.text(label, x: min(x0 + Double(index) * step - canvas.width(of: label) / 2, x0 + plotWidth - canvas.width(of: label)),
                            y: top + height + 12)
            }
            for (n, framework) in frameworks.enumerated() {
                let color = palette[n % palette.count]
                let points: [(Double, Double)] = clocks.enumerated().compactMap { index, clock in
                    guard let record = history.first(where: { $0.asOf == clock && $0.framework == framework }), record.possible > 0 else { return nil }
                    return (x0 + Double(index) * step, top + height - height * Double(record.points) / Double(record.possible))
                }
                canvas.setColor(color.0, color.1, color.2)
                canvas.polyline(points, width: 1.5)
                for point in points { canvas.circle(x: point.0, y: point.1, radius: 2.2) }
                canvas.fillRect(x: x0 + Double(n) * 150, y: top + height + 20, width: 9, height: 9)
                canvas.setColor(0.2, 0.2, 0.2)
                canvas.setFont(.regular, size: 8)
                canvas.text(canvas.fit(input.scores.frameworks[n].title, width: 130), x: x0 + Double(n) * 150 + 12, y: top + height + 28)
                canvas.setFont(.regular, size: 7)
            }
        }
    }

    // MARK: Failing checks

    func failing(_ w: inout Writer) {
        w.section("Failing checks", level: 1)
        let failing = input.results.filter { $0.status == .fail }.sorted {
            (severity($0)?.weight ?? 0, $1.checkID) > (severity($1)?.weight ?? 0, $0.checkID)
        }
        if failing.isEmpty { w.paragraph("No check failed.", font: .regular, size: 10) }
        for result in failing {
            let spec = input.context.checks[result.checkID]
            w.section(result.title, level: 2, size: 12)
            w.paragraph("FAIL · \(spec?.severity.rawValue ?? "unrated") severity · \(result.checkID) · "
                        + result.controls.map { "\($0.framework) \($0.id)" }.joined(separator: ", "),
                        font: .regular, size: 9, color: statusColor(.fail))
            w.paragraph(result.reason, font: .regular, size: 10)
            if !result.findings.isEmpty {
                w.keepTogether(30)
                w.paragraph("Resources (\(result.findings.count))", font: .bold, size: 9)
                for finding in result.findings { w.paragraph("• " + finding, font: .regular, size: 9, indent: 12) }
            }
            if let remediation = spec?.remediation, !remediation.isEmpty {
                w.keepTogether(30)
                w.paragraph("Remediation", font: .bold, size: 9)
                w.paragraph(remediation, font: .regular, size: 9, indent: 12)
            }
            evidenceSummary(&w, result.evidenceIDs)
            w.space(10)
        }
    }

    // MARK: Criteria

    func criteria(_ w: inout Writer, _ score: FrameworkScore) {
        w.section("\(score.title): criteria", level: 1)
        w.paragraph("\(score.percentText) · \(score.passed) passed · \(score.failed) failed · \(score.notVerified) not verified · "
                    + "\(score.notApplicable) not applicable · \(score.excepted) excepted", font: .regular, size: 10)
        w.space(6)
        let columns: [(String, Double)] = [("Criterion", 55), ("Title", 225), ("Status", 80), ("Checks", 135)]
        w.tableHeader(columns)
        for control in score.controls {
            w.tableRow(columns, [control.control.id, control.title, label(control.status),
                                 control.checkIDs.isEmpty ? "none" : "\(control.checkIDs.count)"],
                       statusColumn: 2, status: control.status)
        }
        w.space(14)
        let results = Dictionary(input.results.map { ($0.checkID, $0) }, uniquingKeysWith: { a, _ in a })
        for control in score.controls where !control.checkIDs.isEmpty {
            w.section("\(control.control.id) \(control.title)", level: 2, size: 11)
            w.paragraph("\(label(control.status)) · \(control.checkIDs.count) checks · \(control.evidenceIDs.count) evidence items",
                        font: .regular, size: 9, color: statusColor(control.status))
            let columns: [(String, Double)] = [("Check", 190), ("Status", 75), ("Evidence (id, collected at)", 230)]
            w.tableHeader(columns)
            for checkID in control.checkIDs {
                let result = results[checkID]
                w.tableRow(columns, [result.map { "\($0.title) (\(checkID))" } ?? checkID,
                                     result.map { label($0.status) } ?? "—", evidenceCell(result?.evidenceIDs ?? [])],
                           statusColumn: 1, status: result?.status)
            }
            w.space(10)
        }
    }

    // MARK: Exceptions and changes

    func exceptions(_ w: inout Writer) {
        w.section("Exceptions", level: 1)
        let exceptions = input.context.exceptions.sorted { ($0.checkID, $0.resource ?? "", $0.id) < ($1.checkID, $1.resource ?? "", $1.id) }
        guard !exceptions.isEmpty else {
            w.paragraph("No risk exceptions are recorded for \(input.organization.name).", font: .regular, size: 10)
            return
        }
        w.paragraph("Risks the organization accepted: a check or resource under an exception in force is excepted, "
                    + "and left out of the score; an expired exception no longer applies.", font: .regular, size: 9)
        w.space(4)
        let columns: [(String, Double)] = [("Check", 125), ("Resource", 90), ("Approver", 85), ("Expires", 75), ("Justification", 120)]
        w.tableHeader(columns)
        for exception in exceptions {
            let expired = exception.expires <= input.asOf
            w.tableRow(columns, [exception.checkID, exception.resource ?? "(the whole check)", exception.approver,
                                 Timestamp.day(exception.expires) + (expired ? " (EXPIRED)" : ""), exception.justification])
        }
    }

    func changes(_ w: inout Writer) {
        w.section("Changes since the last run", level: 1)
        guard let changes = input.context.changes, let previous = changes.previousRun else {
            w.paragraph("This is the first run of \(input.pipeline) for \(input.organization.name): nothing to compare with.",
                        font: .regular, size: 10)
            return
        }
        w.paragraph("Compared with run \(previous).", font: .regular, size: 10)
        if changes.isEmpty { w.paragraph("Nothing changed.", font: .regular, size: 10) }
        for (title, items) in [("Newly failing checks", changes.newlyFailing), ("Newly passing checks", changes.newlyPassing),
                               ("New findings", changes.newFindings), ("Resolved findings", changes.resolvedFindings),
                               ("New resources", changes.newResources), ("Resources gone", changes.vanishedResources),
                               ("Exceptions expired", changes.exceptionsExpired)] where !items.isEmpty {
            w.space(4)
            w.paragraph("\(title) (\(items.count))", font: .bold, size: 10)
            for item in items { w.paragraph("• " + item, font: .regular, size: 9, indent: 12) }
        }
    }

    // MARK: Every check and the evidence

    func checks(_ w: inout Writer) {
        w.section("All checks", level: 1)
        for result in input.results {
            w.keepTogether(60)
            w.paragraph("\(result.title)", font: .bold, size: 11)
            w.paragraph("\(label(result.status)) · \(result.checkID) · "
                        + result.controls.map { "\($0.framework) \($0.id)" }.joined(separator: ", "),
                        font: .regular, size: 9, color: statusColor(result.status))
            w.paragraph(result.reason, font: .regular, size: 10)
            for finding in result.findings {
                w.paragraph("• " + finding, font: .regular, size: 9, indent: 12)
            }
            evidenceSummary(&w, result.evidenceIDs)
            w.space(10)
        }
    }

    func evidence(_ w: inout Writer) {
        w.section("Evidence appendix", level: 1)
        w.paragraph("Every evidence item of the run, by id (the first 12 hex digits of its SHA-256 identity; the bundle holds each "
                    + "under evidence/<id>/ with its metadata).", font: .regular, size: 9)
        w.space(4)
        let columns: [(String, Double)] = [("Id", 72), ("Source", 62), ("Operation and resource", 206), ("Collected at", 100), ("Bytes", 55)]
        w.tableHeader(columns)
        for item in distinctEvidence.sorted(by: { ($0.source, $0.operation, $0.resource, $0.id) < ($1.source, $1.operation, $1.resource, $1.id) }) {
            w.tableRow(columns, [String(item.id.prefix(12)), item.source, "\(item.operation) \(item.resource)",
                                 Timestamp.iso8601(item.collectedAt), "\(item.size)"], font: .mono)
        }
        if !input.failures.isEmpty {
            w.space(14)
            w.paragraph("Not collected", font: .bold, size: 12)
            for failure in input.failures.sorted(by: { ($0.operation, $0.resource) < ($1.operation, $1.resource) }) {
                w.paragraph("• \(failure.source) \(failure.operation) \(failure.resource): \(failure.reason)",
                            font: .regular, size: 9, indent: 12)
            }
        }
    }

    // MARK: Helpers

    /// The first few evidence items by id prefix and clock; the rest counted, left to the appendix.
    func evidenceCell(_ ids: [String]) -> String {
        guard !ids.isEmpty else { return "none" }
        var lines = ids.prefix(Self.evidenceShown).map { id in
            String(id.prefix(12)) + (positions[id].map { " " + Timestamp.iso8601(input.evidence[$0].collectedAt) } ?? "")
        }
        if ids.count > Self.evidenceShown { lines.append("and \(ids.count - Self.evidenceShown) more (see the evidence appendix)") }
        return lines.joined(separator: "\n")
    }

    func evidenceSummary(_ w: inout Writer, _ ids: [String]) {
        guard !ids.isEmpty else { return }
        w.paragraph("Evidence (\(ids.count)): " + evidenceCell(ids).replacingOccurrences(of: "\n", with: "; "),
                    font: .mono, size: 8, color: (0.3, 0.3, 0.3))
    }

    func severity(_ result: CheckResult) -> Catalog.Severity? { input.context.checks[result.checkID]?.severity }

    func label(_ status: CheckStatus) -> String {
        switch status {
        case .pass: return "PASS"
        case .fail: return "FAIL"
        case .notVerified: return "NOT VERIFIED"
        case .notApplicable: return "NOT APPLICABLE"
        case .excepted: return "EXCEPTED"
        }
    }

    func statusColor(_ status: CheckStatus) -> (Double, Double, Double) { Self.statusRGB(status) }

    func scoreColor(_ ratio: Double?) -> (Double, Double, Double) {
        guard let ratio else { return (0.4, 0.4, 0.4) }
        if ratio >= 0.9 { return (0.1, 0.5, 0.2) }
        if ratio >= 0.6 { return (0.7, 0.45, 0.0) }
        return (0.75, 0.1, 0.1)
    }

    static func statusRGB(_ status: CheckStatus, light: Bool = false) -> (Double, Double, Double) {
        switch status {
        case .pass: return (0.1, 0.5, 0.2)
        case .fail: return (0.75, 0.1, 0.1)
        case .notVerified: return (0.7, 0.45, 0.0)
        case .excepted: return (0.35, 0.35, 0.6)
        case .notApplicable: return light ? (0.75, 0.75, 0.75) : (0.4, 0.4, 0.4)
        }
    }
}
