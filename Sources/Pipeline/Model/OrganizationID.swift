import Foundation

/// An organization id, checked against a strict pattern before any use: it becomes an object
/// key prefix, a database value and a file name, so nothing that could escape those may pass.
///
/// Pattern: 1 to 63 characters, lowercase ASCII letters, digits and `-`, starting with a letter
/// or digit and not ending with `-`.
public struct OrganizationID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let rawValue: String

    public init(_ raw: String) throws(PipelineError) {
        guard Self.isValid(raw) else {
            throw PipelineError.invalidOrganizationID(raw)
        }
        rawValue = raw
    }

    public static func isValid(_ raw: String) -> Bool {
        let bytes = Array(raw.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        for (index, byte) in bytes.enumerated() {
            let isLetter = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
            let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
            let isHyphen = byte == UInt8(ascii: "-")
            if isHyphen && (index == 0 || index == bytes.count - 1) { return false }
            if !(isLetter || isDigit || isHyphen) { return false }
        }
        return true
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        try self.init(raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// Renders untrusted text safely inside an error message: control characters and quotes escaped,
/// long values cut, so a hostile id cannot forge log lines or terminal escapes.
public func quotedForMessage(_ raw: String, limit: Int = 80) -> String {
    var out = "\""
    for scalar in raw.unicodeScalars.prefix(limit) {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += String(format: "\\u{%02X}", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    if raw.unicodeScalars.count > limit { out += "…" }
    return out + "\""
}
