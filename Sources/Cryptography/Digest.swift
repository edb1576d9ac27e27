import COpenSSL
import Foundation

/// OpenSSL behind one type. Digests and MACs through the EVP interface; every return code is
/// checked here and turned into a typed error.
public enum Digest {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let operation: String
        public var description: String { "OpenSSL \(operation) failed" }
    }

    /// SHA-256 of `data`.
    public static func sha256(_ data: some DataProtocol) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let bytes = Array(data)
        let ok = bytes.withUnsafeBytes { raw in
            EVP_Digest(raw.baseAddress, raw.count, &output, &length, EVP_sha256(), nil)
        }
        // EVP_Digest with SHA-256 and no engine only fails on allocation failure.
        precondition(ok == 1, "EVP_Digest(SHA-256) failed")
        return Array(output.prefix(Int(length)))
    }

    public static func sha256Hex(_ data: some DataProtocol) -> String {
        hex(sha256(data))
    }

    /// HMAC-SHA256 of `data` under `key`.
    public static func hmacSHA256(key: some DataProtocol, data: some DataProtocol) -> [UInt8] {
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
        precondition(result != nil, "HMAC(SHA-256) failed")
        return Array(output.prefix(Int(length)))
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

/// Incremental SHA-256 for streams too large to hold at once.
public final class SHA256Hasher {
    private let context: OpaquePointer

    public init() throws {
        guard let ctx = EVP_MD_CTX_new() else { throw Digest.Failure(operation: "EVP_MD_CTX_new") }
        guard EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1 else {
            EVP_MD_CTX_free(ctx)
            throw Digest.Failure(operation: "EVP_DigestInit_ex")
        }
        context = ctx
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        precondition(EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1, "EVP_DigestUpdate failed")
    }

    public func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    public func finalize() -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &output, &length) == 1, "EVP_DigestFinal_ex failed")
        return Array(output.prefix(Int(length)))
    }
}
