import CCairo
import Foundation
import Pipeline

/// The one owner of cairo: a PDF surface writing into a file as pages are finished, with the few
/// drawing and measuring calls the report needs. Every cairo status is checked at `finish()`.
/// Its calls block: make them on the blocking executor.
final class PDFCanvas {
    static let pageWidth = 595.0   // A4 in points
    static let pageHeight = 842.0

    private final class Sink {
        let handle: FileHandle
        var failure: String?
        init(handle: FileHandle) { self.handle = handle }
    }

    private let sink: Sink
    private let surface: OpaquePointer
    private let cr: OpaquePointer
    private var finished = false

    enum Font { case regular, bold, mono }

    /// Lays out the text cairo's own text calls cannot: scripts outside DejaVu Sans (CJK through
    /// fontconfig's fallback fonts) and right-to-left ones (pango reorders and shapes them).
    private let layout: OpaquePointer
    private var descriptions: [String: OpaquePointer] = [:]
    private var font: Font = .regular
    private var size = 10.0

    init(file: URL, title: String, author: String, subject: String = "", keywords: String = "", createdAt: Date) throws {
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: file) else {
            throw PipelineError(.render, "cannot write the report at \(file.path)")
        }
        sink = Sink(handle: handle)
        let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
        guard let surface = cairo_pdf_surface_create_for_stream({ closure, bytes, length in
            guard let closure, let bytes else { return CAIRO_STATUS_WRITE_ERROR }
            let sink = Unmanaged<Sink>.fromOpaque(closure).takeUnretainedValue()
            do {
                try sink.handle.write(contentsOf: UnsafeRawBufferPointer(start: bytes, count: Int(length)))
            } catch {
                sink.failure = error.localizedDescription
                return CAIRO_STATUS_WRITE_ERROR
            }
            return CAIRO_STATUS_SUCCESS
        }, sinkPointer, Self.pageWidth, Self.pageHeight) else {
            try? handle.close()
            throw PipelineError(.render, "cairo could not create a PDF surface")
        }
        self.surface = surface
        guard let cr = cairo_create(surface) else {
            cairo_surface_destroy(surface)
            throw PipelineError(.render, "cairo could not create a drawing context")
        }
        self.cr = cr
        guard let layout = pango_cairo_create_layout(cr) else {
            cairo_destroy(cr)
            cairo_surface_destroy(surface)
            throw PipelineError(.render, "pango could not create a text layout")
        }
        self.layout = layout
        // Fixed dates: the same run clock gives the same bytes.
        let date = Timestamp.iso8601(createdAt)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, title)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_AUTHOR, author)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_SUBJECT, subject)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_KEYWORDS, keywords)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "Lightsail pipeline")
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, date)
        cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_MOD_DATE, date)
        try check("create")
    }

    deinit {
        g_object_unref(UnsafeMutableRawPointer(layout))
        for description in descriptions.values { pango_font_description_free(description) }
        cairo_destroy(cr)
        cairo_surface_destroy(surface)
        try? sink.handle.close()
    }

    /// Advance widths of single characters in each font and size, measured once: the toy text
    /// API places glyphs by their advances without kerning, so a text's width is their sum.
    private var advances: [String: [Character: Double]] = [:]
    private var fontKey = ""
    /// The current font's advances of ASCII characters by code (0 until measured), kept apart
    /// from `advances`: most text is ASCII, and a lookup here hashes nothing.
    private var asciiAdvances = [Double](repeating: 0, count: 128)
    private var asciiByFont: [String: [Double]] = [:]

    func setFont(_ font: Font, size: Double) {
        let key = "\(font)-\(size)"
        guard key != fontKey else { return }
        if !fontKey.isEmpty { asciiByFont[fontKey] = asciiAdvances }
        asciiAdvances = asciiByFont[key] ?? [Double](repeating: 0, count: 128)
        fontKey = key
        self.font = font
        self.size = size
        switch font {
        case .regular: cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        case .bold: cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD)
        case .mono: cairo_select_font_face(cr, "DejaVu Sans Mono", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL)
        }
        cairo_set_font_size(cr, size)
    }

    func width(of text: String) -> Double {
        if let width = asciiWidth(text) { return width }
        guard Self.isSimple(text) else { return shaped(text).width }
        var total = 0.0
        for character in text { total += advance(of: character) }
        return total
    }

    /// The width of an ASCII text (printable characters only), from the table; nil for any other.
    private func asciiWidth(_ text: String) -> Double? {
        var total = 0.0
        for byte in text.utf8 {
            guard byte >= 0x20, byte < 0x7F else { return nil }
            var advance = asciiAdvances[Int(byte)]
            if advance == 0 {
                var extents = cairo_text_extents_t()
                cairo_text_extents(cr, String(UnicodeScalar(byte)), &extents)
                advance = extents.x_advance
                asciiAdvances[Int(byte)] = advance
            }
            total += advance
        }
        return total
    }

    private func advance(of character: Character) -> Double {
        if let ascii = character.asciiValue, ascii >= 0x20, ascii < 0x7F { return asciiWidth(String(character)) ?? 0 }
        if let known = advances[fontKey]?[character] { return known }
        let advance: Double
        if Self.isSimple(String(character)) {
            var extents = cairo_text_extents_t()
            cairo_text_extents(cr, String(character), &extents)
            advance = extents.x_advance
        } else {
            advance = shaped(String(character)).width
        }
        advances[fontKey, default: [:]][character] = advance
        return advance
    }

    /// Text DejaVu Sans draws left to right through cairo's own calls: every scalar before Hebrew
    /// (Latin, Greek, Cyrillic, punctuation). Anything else goes through pango.
    static func isSimple(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { $0.value < 0x0590 || (0x2000..<0x2070).contains($0.value) && $0.value != 0x200F && $0.value != 0x200E }
    }

    /// The layout holding `text` in the current font: its width and baseline.
    private func shaped(_ text: String) -> (width: Double, baseline: Double) {
        let key = fontKey
        let description: OpaquePointer
        if let known = descriptions[key] {
            description = known
        } else {
            description = pango_font_description_new()
            pango_font_description_set_family(description, font == .mono ? "DejaVu Sans Mono" : "DejaVu Sans")
            pango_font_description_set_weight(description, font == .bold ? Int32(LIGHTSAIL_PANGO_WEIGHT_BOLD) : Int32(LIGHTSAIL_PANGO_WEIGHT_NORMAL))
            pango_font_description_set_absolute_size(description, size * Double(LIGHTSAIL_PANGO_SCALE))
            descriptions[key] = description
        }
        pango_layout_set_font_description(layout, description)
        pango_layout_set_text(layout, text, -1)
        var logical = PangoRectangle()
        pango_layout_get_extents(layout, nil, &logical)
        return (Double(logical.width) / Double(LIGHTSAIL_PANGO_SCALE), Double(pango_layout_get_baseline(layout)) / Double(LIGHTSAIL_PANGO_SCALE))
    }

    func setColor(_ r: Double, _ g: Double, _ b: Double) {
        cairo_set_source_rgb(cr, r, g, b)
    }

    /// Draws `text` with its baseline at `y`.
    func text(_ text: String, x: Double, y: Double) {
        if Self.isSimple(text) {
            cairo_move_to(cr, x, y)
            cairo_show_text(cr, text)
        } else {
            let baseline = shaped(text).baseline
            cairo_move_to(cr, x, y - baseline)
            pango_cairo_show_layout(cr, layout)
        }
    }

    func strokeRect(x: Double, y: Double, width: Double, height: Double, lineWidth: Double = 0.5) {
        cairo_set_line_width(cr, lineWidth)
        cairo_rectangle(cr, x, y, width, height)
        cairo_stroke(cr)
    }

    func circle(x: Double, y: Double, radius: Double) {
        cairo_new_sub_path(cr)
        cairo_arc(cr, x, y, radius, 0, 2 * Double.pi)
        cairo_fill(cr)
    }

    func polyline(_ points: [(Double, Double)], width: Double) {
        guard let first = points.first else { return }
        cairo_set_line_width(cr, width)
        cairo_move_to(cr, first.0, first.1)
        for point in points.dropFirst() { cairo_line_to(cr, point.0, point.1) }
        cairo_stroke(cr)
    }

    /// A named place on the current page (links and the outline go to it).
    func destination(_ name: String, y: Double) {
        cairo_tag_begin(cr, "cairo.dest", "name='\(name)' x=0 y=\(y)")
        cairo_tag_end(cr, "cairo.dest")
    }

    /// Makes the rectangle a link to a destination.
    func link(to name: String, x: Double, y: Double, width: Double, height: Double) {
        cairo_tag_begin(cr, "Link", "dest='\(name)' rect=[\(x) \(y) \(width) \(height)]")
        cairo_tag_end(cr, "Link")
    }

    /// Adds a bookmark to the PDF's outline under `parent` (0 for the top); returns its id.
    @discardableResult
    func outline(_ title: String, destination: String, parent: Int32) -> Int32 {
        Int32(cairo_pdf_surface_add_outline(surface, parent, title, "dest='\(destination)'", cairo_pdf_outline_flags_t(rawValue: 0)))
    }

    func fillRect(x: Double, y: Double, width: Double, height: Double) {
        cairo_rectangle(cr, x, y, width, height)
        cairo_fill(cr)
    }

    func line(x1: Double, y1: Double, x2: Double, y2: Double, width: Double = 0.5) {
        cairo_set_line_width(cr, width)
        cairo_move_to(cr, x1, y1)
        cairo_line_to(cr, x2, y2)
        cairo_stroke(cr)
    }

    func newPage() {
        cairo_show_page(cr)
    }

    /// `text` cut to `width` with an ellipsis when it is wider.
    func fit(_ text: String, width maxWidth: Double) -> String {
        guard width(of: text) > maxWidth else { return text }
        var kept = ""
        var used = width(of: "…")
        for character in text {
            let advance = advance(of: character)
            if used + advance > maxWidth { break }
            kept.append(character)
            used += advance
        }
        return kept + "…"
    }

    /// Breaks `text` into lines no wider than `maxWidth` in the current font, at spaces where
    /// possible and inside long words (ids, URLs) where not.
    func wrap(_ text: String, maxWidth: Double) -> [String] {
        var lines: [String] = []
        let space = width(of: " ")
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            // Text drawn by cairo's own calls is as wide as its characters' advances: a line's
            // width grows by each word added, measured once. Shaped text is measured whole.
            let additive = Self.isSimple(String(paragraph))
            var current = ""
            var currentWidth = 0.0
            for word in paragraph.split(separator: " ", omittingEmptySubsequences: false).map(String.init) {
                let candidate = current.isEmpty ? word : current + " " + word
                let candidateWidth = !additive ? width(of: candidate)
                    : current.isEmpty ? width(of: word) : currentWidth + space + width(of: word)
                if candidateWidth <= maxWidth {
                    current = candidate
                    currentWidth = candidateWidth
                    continue
                }
                if !current.isEmpty { lines.append(current) }
                var piece = ""
                var pieceWidth = 0.0
                for character in word {
                    let advance = advance(of: character)
                    if pieceWidth + advance > maxWidth, !piece.isEmpty {
                        lines.append(piece)
                        piece = ""
                        pieceWidth = 0
                    }
                    piece.append(character)
                    pieceWidth += advance
                }
                current = piece
                currentWidth = additive ? pieceWidth : width(of: piece)
            }
            lines.append(current)
        }
        return lines
    }

    private func check(_ step: String) throws {
        let status = cairo_status(cr)
        let surfaceStatus = cairo_surface_status(surface)
        guard status == CAIRO_STATUS_SUCCESS, surfaceStatus == CAIRO_STATUS_SUCCESS else {
            let failing = status != CAIRO_STATUS_SUCCESS ? status : surfaceStatus
            let reason = sink.failure.map { "cannot write the file: \($0)" } ?? String(cString: cairo_status_to_string(failing))
            throw PipelineError(.render, "cairo failed to \(step) the PDF: \(reason)")
        }
    }

    /// Ends the document (a scratch file: the object store makes its stored copy durable).
    func finish() throws {
        guard !finished else { throw PipelineError(.render, "the report was already finished") }
        finished = true
        cairo_show_page(cr)
        try check("draw")
        cairo_surface_finish(surface)
        try check("finish")
    }
}
