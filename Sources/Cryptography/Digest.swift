import COpenSSL
import Foundation
import Pipeline

/// OpenSSL behind one type. Digests and MACs through the EVP interface. Every return code goes
/// through `OpenSSL.check`, which turns a failure into a `crypto` error carrying OpenSSL's own
/// reason; nothing here traps.
public enum Digest {
    /// SHA-256 of `data`.
    public static func sha256(_ data: some DataProtocol) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        // Contiguous data (Data, [UInt8]) is hashed in place; anything else is gathered first.
        let rc = data.withContiguousStorageIfAvailable { raw in
            EVP_Digest(raw.baseAddress, raw.count, &output, &length, EVP_sha256(), nil)
        } ?? Array(data).withUnsafeBytes { raw in
            EVP_Digest(raw.baseAddress, raw.count, &output, &length, EVP_sha256(), nil)
        }
        try OpenSSL.check(rc == 1, "SHA-256 digest")
        return Array(output.prefix(Int(length)))
    }

    public static func sha256Hex(_ data: some DataProtocol) throws -> String {
        hex(try sha256(data))
    }

    /// SHA-1 of `data`: only for names that standards define with it (RFC 9562 UUIDv5), never for
    /// integrity.
    public static func sha1(_ data: [UInt8]) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let rc = data.withUnsafeBytes { raw in EVP_Digest(raw.baseAddress, raw.count, &output, &length, EVP_sha1(), nil) }
        try OpenSSL.check(rc == 1, "SHA-1 digest")
        return Array(output.prefix(Int(length)))
    }

    /// The name-based UUID (version 5, RFC 9562 §5.5) of `name` in `namespace`: the same name
    /// always gives the same UUID.
    public static func uuidV5(namespace: UUID, name: String) throws -> UUID {
        let space = withUnsafeBytes(of: namespace.uuid) { Array($0) }
        var bytes = Array(try sha1(space + Array(name.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    /// HMAC-SHA256 of `data` under `key`.
    public static func hmacSHA256(key: some DataProtocol, data: some DataProtocol) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let keyBytes = Array(key)
        let dataBytes = Array(data)
        let result = keyBytes.withUnsafeBytes { k in
            dataBytes.withUnsafeBytes { d in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self),
                     d.count, &output, &length)
            }
        }
        try OpenSSL.check(result != nil, "HMAC-SHA256")
        return Array(output.prefix(Int(length)))
    }

    /// SHA-256 of a file (or of `length` bytes from `offset`), read in pieces of 4 MiB, with the
    /// number of bytes read. Blocking: call it on the blocking executor. A file that cannot be
    /// opened, or ends before `length`, throws `code` with the path.
    public static func sha256(file: URL, offset: UInt64 = 0, length: UInt64? = nil,
                              code: PipelineError.Code) throws -> (digest: [UInt8], size: Int) {
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw PipelineError(code, "cannot read \(file.path)")
        }
        defer { try? handle.close() }
        if offset > 0 { try handle.seek(toOffset: offset) }
        let hasher = try SHA256Hasher()
        var size = 0
        while length.map({ UInt64(size) < $0 }) ?? true {
            let want = length.map { Int(min($0 - UInt64(size), 4 << 20)) } ?? 4 << 20
            guard let chunk = try handle.read(upToCount: want), !chunk.isEmpty else {
                if length != nil { throw PipelineError(code, "\(file.path) ended early") }
                break
            }
            try hasher.update(chunk)
            size += chunk.count
        }
        return (try hasher.finalize(), size)
    }

    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The choke point every OpenSSL return code passes through.
enum OpenSSL {
    /// Throws a `crypto` error naming `operation` and OpenSSL's queued reasons when `ok` is false.
    static func check(_ ok: Bool, _ operation: String, file: String = #fileID, line: Int = #line) throws {
        guard !ok else { return }
        throw failure(operation, file: file, line: line)
    }

    /// A `crypto` error for a failed `operation`, with the reasons OpenSSL queued (and cleared).
    static func failure(_ operation: String, file: String = #fileID, line: Int = #line) -> PipelineError {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return PipelineError(.crypto, "OpenSSL \(operation) failed" + (reasons.isEmpty ? "" : ": \(reasons[0])"),
                            detail: reasons.joined(separator: "\n"), file: file, line: line)
    }
}

/// Incremental SHA-256 for streams too large to hold at once. `@unchecked Sendable`: it may pass
/// between executor jobs, but is used by one at a time.
public final class SHA256Hasher: @unchecked Sendable {
    private let context: OpaquePointer

    public init() throws {
        guard let ctx = EVP_MD_CTX_new() else { throw OpenSSL.failure("EVP_MD_CTX_new") }
        context = ctx
        do {
            try OpenSSL.check(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1, "EVP_DigestInit_ex")
        } catch {
            EVP_MD_CTX_free(ctx)
            throw error
        }
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        try OpenSSL.check(EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1, "EVP_DigestUpdate")
    }

    public func update(_ data: Data) throws {
        try data.withUnsafeBytes { try update($0) }
    }

    public func finalize() throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        try OpenSSL.check(EVP_DigestFinal_ex(context, &output, &length) == 1, "EVP_DigestFinal_ex")
        return Array(output.prefix(Int(length)))
    }
}
