import Foundation
import Pipeline

/// Draws the compliance report: a cover with the organization, period and scores; the controls
/// of each framework with status and the evidence each used; every check with its reasons and
/// findings; the evidence list; page numbers on every page.
struct PDFReport {
    let input: ReportInput
    let options: RenderOptions

    static let margin = 50.0
    static let contentWidth = PDFCanvas.pageWidth - 2 * margin
    static let bottom = PDFCanvas.pageHeight - 60


    /// Draws the report into `file`; returns its text: each paragraph, field and table row once,
    /// unwrapped (so it does not depend on the fonts' widths), without page furniture.
    @discardableResult
    func render(to file: URL) throws -> [String] {
        let canvas = try PDFCanvas(file: file, title: "\(options.title): \(input.organization.name)",
                                   author: "Lightsail", createdAt: input.asOf)
        // Pass one counts pages without drawing, so every footer can say "Page n of N".
        var counter = Writer(canvas: canvas, draw: false, totalPages: 0, footer: footer)
        layout(&counter)
        var writer = Writer(canvas: canvas, draw: true, totalPages: counter.page, footer: footer)
        layout(&writer)
        writer.finishPage()
        try canvas.finish()
        return writer.transcript
    }

    var footer: String {
        "Lightsail · \(input.organization.name) (\(input.organization.id)) · evidence as of \(Timestamp.iso8601(input.asOf))"
    }

    func layout(_ w: inout Writer) {
        cover(&w)
        w.pageBreak()
        controls(&w)
        checks(&w)
        evidence(&w)
    }

    func cover(_ w: inout Writer) {
        w.band(height: 8, color: (0.11, 0.29, 0.55))
        w.space(40)
        w.paragraph(options.title, font: .bold, size: 26)
        w.space(6)
        w.paragraph(input.organization.name, font: .regular, size: 18)
        w.space(18)
        w.field("Organization", "\(input.organization.id)")
        w.field("Period", "\(Timestamp.day(input.periodStart)) to \(Timestamp.day(input.asOf)) (UTC)")
        w.field("Evidence as of", Timestamp.iso8601(input.asOf))
        w.field("Pipeline", input.pipeline)
        w.field("Evidence items", "\(input.evidence.count) collected, \(input.failures.count) could not be collected")
        w.space(30)
        w.paragraph("Overall score", font: .bold, size: 12)
        w.paragraph(input.scores.percentText, font: .bold, size: 44, color: scoreColor(input.scores.ratio))
        w.paragraph("\(input.scores.passed) of \(input.scores.evaluated) evaluated controls passing", font: .regular, size: 11)
        w.space(24)
        for score in input.scores.frameworks {
            w.paragraph("\(score.title): \(score.percentText)", font: .bold, size: 13)
            w.paragraph("\(score.passed) passed · \(score.failed) failed · \(score.notVerified) not verified · "
                        + "\(score.notApplicable) not applicable · \(score.excepted) excepted",
                        font: .regular, size: 10)
            w.space(8)
        }
        w.space(16)
        w.paragraph("A score weighs each evaluated check (passed, failed or not verified) by its severity, from low (1) to critical (4), over the criteria it supports; not applicable and excepted checks are left out. A check never passes on missing, stale or unreadable evidence: such a check is not verified, with the reason. Evidence ids are SHA-256 digests; the export bundle carries every evidence file with its hash, and report.txt the text of this report."
                    + "A check never passes on missing or unreadable evidence: such a check is not verified, "
                    + "with the reason. Evidence ids are SHA-256 digests; the export bundle carries every "
                    + "evidence file with its hash.", font: .regular, size: 9, color: (0.3, 0.3, 0.3))
    }

