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

    /// The description followed by the offending source line and a caret under the column.
    public func rendered(source: String?) -> String {
        guard let source else { return description }
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count else { return description }
        let text = String(lines[line - 1]).replacingOccurrences(of: "\t", with: " ")
        let caret = String(repeating: " ", count: max(0, column - 1)) + "^"
        return "\(description)\n  \(text)\n  \(caret)"
    }
}

extension Array where Element == Diagnostic {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
