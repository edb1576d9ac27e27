import Foundation
import Pipeline

/// Flows text down pages, breaking pages, repeating table headers and drawing footers. It lays a
/// report out in one of three modes: `titles` only notes the sections (how long the contents
/// are), `measure` learns each section's page and the page count, `draw` draws.
struct Writer {
    enum Mode { case titles, measure, draw }

    struct Section {
        let title: String
        let level: Int
        let page: Int
        let destination: String
    }

    let canvas: PDFCanvas
    let mode: Mode
    let totalPages: Int
    let footer: String
    var page = 1
    var y = PDFReport.margin
    var pageHasContent = false
    /// The text drawn (when drawing): paragraphs and fields whole, table rows as `a | b | c`.
    var transcript: [String] = []
    var sections: [Section] = []
    private var outlineParent: Int32 = 0

    var draw: Bool { mode == .draw }
    /// Whether text is laid out at all (not when only the sections' titles are wanted).
    private var lays: Bool { mode != .titles }

    init(canvas: PDFCanvas, mode: Mode, totalPages: Int = 0, footer: String) {
        self.canvas = canvas
        self.mode = mode
        self.totalPages = totalPages
        self.footer = footer
    }

    mutating func finishPage() {
        guard draw else { return }
        canvas.setColor(0.45, 0.45, 0.45)
        canvas.setFont(.regular, size: 8)
        canvas.line(x1: PDFReport.margin, y1: PDFCanvas.pageHeight - 45, x2: PDFCanvas.pageWidth - PDFReport.margin,
                    y2: PDFCanvas.pageHeight - 45)
        let number = "Page \(page) of \(totalPages)"
        let numberWidth = canvas.width(of: number)
        canvas.text(canvas.fit(footer, width: PDFReport.contentWidth - numberWidth - 12), x: PDFReport.margin, y: PDFCanvas.pageHeight - 32)
        canvas.text(number, x: PDFCanvas.pageWidth - PDFReport.margin - numberWidth, y: PDFCanvas.pageHeight - 32)
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

    mutating func keepTogether(_ height: Double) { if lays { ensure(height) } }

    mutating func space(_ height: Double) {
        if lays { y += height }
    }

    mutating func band(height: Double, color: (Double, Double, Double)) {
        if draw {
            canvas.setColor(color.0, color.1, color.2)
            canvas.fillRect(x: 0, y: 0, width: PDFCanvas.pageWidth, height: height)
        }
    }

    /// A titled section: in the contents, the PDF's outline (level 2 under the level 1 before it)
    /// and a link target. A level 1 section starts a page.
    mutating func section(_ title: String, level: Int, size: Double? = nil) {
        let destination = "section-\(sections.count + 1)"
        if level == 1, pageHasContent || !lays { pageBreak() }
        if lays { ensure(level == 1 ? 60 : 70) }
        sections.append(Section(title: title, level: level, page: page, destination: destination))
        if draw {
            canvas.destination(destination, y: y)
            let id = canvas.outline(title, destination: destination, parent: level == 1 ? 0 : outlineParent)
            if level == 1 { outlineParent = id }
        }
        paragraph(title, font: .bold, size: size ?? 18, color: (0.11, 0.29, 0.55))
        space(level == 1 ? 8 : 3)
    }

    /// One line of the contents: the title, indented by level, and its page, linked to it.
    mutating func contentsLine(_ section: Section) {
        guard lays else { return }
        let size = section.level == 1 ? 10.5 : 9.0
        let lineHeight = size * 1.5
        ensure(lineHeight)
        if draw {
            let indent = Double(section.level - 1) * 14
            let number = "\(section.page)"
            canvas.setFont(section.level == 1 ? .bold : .regular, size: size)
            let numberWidth = canvas.width(of: number)
            canvas.setColor(0, 0, 0)
            canvas.text(canvas.fit(section.title, width: PDFReport.contentWidth - indent - numberWidth - 16),
                        x: PDFReport.margin + indent, y: y + size)
            canvas.text(number, x: PDFReport.margin + PDFReport.contentWidth - numberWidth, y: y + size)
            canvas.link(to: section.destination, x: PDFReport.margin, y: y, width: PDFReport.contentWidth, height: lineHeight)
        }
        y += lineHeight
        pageHasContent = true
    }

    /// Reserves `height` on one page and draws into it (when drawing).
    mutating func chart(height: Double, _ body: (PDFCanvas, Double) -> Void) {
        guard lays else { return }
        ensure(height)
        if draw { body(canvas, y) }
        y += height
        pageHasContent = true
    }

    mutating func field(_ name: String, _ value: String) {
        guard lays else { return }
        if draw { transcript.append("\(name): \(value)") }
        canvas.setFont(.bold, size: 10)
        ensure(15)
        if draw {
            canvas.setColor(0.3, 0.3, 0.3)
            canvas.text(name, x: PDFReport.margin, y: y + 10)
        }
        canvas.setFont(.regular, size: 10)
        for line in canvas.wrap(value, maxWidth: PDFReport.contentWidth - 110) {
            ensure(14)
            if draw {
                canvas.setFont(.regular, size: 10)
                canvas.setColor(0, 0, 0)
                canvas.text(line, x: PDFReport.margin + 110, y: y + 10)
            }
            y += 14
            pageHasContent = true
        }
    }

    mutating func paragraph(_ text: String, font: PDFCanvas.Font, size: Double, indent: Double = 0,
                            color: (Double, Double, Double) = (0, 0, 0), record: Bool = true) {
        guard lays else { return }
        if draw, record { transcript.append(text) }
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

    private var header: [(String, Double)] = []

    mutating func tableHeader(_ columns: [(String, Double)], repeated: Bool = false) {
        guard lays else { return }
        if draw, !repeated { transcript.append(columns.map(\.0).joined(separator: " | ")) }
        header = columns
        ensure(40)
        canvas.setFont(.bold, size: 9)
        if draw {
            canvas.setColor(0.92, 0.94, 0.97)
            canvas.fillRect(x: PDFReport.margin, y: y, width: PDFReport.contentWidth, height: 16)
            canvas.setColor(0, 0, 0)
        }
        var x = PDFReport.margin + 3
        for (title, width) in columns {
            if draw { canvas.text(canvas.fit(title, width: width - 6), x: x, y: y + 11.5) }
            x += width
        }
        y += 18
        pageHasContent = true
    }

    /// A row of wrapped cells. A row that fits a page is kept on one, after the header repeated on
    /// a new page when it does not fit this one; a row taller than a page continues line by line
    /// on the next, under the header again.
    mutating func tableRow(_ columns: [(String, Double)], _ cells: [String], font: PDFCanvas.Font = .regular,
                           statusColumn: Int? = nil, status: CheckStatus? = nil) {
        guard lays else { return }
        let size = 8.5
        if draw { transcript.append(cells.joined(separator: " | ")) }
        canvas.setFont(font, size: size)
        let wrapped = zip(columns, cells).map { canvas.wrap($1, maxWidth: $0.1 - 6) }
        let lineHeight = size * 1.35
        let lines = wrapped.map(\.count).max() ?? 1
        let height = Double(lines) * lineHeight + 5
        let pageRoom = PDFReport.bottom - PDFReport.margin - 18
        if y + height > PDFReport.bottom, pageHasContent, height <= pageRoom || y + 3 * lineHeight > PDFReport.bottom {
            pageBreak()
            tableHeader(columns, repeated: true)
        }
        for line in 0..<lines {
            if y + lineHeight > PDFReport.bottom - 5 {
                pageBreak()
                tableHeader(columns, repeated: true)
            }
            if draw {
                var x = PDFReport.margin + 3
                for (index, cell) in wrapped.enumerated() {
                    if line < cell.count {
                        if index == statusColumn, let status {
                            let c = PDFReport.statusRGB(status)
                            canvas.setColor(c.0, c.1, c.2)
                            canvas.setFont(.bold, size: size)
                        } else {
                            canvas.setColor(0, 0, 0)
                            canvas.setFont(font, size: size)
                        }
                        canvas.text(cell[line], x: x, y: y + size)
                    }
                    x += columns[index].1
                }
            }
            y += lineHeight
        }
        y += 5
        if draw {
            canvas.setColor(0.85, 0.85, 0.85)
            canvas.line(x1: PDFReport.margin, y1: y - 2, x2: PDFReport.margin + PDFReport.contentWidth, y2: y - 2)
        }
        pageHasContent = true
    }
}
