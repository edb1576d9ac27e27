import Cryptography
import Foundation
import Pipeline

/// Where objects live in an S3-compatible service.
public struct S3Location: Sendable, Hashable {
    public let endpoint: URL
    public let bucket: String
    public let region: String
    /// `https://host/bucket/key` rather than `https://bucket.host/key` (MinIO, moto, most self-hosted).
    public let pathStyle: Bool
    /// Key prefix under which everything is stored ("" or ending in "/").
    public let prefix: String

    public init(endpoint: URL, bucket: String, region: String, pathStyle: Bool, prefix: String) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.pathStyle = pathStyle
        self.prefix = prefix
    }
}

public struct S3Object: Sendable, Hashable {
    public let key: String
    public let size: Int
    public let etag: String
}

/// The S3 REST API, signed with SigV4, through the HTTP port (libcurl in production): PUT with a
/// SHA-256 checksum (optionally only if absent), multipart upload for large files (parts in
/// parallel, aborted on failure), GET to memory or streamed to disk, HEAD, ListObjectsV2 with
/// continuation, DELETE, presigned URLs. Every request goes through `ResilientTransport` with a
/// signing layer under it, so each attempt is signed afresh and 500, 503 SlowDown and cut bodies
/// are retried with backoff; 4xx answers never are.
public struct S3Client: Sendable {
    public let location: S3Location
    public let credentials: AWSCredentials
    /// The unsigned transport requests go out through.
    public let http: any HTTPTransport
    public let retry: RetryPolicy
    /// Files larger than this go up in parts of `partSize`.
    public var multipartThreshold = 64 << 20
    public var partSize = 8 << 20
    public var partConcurrency = 8
    let now: @Sendable () -> Date
    let sleeper: Sleeper

