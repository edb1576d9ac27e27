import Foundation

/// Encodes any `Encodable` into a `JSONValue`, using its coding keys, with dates as ISO-8601 UTC
/// text: so documents are written by `JSONValue.canonicalData()` (sorted keys, the same bytes
/// every time) without Foundation's encoder, which builds a large intermediate tree.
public enum JSONValueEncoder {
    public static func encode(_ value: some Encodable) throws -> JSONValue {
        let root = Box()
        try encodeValue(value, into: root, path: [])
        return root.value ?? .null
    }

    /// Canonical JSON bytes of `value`.
    public static func canonicalData(_ value: some Encodable) throws -> Data {
        try encode(value).canonicalData()
    }

    /// A slot a container fills in; nested containers keep references to their slots and the tree
    /// is assembled when read.
    final class Box {
        enum Kind { case empty, value, object, array }
        var kind = Kind.empty
        var scalar = JSONValue.null
        var members: [String: Box] = [:]
        var items: [Box] = []

        func set(_ value: JSONValue) {
            kind = .value
            scalar = value
        }

        var value: JSONValue? {
            switch kind {
            case .empty: return nil
            case .value: return scalar
            case .object: return .object(members.compactMapValues(\.value))
            case .array: return .array(items.map { $0.value ?? .null })
            }
        }
    }

    static func encodeValue(_ value: some Encodable, into box: Box, path: [any CodingKey]) throws {
        if let date = value as? Date {
            box.set(.string(Timestamp.iso8601(date)))
            return
        }
        if let data = value as? Data {
            box.set(.string(data.base64EncodedString()))
            return
        }
        // Lists of text (evidence ids by the thousand) go in whole, without a box per element.
        if let strings = value as? [String] {
            box.set(.array(strings.map(JSONValue.string)))
            return
        }
        try value.encode(to: ValueEncoder(box: box, codingPath: path))
    }

    struct ValueEncoder: Encoder {
        let box: Box
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            if box.kind != .object { box.kind = .object }
            return KeyedEncodingContainer(Keyed<Key>(box: box, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if box.kind != .array { box.kind = .array }
            return Unkeyed(box: box, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(box: box, codingPath: codingPath) }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let box: Box
        let codingPath: [any CodingKey]

        func child(_ key: Key) -> Box {
            let child = Box()
            box.members[key.stringValue] = child
            return child
        }

        mutating func encodeNil(forKey key: Key) throws { child(key).set(.null) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { child(key).set(.bool(value)) }
        mutating func encode(_ value: String, forKey key: Key) throws { child(key).set(.string(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { child(key).set(.number(value)) }
        mutating func encode(_ value: Int, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode(_ value: Float, forKey key: Key) throws { child(key).set(.number(Double(value))) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            try JSONValueEncoder.encodeValue(value, into: child(key), path: codingPath + [key])
        }
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            guard let value else { return }
            try encode(value, forKey: key)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type,
                                                            forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            ValueEncoder(box: child(key), codingPath: codingPath + [key]).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            ValueEncoder(box: child(key), codingPath: codingPath + [key]).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { ValueEncoder(box: box, codingPath: codingPath) }
        mutating func superEncoder(forKey key: Key) -> any Encoder { ValueEncoder(box: child(key), codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let box: Box
        let codingPath: [any CodingKey]
        var count: Int { box.items.count }

        func next() -> Box {
            let child = Box()
            box.items.append(child)
            return child
        }

        mutating func encodeNil() throws { next().set(.null) }
        mutating func encode(_ value: Bool) throws { next().set(.bool(value)) }
        mutating func encode(_ value: String) throws { next().set(.string(value)) }
        mutating func encode(_ value: Double) throws { next().set(.number(value)) }
        mutating func encode(_ value: Int) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: Int8) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: Int16) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: Int32) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: Int64) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: UInt) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: UInt8) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: UInt16) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: UInt32) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: UInt64) throws { next().set(.number(Double(value))) }
        mutating func encode(_ value: Float) throws { next().set(.number(Double(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try JSONValueEncoder.encodeValue(value, into: next(), path: codingPath)
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            ValueEncoder(box: next(), codingPath: codingPath).container(keyedBy: keyType)
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            ValueEncoder(box: next(), codingPath: codingPath).unkeyedContainer()
        }
        mutating func superEncoder() -> any Encoder { ValueEncoder(box: next(), codingPath: codingPath) }
    }

    struct Single: SingleValueEncodingContainer {
        let box: Box
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { box.set(.null) }
        mutating func encode(_ value: Bool) throws { box.set(.bool(value)) }
        mutating func encode(_ value: String) throws { box.set(.string(value)) }
        mutating func encode(_ value: Double) throws { box.set(.number(value)) }
        mutating func encode(_ value: Float) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: Int) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: Int64) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: UInt64) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: Int8) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: Int16) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: Int32) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: UInt) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: UInt8) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: UInt16) throws { box.set(.number(Double(value))) }
        mutating func encode(_ value: UInt32) throws { box.set(.number(Double(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            try JSONValueEncoder.encodeValue(value, into: box, path: codingPath)
        }
    }
}
