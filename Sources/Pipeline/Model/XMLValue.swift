import Foundation

/// Reads the XML AWS services answer in (the query protocol and S3) as a `JSONValue`, the way
/// checks read every answer: the root element becomes `{"Name": …}`, an element with child
/// elements an object of them, a leaf its text (entities decoded). A repeated name, and the
/// children of a list wrapper (`<Users><member>…`, `<groupSet><item>…`, `<Buckets><Bucket>…`),
/// become arrays; an empty wrapper is an empty string, which readers take as an empty list.
/// Attributes, comments, processing instructions and namespaces are skipped. No DTD, no entity
/// expansion beyond the five predefined ones and character references.
public enum XMLValue {
    public struct SyntaxError: Error, CustomStringConvertible {
        public let offset: Int
        public let message: String
        public var description: String { "\(message) at byte \(offset)" }
    }

    static let listItemNames: Set<String> = ["member", "item", "entry"]

    public static func parse(_ data: Data) throws -> JSONValue {
        var parser = Parser(bytes: Array(data))
        parser.skipProlog()
        guard let root = try parser.element(depth: 0) else { throw parser.error("no root element") }
        parser.skipMisc()
        guard parser.position == parser.bytes.count else { throw parser.error("text after the root element") }
        return .object([root.name: root.value])
    }

    struct Parser {
        let bytes: [UInt8]
        var position = 0

        func error(_ message: String) -> SyntaxError { SyntaxError(offset: position, message: message) }

        func peek(_ text: String) -> Bool {
            let utf8 = Array(text.utf8)
            guard position + utf8.count <= bytes.count else { return false }
            return Array(bytes[position..<(position + utf8.count)]) == utf8
        }

        mutating func skip(past text: String) throws {
            let utf8 = Array(text.utf8)
            while position + utf8.count <= bytes.count {
                if Array(bytes[position..<(position + utf8.count)]) == utf8 {
                    position += utf8.count
                    return
                }
                position += 1
            }
            throw error("unterminated markup (no \(text))")
        }

        mutating func skipSpace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        /// Space, comments and processing instructions.
        mutating func skipMisc() {
            while true {
                skipSpace()
                if peek("<?") { _ = try? skip(past: "?>") } else if peek("<!--") { _ = try? skip(past: "-->") } else { return }
            }
        }

        mutating func skipProlog() {
            skipMisc()
            if peek("<!DOCTYPE") { _ = try? skip(past: ">") }
            skipMisc()
        }

        mutating func readName() throws -> String {
            let start = position
            while position < bytes.count, ![0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/"), UInt8(ascii: "=")].contains(bytes[position]) {
                position += 1
            }
            guard position > start else { throw error("an element needs a name") }
            let full = String(decoding: bytes[start..<position], as: UTF8.self)
            // Namespace prefixes are dropped: <ns:Name> reads as Name.
            return full.split(separator: ":").last.map(String.init) ?? full
        }