    public init(location: S3Location, credentials: AWSCredentials, http: any HTTPTransport = CurlHTTPClient(),
                retry: RetryPolicy = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(200), maxBackoff: .seconds(5)),
                sleeper: Sleeper = .continuous, now: @escaping @Sendable () -> Date = { Date() }) {
        self.location = location
        self.credentials = credentials
        self.http = http
        self.retry = retry
        self.sleeper = sleeper
        self.now = now
    }

    var signer: SigV4Signer { SigV4Signer(credentials: credentials, region: location.region, service: "s3") }

    /// Host (with a non-default port) and unencoded path of a key.
    func address(_ key: String?) -> (host: String, path: String, base: String) {
        let scheme = location.endpoint.scheme ?? "https"
        var host = location.endpoint.host ?? ""
        if let port = location.endpoint.port, !((scheme == "https" && port == 443) || (scheme == "http" && port == 80)) {
            host += ":\(port)"
        }
        let basePath = location.endpoint.path.hasSuffix("/") ? String(location.endpoint.path.dropLast()) : location.endpoint.path
        let keyPath = key.map { "/" + $0 } ?? (location.pathStyle ? "" : "/")
        if location.pathStyle {
            return (host, basePath + "/" + location.bucket + keyPath, "\(scheme)://\(host)")
        }
        return ("\(location.bucket).\(host)", basePath + keyPath, "\(scheme)://\(location.bucket).\(host)")
    }

    static func queryString(_ items: [(String, String)]) -> String {
        items.map { "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))" }.joined(separator: "&")
    }

    func url(host: String, path: String, base: String, query: [(String, String)]) throws -> URL {
        let encodedPath = SigV4Signer.encode(path, keepSlash: true)
        let q = query.isEmpty ? "" : "?" + Self.queryString(query)
        guard let url = URL(string: base + encodedPath + q) else {
            throw PipelineError(.configuration, "cannot form a URL for s3://\(location.bucket)\(path)")
        }
        return url
    }

    /// The retry and error layers every request goes through, over `base`.
    func resilient(_ base: any HTTPTransport) -> ResilientTransport {
        ResilientTransport(base: base, retry: retry, timeout: nil, sleeper: sleeper, now: now)
    }

    // MARK: Requests

    /// Signs and sends one request, retrying transient failures; an answer outside 2xx and `allow`
    /// is an `S3Error`.
    func execute(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
                 body: HTTPRequest.Body = .none, payloadHash: String = SigV4Signer.emptyPayloadHash,
                 responseFile: URL? = nil, allow: Set<Int> = []) async throws -> HTTPResponse {
        let (host, path, base) = address(key)
        let target = try url(host: host, path: path, base: base, query: query)
        let signing = SigningLayer(base: http, signer: signer, now: now, host: host, path: path, query: query,
                                   payloadHash: payloadHash, bucket: location.bucket, key: key, allow: allow)
        return try await resilient(signing).send(HTTPRequest(method: method, url: target, headers: headers, body: body,
                                                             responseFile: responseFile))
    }

    /// Puts `data` under `key`. With `ifAbsent`, the service keeps an existing object
    /// (`If-None-Match: *`) and this returns false; one request either way.
    @discardableResult
    public func put(_ key: String, data: Data, contentType: String, ifAbsent: Bool = false) async throws -> Bool {
        let digest = try Digest.sha256(data)
        var headers = [("Content-Type", contentType), ("x-amz-checksum-sha256", Data(digest).base64EncodedString())]
        if ifAbsent { headers.append(("If-None-Match", "*")) }
        let response = try await execute("PUT", key: key, headers: headers, body: .data(data),
                                         payloadHash: Digest.hex(digest), allow: ifAbsent ? [412] : [])
        return response.status != 412
    }

    /// Uploads a file: one PUT when small, multipart when large. With `ifAbsent`, an existing
    /// object is kept and this returns false.
    @discardableResult
    public func upload(_ key: String, file: URL, contentType: String, ifAbsent: Bool = false) async throws -> Bool {
        let size = try await BlockingExecutor.shared.run { try Self.fileSize(file) }
        if size <= UInt64(multipartThreshold) {
            let hash = try await BlockingExecutor.shared.run { try Self.sha256(file, offset: 0, length: size) }
            var headers = [("Content-Type", contentType), ("x-amz-checksum-sha256", Data(hash).base64EncodedString())]
            if ifAbsent { headers.append(("If-None-Match", "*")) }
            let response = try await execute("PUT", key: key, headers: headers, body: .file(file, offset: 0, length: size),
                                             payloadHash: Digest.hex(hash), allow: ifAbsent ? [412] : [])
            return response.status != 412
        }
        if ifAbsent, try await head(key) != nil { return false }
        try await multipartUpload(key, file: file, size: size, contentType: contentType)
        return true
    }

    func multipartUpload(_ key: String, file: URL, size: UInt64, contentType: String) async throws {
        // SHA-256 checksums on every part: the service verifies each part and the whole.
        let created = try await execute("POST", key: key, query: [("uploads", "")],
                                        headers: [("Content-Type", contentType), ("x-amz-checksum-algorithm", "SHA256")])
        guard let uploadID = MiniXML.text("UploadId", in: String(decoding: created.body, as: UTF8.self)) else {
            throw PipelineError(.storage, "CreateMultipartUpload for \(key) returned no UploadId")
        }
        let partSize = UInt64(self.partSize)
        let count = Int((size + partSize - 1) / partSize)
        do {
            let parts = try await mapConcurrently(1...count, width: partConcurrency) { number in
                let offset = UInt64(number - 1) * partSize
                let length = min(partSize, size - offset)
                let hash = try await BlockingExecutor.shared.run { try Self.sha256(file, offset: offset, length: length) }
                let checksum = Data(hash).base64EncodedString()
                let response = try await self.execute("PUT", key: key,
                                                      query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                                      headers: [("x-amz-checksum-sha256", checksum)],
                                                      body: .file(file, offset: offset, length: length),
                                                      payloadHash: Digest.hex(hash))
                guard let etag = response.header("ETag") else {
                    throw PipelineError(.storage, "UploadPart \(number) of \(key) returned no ETag")
                }
                return (etag: etag, checksum: checksum)
            }
            let body = "<CompleteMultipartUpload>" + parts.enumerated().map {
                "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(MiniXML.escape($0.element.etag))</ETag>"
                    + "<ChecksumSHA256>\($0.element.checksum)</ChecksumSHA256></Part>"
            }.joined() + "</CompleteMultipartUpload>"
            let data = Data(body.utf8)
            let completed = try await execute("POST", key: key, query: [("uploadId", uploadID)],
                                              headers: [("Content-Type", "application/xml")],
                                              body: .data(data), payloadHash: try Digest.sha256Hex(data))
            // CompleteMultipartUpload can answer 200 with an error document.
            let text = String(decoding: completed.body, as: UTF8.self)
            if text.contains("<Error>") {
                let code = MiniXML.text("Code", in: text) ?? "unknown error"
                throw PipelineError(.storage, "CompleteMultipartUpload of \(key) failed: \(code)", fields: [.s3Code: code],
                                    transient: code == "InternalError")
            }
        } catch {
            // Nothing half-made may remain: abort, even when the caller was cancelled.
            let client = self
            _ = try? await Task.detached {
                try await client.execute("DELETE", key: key, query: [("uploadId", uploadID)], allow: [404])
            }.value
            throw error
        }
    }

    public func get(_ key: String) async throws -> Data {
        try await execute("GET", key: key).body
    }

    /// `length` bytes from `offset` (fewer at the end), and the object's whole size. An empty
    /// object answers 416 to any range: it is read as empty.
    public func getRange(_ key: String, offset: Int64, length: Int64) async throws -> (data: Data, total: Int64) {
        let response = try await execute("GET", key: key, headers: [("Range", "bytes=\(offset)-\(offset + length - 1)")],
                                         allow: [416])
        // Content-Range: bytes 0-99/1234, or bytes */0 with 416.
        let total = response.header("Content-Range").flatMap { $0.split(separator: "/").last.flatMap { Int64($0) } }
        if response.status == 416 {
            // Past the end: at 0 the object is empty (S3 refuses any range of an empty object).
            return (Data(), total ?? offset)
        }
        if response.status == 200 {  // a server that ignores Range sends it all
            return (response.body.dropFirst(Int(offset)).prefix(Int(length)), Int64(response.body.count))
        }
        return (response.body, total ?? offset + Int64(response.body.count))
    }

    /// Multipart uploads begun and neither completed nor aborted, under `prefix`.
    public func multipartUploads(prefix: String) async throws -> [(key: String, uploadID: String, initiated: Date)] {
        var out: [(String, String, Date)] = []
        var keyMarker: String?
        var idMarker: String?
        repeat {
            var query = [("uploads", "")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let idMarker { query.append(("upload-id-marker", idMarker)) }
            let text = String(decoding: try await execute("GET", key: nil, query: query).body, as: UTF8.self)
            for block in MiniXML.blocks("Upload", in: text) {
                guard let key = MiniXML.text("Key", in: block), let id = MiniXML.text("UploadId", in: block) else { continue }
                let initiated = MiniXML.text("Initiated", in: block).flatMap(Timestamp.parse) ?? .distantPast
                out.append((key, id, initiated))
            }
            let truncated = MiniXML.text("IsTruncated", in: text) == "true"
            keyMarker = truncated ? MiniXML.text("NextKeyMarker", in: text) : nil
            idMarker = truncated ? MiniXML.text("NextUploadIdMarker", in: text) : nil
        } while keyMarker != nil
        return out
    }

    public func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        _ = try await execute("DELETE", key: key, query: [("uploadId", uploadID)], allow: [404])
    }

    /// Streams an object into a file (created or truncated).
    public func download(_ key: String, to file: URL) async throws {
        _ = try await execute("GET", key: key, responseFile: file)
    }

    /// Size and ETag, or nil when there is no such object.
    public func head(_ key: String) async throws -> S3Object? {
        let response = try await execute("HEAD", key: key, allow: [404])
        guard response.status != 404 else { return nil }
        return S3Object(key: key, size: Int(response.header("Content-Length") ?? "0") ?? 0, etag: response.header("ETag") ?? "")
    }

    public func delete(_ key: String) async throws {
        _ = try await execute("DELETE", key: key, allow: [404])
    }

    /// Every object under `prefix`, following continuation tokens.
    public func list(prefix: String) async throws -> [S3Object] {
        var objects: [S3Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let response = try await execute("GET", key: nil, query: query)
            let text = String(decoding: response.body, as: UTF8.self)
            for block in MiniXML.blocks("Contents", in: text) {
                guard let key = MiniXML.text("Key", in: block) else { continue }
                objects.append(S3Object(key: key, size: Int(MiniXML.text("Size", in: block) ?? "0") ?? 0,
                                        etag: MiniXML.text("ETag", in: block) ?? ""))
            }
            token = MiniXML.text("IsTruncated", in: text) == "true" ? MiniXML.text("NextContinuationToken", in: text) : nil
        } while token != nil
        return objects
    }

    /// A presigned URL for GET or PUT, valid for `expires` (at most 7 days, as S3 allows).
    public func presignedURL(_ method: String, key: String, expires: Duration) throws -> URL {
        let seconds = Int(expires.components.seconds)
        guard (1...604_800).contains(seconds) else {
            throw PipelineError(.configuration, "a presigned URL lasts 1 second to 7 days, not \(expires.formattedForHumans)")
        }
        let (host, path, base) = address(key)
        let query = try signer.presign(SigV4Signer.Request(method: method, path: path, headers: [("Host", host)]),
                                       date: now(), expires: seconds)
        return try url(host: host, path: path, base: base, query: query)
    }

    /// Uploads a file through a presigned PUT, as the product's upload flow does (a browser holds
    /// only the URL), with the same retries as every other request; then checks the size arrived.
    public func uploadPresigned(_ key: String, file: URL, size: Int, contentType: String) async throws {
        let url = try presignedURL("PUT", key: key, expires: .seconds(900))
        let presigned = PresignedLayer(base: http, bucket: location.bucket, key: key)
        _ = try await resilient(presigned).send(HTTPRequest(method: "PUT", url: url, headers: [("Content-Type", contentType)],
                                                            body: .file(file, offset: 0, length: UInt64(size))))
        guard let head = try await head(key), head.size == size else {
            throw PipelineError(.storage, "the uploaded object of \(file.lastPathComponent) is missing or not \(size) bytes")
        }
    }

    static func fileSize(_ file: URL) throws -> UInt64 {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
              let size = attributes[.size] as? NSNumber else {
            throw PipelineError(.storage, "cannot read \(file.path)")
        }
        return size.uint64Value
    }

    static func sha256(_ file: URL, offset: UInt64, length: UInt64) throws -> [UInt8] {
        try Digest.sha256(file: file, offset: offset, length: length, code: .storage).digest
    }
}

