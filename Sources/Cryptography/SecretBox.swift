import COpenSSL
import Foundation
import Pipeline

/// A 256-bit key for sealing credentials, and its id: a short hash of the key that is stored
/// beside every ciphertext, so that the key that opens it can be found and a rotation knows what
/// is left to re-seal. The key's bytes never leave this type except through `encoded`.
public struct SecretKey: Sendable, Hashable, CustomStringConvertible {
    public let id: String
    let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else {
            throw PipelineError(.configuration, "an encryption key must be 32 bytes (256 bits), not \(bytes.count)")
        }
        self.bytes = bytes
        id = "k-" + String(Digest.hex(try Digest.sha256(Array("lightsail-key-id\n".utf8) + bytes)).prefix(16))
    }

    /// A key written as 44 characters of base64 or 64 hexadecimal digits.
    public init(encoded text: String) throws {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.count == 64, text.allSatisfy(\.isHexDigit) {
            var bytes: [UInt8] = []
            var index = text.startIndex
            while index < text.endIndex {
                let next = text.index(index, offsetBy: 2)
                bytes.append(UInt8(text[index..<next], radix: 16)!)
                index = next
            }
            try self.init(bytes: bytes)
        } else if let data = Data(base64Encoded: text) {
            try self.init(bytes: Array(data))
        } else {
            throw PipelineError(.configuration, "an encryption key must be 32 bytes written as base64 (44 characters) or hex (64 digits)")
        }
    }

    /// A new key from OpenSSL's random generator.
    public static func generate() throws -> SecretKey {
        var bytes = [UInt8](repeating: 0, count: 32)
        try OpenSSL.check(RAND_bytes(&bytes, 32) == 1, "RAND_bytes")
        return try SecretKey(bytes: bytes)
    }

    /// The key as base64, for a key file.
    public var encoded: String { Data(bytes).base64EncodedString() }
    /// Only the id: a key printed by mistake shows nothing of itself.
    public var description: String { id }
}

/// The keys credentials may be sealed with: the current one seals, every one opens what it
/// sealed. `where` says where they came from, for errors.
public struct Keyring: Sendable {
    public let current: SecretKey
    public let previous: [SecretKey]
    public let source: String

    public init(current: SecretKey, previous: [SecretKey] = [], source: String) {
        self.current = current
        self.previous = previous.filter { $0.id != current.id }
        self.source = source
    }

    public func key(id: String) -> SecretKey? {
        current.id == id ? current : previous.first { $0.id == id }
    }

    /// Reads a key file: one key per line (base64 or hex), `#` comments; the last key is the
    /// current one. The file must be readable by its owner only.
    public static func read(file: URL) throws -> Keyring {
        let text = try SecretFile.read(file)
        var keys: [SecretKey] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            do {
                keys.append(try SecretKey(encoded: trimmed))
            } catch let error as PipelineError {
                throw PipelineError(.configuration, "\(file.path):\(number + 1): \(error.message)")
            }
        }
        guard let current = keys.last else { throw PipelineError(.configuration, "the key file \(file.path) holds no key") }
        return Keyring(current: current, previous: keys.dropLast().reversed(), source: file.path)
    }

    /// Writes a key file holding `keys` (the last one current), readable by its owner only,
    /// atomically: a crash leaves the old file or the new one.
    public static func write(_ keys: [SecretKey], to file: URL) throws {
        let text = "# Lightsail credential encryption keys (AES-256-GCM), one per line; the last one seals.\n"
            + "# Keep this file secret and backed up: credentials sealed with a lost key cannot be opened.\n"
            + keys.map { "\($0.encoded)\n" }.joined()
        try SecretFile.write(text, to: file)
    }
}

/// Files that hold keys: readable by their owner only, written atomically (a crash leaves the old
/// file or the new one).
public enum SecretFile {
    /// The file's text; refused when others may read it.
    public static func read(_ file: URL) throws -> String {
        var info = stat()
        guard stat(file.path, &info) == 0 else {
            throw PipelineError(.configuration, "cannot read the key file \(file.path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw PipelineError(.configuration, String(format: "the key file %@ may be read by others (mode %o): chmod 600 it", file.path,
                                                       Int(info.st_mode & 0o777)))
        }
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw PipelineError(.configuration, "cannot read the key file \(file.path)")
        }
        return text
    }

    /// Writes `text` with mode 0600 unless `file` exists: returns false, leaving it as it is, when
    /// another process (or thread) made it first. Two processes starting together keep one key.
    public static func create(_ text: String, at file: URL) throws -> Bool {
        let temporary = try written(text, beside: file)
        defer { unlink(temporary.path) }
        guard link(temporary.path, file.path) == 0 else {
            if errno == EEXIST { return false }
            throw PipelineError(.storage, "cannot write the key file \(file.path): \(String(cString: strerror(errno)))")
        }
        return true
    }

    /// Writes `text` with mode 0600, through a temporary file renamed into place.
    public static func write(_ text: String, to file: URL) throws {
        let temporary = try written(text, beside: file)
        guard rename(temporary.path, file.path) == 0 else {
            unlink(temporary.path)
            throw PipelineError(.storage, "cannot write the key file \(file.path): \(String(cString: strerror(errno)))")
        }
    }

    /// A temporary file of mode 0600 beside `file` holding `text`, made durable.
    private static func written(_ text: String, beside file: URL) throws -> URL {
        let temporary = file.deletingLastPathComponent()
            .appendingPathComponent(".\(file.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw PipelineError(.storage, "cannot write the key file \(file.path): \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced else {
            unlink(temporary.path)
            throw PipelineError(.storage, "cannot write the key file \(file.path): \(String(cString: strerror(errno)))")
        }
        return temporary
    }
}

