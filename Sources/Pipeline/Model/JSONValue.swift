import Foundation

/// A JSON value, as checks read evidence. Checks keep only the parts of a body they read (see
/// `JSONProjection`), so a run holds a few fields per evidence item rather than every body.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var bool: Bool? { if case .bool(let value) = self { return value } else { return nil } }
    public var string: String? { if case .string(let value) = self { return value } else { return nil } }
    public var number: Double? { if case .number(let value) = self { return value } else { return nil } }
    public var int: Int? {
        guard case .number(let value) = self, value.rounded() == value, abs(value) < 1e15 else { return nil }
        return Int(value)
    }
    public var array: [JSONValue]? { if case .array(let value) = self { return value } else { return nil } }
    public var object: [String: JSONValue]? { if case .object(let value) = self { return value } else { return nil } }
}

/// A path into a JSON document: keys separated by `.`, and `[]` for every element of a list
/// (`required_pull_request_reviews.required_approving_review_count`, `[].login`).
public struct FieldPath: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let components: [String]

    public init(_ text: String) {
        components = text.isEmpty ? [] : text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    }

    public init(stringLiteral value: String) { self.init(value) }

    init(components: [String]) { self.components = components }

    public var description: String { components.joined(separator: ".") }
}

/// Parses JSON and keeps only what a set of paths reaches: an object keeps the keys the paths
/// name, a list keeps every element (projected by the paths under `[]`), a scalar is kept as it
/// is; a path that ends keeps the whole value there. What no path reaches is checked for syntax
/// and skipped without being built, so an 8 MB answer costs a scan, not a tree.
public struct JSONProjection: Sendable, Hashable {
    public let paths: Set<FieldPath>
    let root: Node

    public init(_ paths: some Sequence<FieldPath>) {
        self.paths = Set(paths)
        root = Node(self.paths.map(\.components))
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.paths == rhs.paths }
    public func hash(into hasher: inout Hasher) { hasher.combine(paths) }

    public struct SyntaxError: Error, CustomStringConvertible {
        public let offset: Int
        public let message: String
        public var description: String { "\(message) at byte \(offset)" }
    }

    /// The projected value of `data`, or a syntax error with its byte offset.
    public func apply(_ data: Data) throws -> JSONValue {
        try data.withUnsafeBytes { raw in
            var parser = Parser(bytes: raw.bindMemory(to: UInt8.self))
            let value = try parser.value(root)
            parser.skipSpace()
            guard parser.position == parser.bytes.count else { throw parser.error("unexpected text after the value") }
            return value
        }
    }

    /// The paths below one place in the document, built once per projection.
    final class Node: Sendable {
        /// A path ends here: keep the whole value.
        let whole: Bool
        let children: [String: Node]

        init(_ paths: [[String]]) {
            var whole = false
            var grouped: [String: [[String]]] = [:]
            for path in paths {
                guard let first = path.first else {
                    whole = true
                    continue
                }
                grouped[first, default: []].append(Array(path.dropFirst()))
            }
            self.whole = whole
            children = grouped.mapValues(Node.init)
        }

        static let everything = Node([[]])

        /// The node under `key`, and the projection's own copy of the key: kept objects share
        /// their key text instead of each holding a copy.
        func child(_ key: String) -> (key: String, node: Node)? {
            if whole { return (key, .everything) }
            guard let index = children.index(forKey: key) else { return nil }
            let (shared, node) = children[index]
            return (shared, node)
        }
    }

    struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        var position = 0
        var depth = 0

        func error(_ message: String) -> SyntaxError { SyntaxError(offset: position, message: message) }

        mutating func skipSpace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        mutating func expect(_ byte: UInt8) throws {
            skipSpace()
            guard position < bytes.count, bytes[position] == byte else {
                throw error("expected '\(Character(UnicodeScalar(byte)))'")
            }
            position += 1
        }

