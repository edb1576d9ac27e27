import Foundation
import Pipeline

/// Writes canonical JSON (the layout of `JSONValue.writeCanonical`: two-space indent, ` : `) in
/// pieces, container by container, so a document listing tens of thousands of items never sits
/// whole in memory. The caller writes object members in key order.
struct JSONStream {
    private var out: [UInt8] = []
    private let piece: ([UInt8]) throws -> Void
    /// For each open container: whether it has an element yet.
    private var open: [Bool] = []
    /// After a key, the value goes on the same line.
    private var afterKey = false

    init(_ piece: @escaping ([UInt8]) throws -> Void) {
        self.piece = piece
        out.reserveCapacity(1 << 16)
    }

    private mutating func element() {
        if afterKey {
            afterKey = false
            return
        }
        guard let last = open.indices.last else { return }
        out.append(contentsOf: (open[last] ? ",\n" : "\n").utf8)
        open[last] = true
        out.append(contentsOf: repeatElement(0x20, count: open.count * 2))
    }

    mutating func key(_ name: String) {
        element()
        JSONValue.writeString(name, into: &out)
        out.append(contentsOf: " : ".utf8)
        afterKey = true
    }

    mutating func value(_ value: JSONValue) throws {
        element()
        value.write(into: &out, indent: open.count)
        if out.count >= 1 << 16 { try flush() }
    }

    mutating func member(_ name: String, _ value: JSONValue) throws {
        key(name)
        try self.value(value)
    }

    mutating func beginObject() { begin("{") }
    mutating func beginArray() { begin("[") }
    mutating func endObject() { end("}") }
    mutating func endArray() { end("]") }

    private mutating func begin(_ bracket: String) {
        element()
        out.append(contentsOf: bracket.utf8)
        open.append(false)
    }

    private mutating func end(_ bracket: String) {
        let had = open.removeLast()
        if had {
            out.append(0x0A)
            out.append(contentsOf: repeatElement(0x20, count: open.count * 2))
        }
        out.append(contentsOf: bracket.utf8)
    }

    mutating func flush() throws {
        try piece(out)
        out.removeAll(keepingCapacity: true)
    }

    /// Ends the document with its newline and hands over what is left.
    mutating func finish() throws {
        out.append(0x0A)
        try flush()
    }
}