/// Signs every attempt afresh (a retry gets a new date) and turns an answer outside 2xx and
/// `allow` into an `S3Error`.
struct SigningLayer: HTTPTransport {
    let base: any HTTPTransport
    let signer: SigV4Signer
    let now: @Sendable () -> Date
    let host: String
    let path: String
    let query: [(String, String)]
    let payloadHash: String
    let bucket: String
    let key: String?
    let allow: Set<Int>

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var signed = request
        signed.headers = try signer.sign(SigV4Signer.Request(method: request.method, path: path, query: query,
                                                             headers: [("Host", host)] + request.headers),
                                         date: now(), payloadHash: payloadHash, signPayloadHeader: true)
            .filter { $0.0 != "Host" }
        let response = try await base.send(signed)
        if (200...299).contains(response.status) || allow.contains(response.status) { return response }
        throw try await S3Error.from(response, method: request.method, key: key, bucket: bucket,
                                     responseFile: request.responseFile)
    }
}

/// A presigned request carries its signature in the URL: sent as it is, errors mapped.
struct PresignedLayer: HTTPTransport {
    let base: any HTTPTransport
    let bucket: String
    let key: String

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let response = try await base.send(request)
        if (200...299).contains(response.status) { return response }
        throw try await S3Error.from(response, method: request.method, key: key, bucket: bucket, responseFile: nil)
    }
}