        /// Parses one value; builds it only where `node` wants something (nil node: skip).
        mutating func value(_ node: Node?) throws -> JSONValue {
            skipSpace()
            guard position < bytes.count else { throw error("unexpected end of the document") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(node)
            case UInt8(ascii: "["): return try array(node)
            case UInt8(ascii: "\""):
                let text = try string(build: node != nil)
                return .string(text)
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func nested<T>(_ body: (inout Parser) throws -> T) throws -> T {
            depth += 1
            guard depth <= 512 else { throw error("nested too deeply") }
            defer { depth -= 1 }
            return try body(&self)
        }

        mutating func object(_ node: Node?) throws -> JSONValue {
            try nested { parser in
                parser.position += 1
                var out: [String: JSONValue] = [:]
                parser.skipSpace()
                if parser.position < parser.bytes.count, parser.bytes[parser.position] == UInt8(ascii: "}") {
                    parser.position += 1
                    return .object(out)
                }
                while true {
                    parser.skipSpace()
                    guard parser.position < parser.bytes.count, parser.bytes[parser.position] == UInt8(ascii: "\"") else {
                        throw parser.error("expected a key")
                    }
                    let key = try parser.string(build: node != nil)
                    try parser.expect(UInt8(ascii: ":"))
                    let child = node?.child(key)
                    let value = try parser.value(child?.node)
                    if let child { out[child.key] = value }
                    parser.skipSpace()
                    guard parser.position < parser.bytes.count else { throw parser.error("unexpected end in an object") }
                    let byte = parser.bytes[parser.position]
                    parser.position += 1
                    if byte == UInt8(ascii: "}") { return .object(out) }
                    guard byte == UInt8(ascii: ",") else { throw parser.error("expected ',' or '}'") }
                }
            }
        }

        mutating func array(_ node: Node?) throws -> JSONValue {
            try nested { parser in
                parser.position += 1
                let element = node?.child("[]")?.node
                var out: [JSONValue] = []
                parser.skipSpace()
                if parser.position < parser.bytes.count, parser.bytes[parser.position] == UInt8(ascii: "]") {
                    parser.position += 1
                    return .array(out)
                }
                while true {
                    // A list keeps one entry per element even where no path goes into it, so its
                    // length (and so its emptiness) stays known.
                    let value = try parser.value(element)
                    if node != nil { out.append(element == nil ? .null : value) }
                    parser.skipSpace()
                    guard parser.position < parser.bytes.count else { throw parser.error("unexpected end in a list") }
                    let byte = parser.bytes[parser.position]
                    parser.position += 1
                    if byte == UInt8(ascii: "]") { return .array(out) }
                    guard byte == UInt8(ascii: ",") else { throw parser.error("expected ',' or ']'") }
                }
            }
        }

        mutating func literal(_ word: String) throws {
            let expected = Array(word.utf8)
            guard position + expected.count <= bytes.count else { throw error("unexpected end of the document") }
            for index in expected.indices where bytes[position + index] != expected[index] {
                throw error("invalid literal")
            }
            position += expected.count
        }

        mutating func number() throws -> Double {
            let start = position
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            var digits = 0
            while position < bytes.count {
                let byte = bytes[position]
                if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                    digits += 1
                } else if !(byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
                            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")) {
                    break
                }
                position += 1
            }
            guard digits > 0, let value = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]),
                                                           as: UTF8.self)) else {
                position = start
                throw error("invalid value")
            }
            return value
        }

        mutating func string(build: Bool) throws -> String {
            position += 1  // opening quote
            let start = position
            var simple = true
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    defer { position += 1 }
                    guard build else { return "" }
                    let raw = UnsafeBufferPointer(rebasing: bytes[start..<position])
                    return simple ? String(decoding: raw, as: UTF8.self) : try Parser.unescape(raw, at: start)
                }
                if byte == UInt8(ascii: "\\") {
                    simple = false
                    position += 2
                    continue
                }
                if byte < 0x20 { throw error("control character in a string") }
                position += 1
            }
            throw error("unterminated string")
        }

        static func unescape(_ raw: UnsafeBufferPointer<UInt8>, at offset: Int) throws -> String {
            var out: [UInt8] = []
            out.reserveCapacity(raw.count)
            var index = 0
            func fail() -> SyntaxError { SyntaxError(offset: offset + index, message: "invalid escape in a string") }
            func hex4(_ at: Int) throws -> UInt32 {
                guard at + 4 <= raw.count, let value = UInt32(String(decoding: UnsafeBufferPointer(rebasing: raw[at..<at + 4]),
                                                                       as: UTF8.self), radix: 16) else { throw fail() }
                return value
            }
            while index < raw.count {
                let byte = raw[index]
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    index += 1
                    continue
                }
                guard index + 1 < raw.count else { throw fail() }
                let escape = raw[index + 1]
                index += 2
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4(index)
                    index += 4
                    if (0xD800...0xDBFF).contains(scalar), index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\"),
                       raw[index + 1] == UInt8(ascii: "u") {
                        let low = try hex4(index + 2)
                        if (0xDC00...0xDFFF).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            index += 6
                        }
                    }
                    out.append(contentsOf: Array(String(UnicodeScalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8))
                default: throw fail()
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}