/// Seals and opens credentials with AES-256-GCM through OpenSSL. A sealed secret is a version
/// byte, a random 96-bit nonce, the ciphertext and the 128-bit tag; `context` (the organization
/// and integration it belongs to) is authenticated with it, so a ciphertext copied to another
/// integration does not open.
public enum SecretBox {
    static let version: UInt8 = 1

    public static func seal(_ plaintext: Data, with key: SecretKey, context: String) throws -> SealedSecret {
        var nonce = [UInt8](repeating: 0, count: 12)
        try OpenSSL.check(RAND_bytes(&nonce, 12) == 1, "RAND_bytes")
        guard let ctx = EVP_CIPHER_CTX_new() else { throw OpenSSL.failure("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        try OpenSSL.check(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key.bytes, nonce) == 1, "AES-256-GCM init")
        var length: Int32 = 0
        let aad = Array(context.utf8)
        try OpenSSL.check(EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1, "AES-256-GCM AAD")
        let input = Array(plaintext)
        var output = [UInt8](repeating: 0, count: input.count + 16)
        try OpenSSL.check(EVP_EncryptUpdate(ctx, &output, &length, input, Int32(input.count)) == 1, "AES-256-GCM encrypt")
        var total = Int(length)
        try output.withUnsafeMutableBufferPointer { buffer in
            try OpenSSL.check(EVP_EncryptFinal_ex(ctx, buffer.baseAddress! + total, &length) == 1, "AES-256-GCM final")
        }
        total += Int(length)
        var tag = [UInt8](repeating: 0, count: 16)
        try OpenSSL.check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1, "AES-256-GCM tag")
        return SealedSecret(keyID: key.id, sealed: Data([version] + nonce + output.prefix(total) + tag))
    }

    /// Opens what `seal` made. Throws `crypto` when the keyring lacks the key, or the key does not
    /// open it (another key with the same id cannot exist; a changed byte or context fails the tag).
    public static func open(_ secret: SealedSecret, keyring: Keyring, context: String) throws -> Data {
        guard let key = keyring.key(id: secret.keyID) else {
            throw PipelineError(.crypto, "it was sealed with key \(secret.keyID), which is not among the keys of \(keyring.source) (current \(keyring.current.id))")
        }
        let bytes = Array(secret.sealed)
        guard bytes.count >= 1 + 12 + 16, bytes[0] == version else {
            throw PipelineError(.crypto, "its sealed form is not one this version reads")
        }
        let nonce = Array(bytes[1..<13])
        let ciphertext = Array(bytes[13..<(bytes.count - 16)])
        var tag = Array(bytes[(bytes.count - 16)...])
        guard let ctx = EVP_CIPHER_CTX_new() else { throw OpenSSL.failure("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        try OpenSSL.check(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key.bytes, nonce) == 1, "AES-256-GCM init")
        var length: Int32 = 0
        let aad = Array(context.utf8)
        try OpenSSL.check(EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1, "AES-256-GCM AAD")
        var output = [UInt8](repeating: 0, count: ciphertext.count + 16)
        try OpenSSL.check(EVP_DecryptUpdate(ctx, &output, &length, ciphertext, Int32(ciphertext.count)) == 1, "AES-256-GCM decrypt")
        var total = Int(length)
        try OpenSSL.check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1, "AES-256-GCM tag")
        let final = output.withUnsafeMutableBufferPointer { buffer in
            EVP_DecryptFinal_ex(ctx, buffer.baseAddress! + total, &length)
        }
        guard final == 1 else {
            ERR_clear_error()
            throw PipelineError(.crypto, "key \(key.id) does not open it: the stored bytes were altered, or belong to another integration")
        }
        total += Int(length)
        return Data(output.prefix(total))
    }
}
