import COpenSSL
import Foundation
import Pipeline

/// An Ed25519 key that signs export manifests (RFC 8032, through OpenSSL), and its public half
/// for auditors. The private key's 32-byte seed is written as base64 (a key file, or
/// `LIGHTSAIL_SIGNING_KEY`); the fingerprint names the public key in manifests.
public struct SigningKey: Sendable, CustomStringConvertible {
    let seed: [UInt8]
    public let publicKey: PublicSigningKey

    public init(seed: [UInt8]) throws {
        guard seed.count == 32 else {
            throw PipelineError(.configuration, "an Ed25519 signing key is a 32-byte seed, not \(seed.count) bytes")
        }
        self.seed = seed
        let key = try Self.key(seed)
        defer { EVP_PKEY_free(key) }
        var length = 32
        var raw = [UInt8](repeating: 0, count: 32)
        try OpenSSL.check(EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1 && length == 32, "EVP_PKEY_get_raw_public_key")
        publicKey = try PublicSigningKey(raw: raw)
    }

    /// A seed written as base64 (44 characters) or hexadecimal (64 digits).
    public init(encoded text: String) throws {
        try self.init(seed: try Self.decode(text, what: "an Ed25519 signing key"))
    }

    /// A new key from OpenSSL's random generator.
    public static func generate() throws -> SigningKey {
        var seed = [UInt8](repeating: 0, count: 32)
        try OpenSSL.check(RAND_bytes(&seed, 32) == 1, "RAND_bytes")
        return try SigningKey(seed: seed)
    }

    /// The seed as base64, for a key file.
    public var encoded: String { Data(seed).base64EncodedString() }

    /// Reads a signing key file (the seed on its one line that is not a `#` comment), readable by
    /// its owner only.
    public static func read(file: URL) throws -> SigningKey {
        let text = try SecretFile.read(file)
        guard let line = text.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) })
            .first(where: { !$0.isEmpty && !$0.hasPrefix("#") }) else {
            throw PipelineError(.configuration, "the signing key file \(file.path) holds no key")
        }
        do {
            return try SigningKey(encoded: line)
        } catch let error as PipelineError {
            throw PipelineError(.configuration, "\(file.path): \(error.message)")
        }
    }

    /// Writes the key to `file` (mode 0600).
    public func write(to file: URL) throws {
        try SecretFile.write(fileText, to: file)
    }

    /// Writes the key to `file` unless one is there already; false when another process made it first.
    public func create(at file: URL) throws -> Bool {
        try SecretFile.create(fileText, at: file)
    }

    private var fileText: String {
        "# Lightsail export signing key (Ed25519 seed). Keep it secret; publish the public key\n"
            + "# (pipeline keys export-public) for auditors.\n\(encoded)\n"
    }
    /// Only the public key's fingerprint: a key printed by mistake shows nothing of itself.
    public var description: String { publicKey.fingerprint }

    /// The 64-byte Ed25519 signature of `message`.
    public func sign(_ message: some ContiguousBytes) throws -> [UInt8] {
        let key = try Self.key(seed)
        defer { EVP_PKEY_free(key) }
        let context = EVP_MD_CTX_new()
        try OpenSSL.check(context != nil, "EVP_MD_CTX_new")
        defer { EVP_MD_CTX_free(context) }
        try OpenSSL.check(EVP_DigestSignInit(context, nil, nil, nil, key) == 1, "EVP_DigestSignInit")
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let signed = message.withUnsafeBytes { raw in
            EVP_DigestSign(context, &signature, &length, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count)
        }
        try OpenSSL.check(signed == 1 && length == 64, "EVP_DigestSign")
        return signature
    }

    static func key(_ seed: [UInt8]) throws -> OpaquePointer {
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            throw PipelineError(.configuration, "OpenSSL refused the Ed25519 signing key")
        }
        return key
    }

    static func decode(_ text: String, what: String) throws -> [UInt8] {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count == 64, text.allSatisfy(\.isHexDigit) {
            return stride(from: 0, to: 64, by: 2).map { offset in
                let start = text.index(text.startIndex, offsetBy: offset)
                return UInt8(text[start..<text.index(start, offsetBy: 2)], radix: 16)!
            }
        }
        guard let data = Data(base64Encoded: text) else {
            throw PipelineError(.configuration, "\(what) must be 32 bytes written as base64 (44 characters) or hex (64 digits)")
        }
        return Array(data)
    }
}

/// The public half of a signing key: what an auditor needs to check a bundle's signature.
public struct PublicSigningKey: Sendable, Hashable, CustomStringConvertible {
    public let raw: [UInt8]
    /// `ed25519:` and the first 32 hex digits of the key's SHA-256.
    public let fingerprint: String

    public init(raw: [UInt8]) throws {
        guard raw.count == 32 else { throw PipelineError(.invalidInput, "an Ed25519 public key is 32 bytes, not \(raw.count)") }
        self.raw = raw
        fingerprint = "ed25519:" + String(Digest.hex(try Digest.sha256(raw)).prefix(32))
    }

    public init(encoded text: String) throws {
        try self.init(raw: try SigningKey.decode(text, what: "an Ed25519 public key"))
    }

    /// The fixed DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before the raw key.
    static let spkiPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]

    /// A key as `pipeline keys export-public` prints it: PEM (SubjectPublicKeyInfo), or the raw
    /// 32 bytes in base64 or hex.
    public init(text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix("-----BEGIN PUBLIC KEY-----") else {
            try self.init(encoded: trimmed)
            return
        }
        let body = trimmed.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: body).map(Array.init), der.count == 44, Array(der.prefix(12)) == Self.spkiPrefix else {
            throw PipelineError(.invalidInput, "the PEM public key is not an Ed25519 key (SubjectPublicKeyInfo of 44 bytes)")
        }
        try self.init(raw: Array(der.suffix(32)))
    }

    /// The key in the PEM form `openssl pkey -pubin` reads (SubjectPublicKeyInfo).
    public var pem: String {
        let der: [UInt8] = Self.spkiPrefix + raw
        return "-----BEGIN PUBLIC KEY-----\n" + Data(der).base64EncodedString() + "\n-----END PUBLIC KEY-----\n"
    }

    public var description: String { fingerprint }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    public func verify(_ signature: [UInt8], of message: some ContiguousBytes) -> Bool {
        guard signature.count == 64,
              let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, raw, raw.count) else { return false }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { return false }
        return message.withUnsafeBytes { raw in
            EVP_DigestVerify(context, signature, signature.count, raw.baseAddress?.assumingMemoryBound(to: UInt8.self), raw.count)
        } == 1
    }
}