/// An S3 error answer: status, S3's code and message, and the request it answered.
public enum S3Error {
    /// Codes by which a service says it does not accept the credentials.
    static let credentialCodes: Set<String> = [
        "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidClientTokenId", "InvalidToken", "ExpiredToken",
        "TokenRefreshRequired", "AuthorizationHeaderMalformed", "AccessDenied", "InvalidSecurity",
    ]

    static func from(_ response: HTTPResponse, method: String, key: String?, bucket: String,
                     responseFile: URL?) async throws -> PipelineError {
        var body = response.body
        if let responseFile, body.isEmpty {
            body = try await BlockingExecutor.shared.run {
                let handle = try? FileHandle(forReadingFrom: responseFile)
                defer { try? handle?.close() }
                return (try? handle?.read(upToCount: 4096)) ?? Data()
            }
        }
        return describe(status: response.status, body: body, method: method, key: key, bucket: bucket)
    }

    static func describe(status: Int, body: Data, method: String, key: String?, bucket: String) -> PipelineError {
        let text = String(decoding: body.prefix(4096), as: UTF8.self)
        let code = MiniXML.text("Code", in: text) ?? {
            switch status {
            case 400: return "BadRequest"
            case 403: return "Forbidden"
            case 404: return "NotFound"
            default: return "HTTP\(status)"
            }
        }()
        let target = key.map { "s3://\(bucket)/\($0)" } ?? "s3://\(bucket)"
        let fields: [PipelineError.Field: String] = [.httpStatus: String(status), .s3Code: code]
        let transient = [500, 502, 503, 504].contains(status) || ["SlowDown", "InternalError", "RequestTimeout"].contains(code)
        // A HEAD answer has no body: a 400 or 403 there is as good as a refusal of the credentials.
        let refused = credentialCodes.contains(code) || (method == "HEAD" && (status == 403 || status == 400))
        if refused {
            let why = code == "AccessDenied" || code == "Forbidden"
                ? "the credentials are not allowed to \(method) \(target)"
                : "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the profile in use)"
            return PipelineError(.storage, "the storage refused the credentials (\(code), HTTP \(status)): \(why)",
                                 fields: fields)
        }
        let message = MiniXML.text("Message", in: text).map { ": \($0)" } ?? ""
        return PipelineError(.storage, "\(method) \(target) answered \(status) \(code)\(message)", fields: fields,
                             transient: transient)
    }
}
