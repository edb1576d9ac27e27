import COpenSSL
import Foundation
import Pipeline

/// An RSA private key read from PEM (PKCS#1 or PKCS#8), signing with RSASSA-PKCS1-v1_5 and
/// SHA-256 (RS256), as GitHub Apps and Google service accounts need. `@unchecked Sendable`:
/// OpenSSL's EVP_PKEY is immutable once loaded and may be used from several threads.
public final class RSASigningKey: @unchecked Sendable {
    private let key: OpaquePointer

    /// `what` names the key in errors (say, "the private key of acme's github integration");
    /// the PEM itself never appears in one.
    public init(pem: String, what: String) throws {
        let bytes = Array(pem.utf8)
        guard let bio = bytes.withUnsafeBytes({ BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }) else {
            throw OpenSSL.failure("BIO_new_mem_buf")
        }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            ERR_clear_error()
            throw PipelineError(.configuration, "\(what) is not a PEM private key")
        }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            EVP_PKEY_free(key)
            throw PipelineError(.configuration, "\(what) is not an RSA key (RS256 needs one)")
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    public func signSHA256(_ message: some DataProtocol) throws -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw OpenSSL.failure("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        try OpenSSL.check(EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, key) == 1, "RS256 init")
        let input = Array(message)
        var length = 0
        try OpenSSL.check(EVP_DigestSign(ctx, nil, &length, input, input.count) == 1, "RS256 size")
        var signature = [UInt8](repeating: 0, count: length)
        try OpenSSL.check(EVP_DigestSign(ctx, &signature, &length, input, input.count) == 1, "RS256 sign")
        return Array(signature.prefix(length))
    }
}

/// JSON Web Tokens signed with RS256 (RFC 7519, 7515): what a GitHub App presents for an
/// installation token and a Google service account for an OAuth2 access token.
public enum JWT {
    /// `claims` are strings and integers (iss, sub, aud, scope, iat, exp).
    public static func rs256(claims: [String: any Sendable], key: RSASigningKey, keyID: String? = nil) throws -> String {
        var header: [String: any Sendable] = ["alg": "RS256", "typ": "JWT"]
        if let keyID { header["kid"] = keyID }
        func compact(_ object: [String: any Sendable]) throws -> Data {
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        }
        let signingInput = base64URL(try compact(header)) + "." + base64URL(try compact(claims))
        return signingInput + "." + base64URL(Data(try key.signSHA256(Data(signingInput.utf8))))
    }

    public static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