        /// The element at `position` (which is at `<`), or nil at a closing tag.
        mutating func element(depth: Int) throws -> (name: String, value: JSONValue)? {
            guard depth < 64 else { throw error("elements nested too deep") }
            guard position < bytes.count, bytes[position] == UInt8(ascii: "<"), !peek("</") else { return nil }
            position += 1
            let name = try readName()
            // Attributes are skipped (quoted values may hold '>').
            while position < bytes.count, bytes[position] != UInt8(ascii: ">"), !peek("/>") {
                if bytes[position] == UInt8(ascii: "\"") || bytes[position] == UInt8(ascii: "'") {
                    let quote = bytes[position]
                    position += 1
                    while position < bytes.count, bytes[position] != quote { position += 1 }
                }
                position += 1
            }
            guard position < bytes.count else { throw error("unterminated tag <\(name)>") }
            if peek("/>") {
                position += 2
                return (name, .string(""))
            }
            position += 1
            var text: [UInt8] = []
            var children: [(String, JSONValue)] = []
            while true {
                guard position < bytes.count else { throw error("<\(name)> is not closed") }
                if peek("</") {
                    position += 2
                    let closing = try readName()
                    guard closing == name else { throw error("</\(closing)> closes <\(name)>") }
                    skipSpace()
                    guard position < bytes.count, bytes[position] == UInt8(ascii: ">") else { throw error("unterminated </\(name)>") }
                    position += 1
                    break
                } else if peek("<!--") {
                    try skip(past: "-->")
                } else if peek("<![CDATA[") {
                    position += 9
                    let start = position
                    try skip(past: "]]>")
                    text += bytes[start..<(position - 3)]
                } else if peek("<?") {
                    try skip(past: "?>")
                } else if bytes[position] == UInt8(ascii: "<") {
                    guard let child = try element(depth: depth + 1) else { throw error("unexpected closing tag") }
                    children.append(child)
                } else if bytes[position] == UInt8(ascii: "&") {
                    text += try entity()
                } else {
                    text.append(bytes[position])
                    position += 1
                }
            }
            guard !children.isEmpty else { return (name, .string(String(decoding: text, as: UTF8.self))) }
            return (name, Self.combine(name, children))
        }

        static func combine(_ name: String, _ children: [(String, JSONValue)]) -> JSONValue {
            let names = Set(children.map(\.0))
            if names.count == 1, let only = names.first, listItemNames.contains(only) || name == only + "s" || name == only + "List" {
                return .array(children.map(\.1))
            }
            var object: [String: JSONValue] = [:]
            var counts: [String: Int] = [:]
            for (child, _) in children { counts[child, default: 0] += 1 }
            for (child, value) in children {
                if counts[child]! > 1 {
                    if case .array(var list)? = object[child] {
                        list.append(value)
                        object[child] = .array(list)
                    } else {
                        object[child] = .array([value])
                    }
                } else {
                    object[child] = value
                }
            }
            return .object(object)
        }

        mutating func entity() throws -> [UInt8] {
            let start = position
            guard let end = bytes[position...].prefix(12).firstIndex(of: UInt8(ascii: ";")) else {
                throw error("an '&' that starts no entity")
            }
            let body = String(decoding: bytes[(start + 1)..<end], as: UTF8.self)
            position = end + 1
            switch body {
            case "lt": return Array("<".utf8)
            case "gt": return Array(">".utf8)
            case "amp": return Array("&".utf8)
            case "quot": return Array("\"".utf8)
            case "apos": return Array("'".utf8)
            default:
                let scalar: UInt32?
                if body.hasPrefix("#x") || body.hasPrefix("#X") {
                    scalar = UInt32(body.dropFirst(2), radix: 16)
                } else if body.hasPrefix("#") {
                    scalar = UInt32(body.dropFirst())
                } else {
                    scalar = nil
                }
                guard let scalar, let character = Unicode.Scalar(scalar) else {
                    position = start
                    throw error("unknown entity &\(body);")
                }
                return Array(String(Character(character)).utf8)
            }
        }
    }
}

extension JSONProjection {
    /// The projection of a value already built (an XML answer read by `XMLValue`).
    public func apply(_ value: JSONValue) -> JSONValue {
        Self.project(value, root)
    }

    static func project(_ value: JSONValue, _ node: Node) -> JSONValue {
        if node.whole { return value }
        switch value {
        case .object(let object):
            var kept: [String: JSONValue] = [:]
            for (key, child) in object {
                if let (_, next) = node.child(key) { kept[key] = project(child, next) }
            }
            return .object(kept)
        case .array(let list):
            // As for JSON: one entry per element even where no path goes into it.
            guard let (_, next) = node.child("[]") else { return .array(list.map { _ in .null }) }
            return .array(list.map { project($0, next) })
        default:
            return value
        }
    }
}
