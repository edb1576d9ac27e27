import Cryptography
import Foundation
import Pipeline

/// AWS credentials. `description` never shows the secret or the token.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "AWSCredentials(\(accessKeyID), secret redacted)" }
}

/// AWS Signature Version 4: canonical request, string to sign, signing key, Authorization header
/// and presigned query. Pure: the caller supplies the time.
public struct SigV4Signer: Sendable {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String
    /// RFC 3986 path normalization; every service but S3 wants it.
    public let normalizePath: Bool

    public init(credentials: AWSCredentials, region: String, service: String, normalizePath: Bool? = nil) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.normalizePath = normalizePath ?? (service != "s3")
    }

    /// A request as signing sees it: the path unencoded, query items decoded, headers in order
    /// (a name may repeat).
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    static func amzDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    func scope(_ day: String) -> String { "\(day)/\(region)/\(service)/aws4_request" }

    // MARK: Canonical parts

    /// RFC 3986 percent-encoding of everything but unreserved characters (and `/` when asked).
    public static func encode(_ text: String, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                 UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    func canonicalURI(_ path: String) -> String {
        var path = path.isEmpty ? "/" : path
        if normalizePath {
            var output: [Substring] = []
            let segments = path.split(separator: "/", omittingEmptySubsequences: true)
            for segment in segments {
                if segment == "." { continue }
                if segment == ".." { _ = output.popLast(); continue }
                output.append(segment)
            }
            var endsAsFolder = path.hasSuffix("/")
            if path.hasSuffix("/.") { endsAsFolder = true }
            if path.hasSuffix("/..") { endsAsFolder = true }
            let trailing: Bool = endsAsFolder && !output.isEmpty
            let joined: String = output.joined(separator: "/")
            path = "/" + joined + (trailing ? "/" : "")
        }
        return Self.encode(path, keepSlash: true)
    }

    static func canonicalQuery(_ items: [(String, String)]) -> String {
        let encoded: [(key: String, value: String)] = items.map { (key: encode($0.0), value: encode($0.1)) }
        let sorted = encoded.sorted { (a, b) -> Bool in
            a.key == b.key ? a.value < b.value : a.key < b.key
        }
        return sorted.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
    }

    /// Lowercased names, sorted; values trimmed with inner runs of spaces folded; repeated names
    /// joined with commas in the order given.
    static func canonicalHeaders(_ headers: [(String, String)]) -> (text: String, signed: String) {
        var grouped: [String: [String]] = [:]
        for (name, value) in headers {
            let folded = value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
                .joined(separator: " ")
            grouped[name.lowercased(), default: []].append(folded)
        }
        let names = grouped.keys.sorted()
        let text = names.map { "\($0):\(grouped[$0]!.joined(separator: ","))\n" }.joined()
        return (text, names.joined(separator: ";"))
    }

    public func canonicalRequest(_ request: Request, payloadHash: String) -> String {
        let headers = Self.canonicalHeaders(request.headers)
        return [request.method, canonicalURI(request.path), Self.canonicalQuery(request.query), headers.text,
                headers.signed, payloadHash].joined(separator: "\n")
    }

    public func stringToSign(canonicalRequest: String, date: Date) throws -> String {
        let stamp = Self.amzDate(date)
        return ["AWS4-HMAC-SHA256", stamp, scope(String(stamp.prefix(8))),
                try Digest.sha256Hex(Data(canonicalRequest.utf8))].joined(separator: "\n")
    }

    public func signingKey(day: String) throws -> [UInt8] {
        let kDate = try Digest.hmacSHA256(key: Data("AWS4\(credentials.secretAccessKey)".utf8), data: Data(day.utf8))
        let kRegion = try Digest.hmacSHA256(key: kDate, data: Data(region.utf8))
        let kService = try Digest.hmacSHA256(key: kRegion, data: Data(service.utf8))
        return try Digest.hmacSHA256(key: kService, data: Data("aws4_request".utf8))
    }

    public func signature(stringToSign: String, date: Date) throws -> String {
        let day = String(Self.amzDate(date).prefix(8))
        return Digest.hex(try Digest.hmacSHA256(key: try signingKey(day: day), data: Data(stringToSign.utf8)))
    }

    // MARK: Signing

    /// Signs with an Authorization header. Adds X-Amz-Date (and the session token, and the payload
    /// hash header when `signPayloadHeader`) to the request's headers and returns the headers to send.
    /// With `signSessionToken` false the token is sent but left out of the signature, as a few
    /// services require.
    public func sign(_ request: Request, date: Date, payloadHash: String,
                     signPayloadHeader: Bool = false, signSessionToken: Bool = true) throws -> [(String, String)] {
        var signed = request
        signed.headers.append(("X-Amz-Date", Self.amzDate(date)))
        if signPayloadHeader { signed.headers.append(("x-amz-content-sha256", payloadHash)) }
        if let token = credentials.sessionToken, signSessionToken { signed.headers.append(("X-Amz-Security-Token", token)) }
        let canonical = canonicalRequest(signed, payloadHash: payloadHash)
        let signature = try signature(stringToSign: try stringToSign(canonicalRequest: canonical, date: date), date: date)
        let signedNames = Self.canonicalHeaders(signed.headers).signed
        let day = String(Self.amzDate(date).prefix(8))
        signed.headers.append(("Authorization",
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(day)), SignedHeaders=\(signedNames), Signature=\(signature)"))
        if let token = credentials.sessionToken, !signSessionToken { signed.headers.append(("X-Amz-Security-Token", token)) }
        return signed.headers
    }

    /// Signs in the query string (a presigned URL) valid for `expires` seconds. Returns the query
    /// items to send, the signature last.
    public func presign(_ request: Request, date: Date, expires: Int, payloadHash: String = unsignedPayload,
                        signSessionToken: Bool = true) throws -> [(String, String)] {
        let stamp = Self.amzDate(date)
        var signed = request
        let signedNames = Self.canonicalHeaders(request.headers).signed
        var added = [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
                     ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(String(stamp.prefix(8))))"),
                     ("X-Amz-Date", stamp), ("X-Amz-Expires", String(expires)), ("X-Amz-SignedHeaders", signedNames)]
        if let token = credentials.sessionToken, signSessionToken { added.append(("X-Amz-Security-Token", token)) }
        signed.query += added
        let canonical = canonicalRequest(signed, payloadHash: payloadHash)
        let signature = try signature(stringToSign: try stringToSign(canonicalRequest: canonical, date: date), date: date)
        var unsignedToken: [(String, String)] = []
        if let token = credentials.sessionToken, !signSessionToken { unsignedToken = [("X-Amz-Security-Token", token)] }
        return signed.query + unsignedToken + [("X-Amz-Signature", signature)]
    }
}
