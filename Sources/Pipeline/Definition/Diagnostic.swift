import Foundation

/// One problem found in a definition, with where it is. Printed `file:line:col: severity: message [code]`.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable { case error, warning }

    public let file: String
    public let line: Int
    public let column: Int
    public let severity: Severity
    public let message: String
    public let code: String

    public init(file: String, line: Int, column: Int, severity: Severity = .error, message: String, code: String) {
        self.file = file
        self.line = line
        self.column = column
        self.severity = severity
        self.message = message
        self.code = code
    }

    public var description: String {
        "\(file):\(line):\(column): \(severity.rawValue): \(message) [\(code)]"
    }

    /// Longest stretch of the offending line shown.
    public static let snippetWidth = 100

    /// The description followed by the offending source line (that line only, cut to
    /// `snippetWidth` characters around the column, control characters shown as `?`) and a caret
    /// under the column.
    public func rendered(source: String?) -> String {
        guard let source else { return description }
        var current = 1
        var lineStart = source.startIndex
        while current < line, let newline = source[lineStart...].firstIndex(of: "\n") {
            lineStart = source.index(after: newline)
            current += 1
        }
        guard current == line, lineStart <= source.endIndex else { return description }
        let lineEnd = source[lineStart...].firstIndex(of: "\n") ?? source.endIndex
        let characters = Array(source[lineStart..<lineEnd].map { $0.isASCII && ($0.asciiValue! < 0x20 || $0.asciiValue! == 0x7F) ? "?" : $0 })
        let column = max(1, min(self.column, characters.count + 1))
        let start = max(0, min(column - 1 - Self.snippetWidth / 2, characters.count - Self.snippetWidth))
        let end = min(characters.count, start + Self.snippetWidth)
        let text = (start > 0 ? "…" : "") + String(characters[start..<end]) + (end < characters.count ? "…" : "")
        let caret = String(repeating: " ", count: column - 1 - start + (start > 0 ? 1 : 0)) + "^"
        return "\(description)\n  \(text)\n  \(caret)"
    }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