extension JSONValue {
    /// Canonical text: keys sorted, two-space indentation, `/` unescaped, whole numbers without a
    /// fraction. The same value is always the same bytes.
    public func canonicalData() -> Data {
        Data(canonicalBytes())
    }

    public func canonicalBytes() -> [UInt8] {
        var out: [UInt8] = []
        write(into: &out, indent: 0)
        out.append(0x0A)
        return out
    }

    /// Writes the canonical text (with its final newline) in pieces of about `pieceSize` bytes,
    /// handing each to `body`: a document of any size costs one piece of memory.
    public func writeCanonical(pieceSize: Int = 1 << 20, _ body: ([UInt8]) throws -> Void) throws {
        var out: [UInt8] = []
        out.reserveCapacity(pieceSize + 4096)
        try write(into: &out, indent: 0) { buffer in
            if buffer.count >= pieceSize {
                try body(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        out.append(0x0A)
        try body(out)
    }

    /// Appends the canonical text of the value at `indent` levels (no trailing newline).
    public func write(into out: inout [UInt8], indent: Int) {
        // Without a flush nothing throws.
        try? write(into: &out, indent: indent, flush: { _ in })
    }

    /// As `write(into:indent:)`, offering the buffer to `flush` after each list element or member.
    func write(into out: inout [UInt8], indent: Int, flush: (inout [UInt8]) throws -> Void) throws {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let value):
            if value.rounded() == value, abs(value) < 1e15 {
                out.append(contentsOf: String(Int64(value)).utf8)
            } else {
                out.append(contentsOf: "\(value)".utf8)
            }
        case .string(let text): Self.writeString(text, into: &out)
        case .array(let items):
            if items.isEmpty {
                out.append(contentsOf: "[]".utf8)
                return
            }
            out.append(contentsOf: "[\n".utf8)
            for (index, item) in items.enumerated() {
                Self.pad(&out, indent + 1)
                try item.write(into: &out, indent: indent + 1, flush: flush)
                out.append(contentsOf: (index == items.count - 1 ? "\n" : ",\n").utf8)
                try flush(&out)
            }
            Self.pad(&out, indent)
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            if object.isEmpty {
                out.append(contentsOf: "{}".utf8)
                return
            }
            out.append(contentsOf: "{\n".utf8)
            let keys = object.keys.sorted()
            for (index, key) in keys.enumerated() {
                Self.pad(&out, indent + 1)
                Self.writeString(key, into: &out)
                out.append(contentsOf: " : ".utf8)
                try object[key]!.write(into: &out, indent: indent + 1, flush: flush)
                out.append(contentsOf: (index == keys.count - 1 ? "\n" : ",\n").utf8)
                try flush(&out)
            }
            Self.pad(&out, indent)
            out.append(UInt8(ascii: "}"))
        }
    }

    static func pad(_ out: inout [UInt8], _ indent: Int) {
        out.append(contentsOf: repeatElement(0x20, count: indent * 2))
    }

    public static func writeString(_ text: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20: out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