    func controls(_ w: inout Writer) {
        w.heading("Controls")
        for score in input.scores.frameworks {
            w.paragraph(score.title, font: .bold, size: 12)
            w.space(4)
            let columns: [(String, Double)] = [("Control", 55), ("Title", 190), ("Status", 80), ("Checks and evidence", 170)]
            w.tableHeader(columns)
            for control in score.controls {
                let evidence = control.evidenceIDs.map { String($0.prefix(12)) }
                let detail = control.checkIDs.joined(separator: "\n")
                    + (evidence.isEmpty ? "\nno evidence" : "\nevidence: " + evidence.joined(separator: ", "))
                w.tableRow(columns, [control.control.id, control.title, label(control.status), detail],
                           statusColumn: 2, status: control.status)
            }
            w.space(14)
        }
    }

    func checks(_ w: inout Writer) {
        w.heading("Checks")
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
            if !result.evidenceIDs.isEmpty {
                w.paragraph("Evidence: " + result.evidenceIDs.map { String($0.prefix(12)) }.joined(separator: ", "),
                            font: .mono, size: 8, color: (0.3, 0.3, 0.3))
            }
            w.space(10)
        }
    }

    func evidence(_ w: inout Writer) {
        w.heading("Evidence")
        let columns: [(String, Double)] = [("Id", 80), ("Source", 50), ("Request", 240), ("Status", 40), ("Bytes", 85)]
        w.tableHeader(columns)
        for item in input.evidence.sorted(by: { ($0.request, $0.id) < ($1.request, $1.id) }) {
            w.tableRow(columns, [String(item.id.prefix(12)), item.source, item.request, "\(item.status)", "\(item.size)"],
                       font: .mono)
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
}

/// Flows text down pages, breaking pages and drawing footers. With `draw` false it only
/// measures, which is how the page count is known before the first footer is drawn.
struct Writer {
    let canvas: PDFCanvas
    let draw: Bool
    let totalPages: Int
    let footer: String
    var page = 1
    var y = PDFReport.margin
    var pageHasContent = false
    /// The text drawn (when drawing): paragraphs and fields whole, table rows as `a | b | c`.
    var transcript: [String] = []

    init(canvas: PDFCanvas, draw: Bool, totalPages: Int, footer: String) {
        self.canvas = canvas
        self.draw = draw
        self.totalPages = totalPages
        self.footer = footer
    }

    mutating func finishPage() {
        guard draw else { return }
        canvas.setColor(0.45, 0.45, 0.45)
        canvas.setFont(.regular, size: 8)
        canvas.line(x1: PDFReport.margin, y1: PDFCanvas.pageHeight - 45, x2: PDFCanvas.pageWidth - PDFReport.margin,
                    y2: PDFCanvas.pageHeight - 45)
        canvas.text(footer, x: PDFReport.margin, y: PDFCanvas.pageHeight - 32)
        let number = "Page \(page) of \(totalPages)"
        canvas.text(number, x: PDFCanvas.pageWidth - PDFReport.margin - canvas.width(of: number),
                    y: PDFCanvas.pageHeight - 32)
    }

    mutating func pageBreak() {
        finishPage()
        if draw { canvas.newPage() }
        page += 1
        y = PDFReport.margin
        pageHasContent = false
    }

    mutating func ensure(_ height: Double) {
        if y + height > PDFReport.bottom, pageHasContent { pageBreak() }
    }

    mutating func keepTogether(_ height: Double) { ensure(height) }

    mutating func space(_ height: Double) {
        y += height
    }

    mutating func band(height: Double, color: (Double, Double, Double)) {
        if draw {
            canvas.setColor(color.0, color.1, color.2)
            canvas.fillRect(x: 0, y: 0, width: PDFCanvas.pageWidth, height: height)
        }
    }

    mutating func heading(_ text: String) {
        ensure(60)
        paragraph(text, font: .bold, size: 18, color: (0.11, 0.29, 0.55))
        space(8)
    }

    mutating func field(_ name: String, _ value: String) {
        if draw { transcript.append("\(name): \(value)") }
        canvas.setFont(.bold, size: 10)
        ensure(15)
        if draw {
            canvas.setColor(0.3, 0.3, 0.3)
            canvas.text(name, x: PDFReport.margin, y: y + 10)
        }
        canvas.setFont(.regular, size: 10)
        let lines = canvas.wrap(value, maxWidth: PDFReport.contentWidth - 110)
        for line in lines {
            ensure(14)
            if draw {
                canvas.setColor(0, 0, 0)
                canvas.text(line, x: PDFReport.margin + 110, y: y + 10)
            }
            y += 14
            pageHasContent = true
        }
    }

    mutating func paragraph(_ text: String, font: PDFCanvas.Font, size: Double, indent: Double = 0,
                            color: (Double, Double, Double) = (0, 0, 0)) {
        if draw { transcript.append(text) }
        canvas.setFont(font, size: size)
        let lineHeight = size * 1.35
        for line in canvas.wrap(text, maxWidth: PDFReport.contentWidth - indent) {
            ensure(lineHeight)
            if draw {
                canvas.setFont(font, size: size)
                canvas.setColor(color.0, color.1, color.2)
                canvas.text(line, x: PDFReport.margin + indent, y: y + size)
            }
            y += lineHeight
            pageHasContent = true
        }
    }

    mutating func tableHeader(_ columns: [(String, Double)], repeated: Bool = false) {
        if draw, !repeated { transcript.append(columns.map(\.0).joined(separator: " | ")) }
        ensure(40)
        canvas.setFont(.bold, size: 9)
        if draw {
            canvas.setColor(0.92, 0.94, 0.97)
            canvas.fillRect(x: PDFReport.margin, y: y, width: PDFReport.contentWidth, height: 16)
            canvas.setColor(0, 0, 0)
        }
        var x = PDFReport.margin + 3
        for (title, width) in columns {
            if draw { canvas.text(title, x: x, y: y + 11.5) }
            x += width
        }
        y += 18
        pageHasContent = true
    }

    mutating func tableRow(_ columns: [(String, Double)], _ cells: [String], font: PDFCanvas.Font = .regular,
                           statusColumn: Int? = nil, status: CheckStatus? = nil) {
        let size = 8.5
        if draw { transcript.append(cells.joined(separator: " | ")) }
        canvas.setFont(font, size: size)
        let wrapped = zip(columns, cells).map { canvas.wrap($1, maxWidth: $0.1 - 6) }
        let lineHeight = size * 1.35
        let height = Double(wrapped.map(\.count).max() ?? 1) * lineHeight + 5
        if y + height > PDFReport.bottom, pageHasContent {
            pageBreak()
            tableHeader(columns, repeated: true)
            canvas.setFont(font, size: size)
        }
        var x = PDFReport.margin + 3
        for (index, lines) in wrapped.enumerated() {
            if draw {
                if index == statusColumn, let status {
                    let c = PDFReport.statusRGB(status)
                    canvas.setColor(c.0, c.1, c.2)
                    canvas.setFont(.bold, size: size)
                } else {
                    canvas.setColor(0, 0, 0)
                    canvas.setFont(font, size: size)
                }
                for (n, line) in lines.enumerated() {
                    canvas.text(line, x: x, y: y + size + Double(n) * lineHeight)
                }
            }
            x += columns[index].1
        }
        y += height
        if draw {
            canvas.setColor(0.85, 0.85, 0.85)
            canvas.line(x1: PDFReport.margin, y1: y - 2, x2: PDFReport.margin + PDFReport.contentWidth, y2: y - 2)
        }
        pageHasContent = true
    }
}

extension PDFReport {
    static func statusRGB(_ status: CheckStatus) -> (Double, Double, Double) {
        switch status {
        case .pass: return (0.1, 0.5, 0.2)
        case .fail: return (0.75, 0.1, 0.1)
        case .notVerified: return (0.7, 0.45, 0.0)
        case .notApplicable, .excepted: return (0.4, 0.4, 0.4)
        }
    }
}
