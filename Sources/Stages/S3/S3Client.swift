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

/// The S3 REST API over libcurl, signed with SigV4: PUT with a SHA-256 checksum, multipart upload
/// for large files (parts in parallel, aborted on failure), GET to memory or streamed to disk,
/// HEAD, ListObjectsV2 with continuation, DELETE, presigned URLs. Retries 500, 503 and SlowDown
/// with backoff; never 4xx.
public struct S3Client: Sendable {
    public let location: S3Location
    public let credentials: AWSCredentials
    public let http: CurlHTTPClient
    public let retry: RetryPolicy
    /// Files larger than this go up in parts of `partSize`.
    public var multipartThreshold = 64 << 20
    public var partSize = 8 << 20
    public var partConcurrency = 8
    let now: @Sendable () -> Date
    let sleeper: Sleeper

    public init(location: S3Location, credentials: AWSCredentials, http: CurlHTTPClient = CurlHTTPClient(),
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

    func url(host: String, path: String, base: String, query: [(String, String)]) -> URL {
        let encodedPath = SigV4Signer.encode(path, keepSlash: true)
        let q = query.isEmpty ? "" : "?" + Self.queryString(query)
        return URL(string: base + encodedPath + q)!
    }

    // MARK: Requests

    /// Signs and sends one request, retrying transient failures; a non-2xx answer is an `S3Error`.
    func execute(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
                 upload: CurlHTTPClient.Upload = .none, payloadHash: String = SigV4Signer.emptyPayloadHash,
                 download: CurlHTTPClient.Download = .memory, allow: Set<Int> = []) async throws -> HTTPResponse {
        let (host, path, base) = address(key)
        let target = url(host: host, path: path, base: base, query: query)
        let signer = self.signer
        let http = self.http
        let now = self.now
        return try await retry.run(sleeper: sleeper, isTransient: { ($0 as? PipelineError)?.isTransient ?? false }) {
            let signed = signer.sign(SigV4Signer.Request(method: method, path: path, query: query,
                                                         headers: [("Host", host)] + headers),
                                     date: now(), payloadHash: payloadHash, signPayloadHeader: true)
            let request = HTTPRequest(method: method, url: target, headers: signed.filter { $0.0 != "Host" })
            let response = try await http.perform(request, upload: upload, download: download)
            if (200...299).contains(response.status) || allow.contains(response.status) { return response }
            throw S3Error.from(response, method: method, key: key, bucket: location.bucket, download: download)
        }
    }

    public func put(_ key: String, data: Data, contentType: String) async throws {
        let digest = Digest.sha256(data)
        _ = try await execute("PUT", key: key, headers: [
            ("Content-Type", contentType),
            ("x-amz-checksum-sha256", Data(digest).base64EncodedString()),
        ], upload: .data(data), payloadHash: Digest.hex(digest))
    }

    /// Uploads a file: one PUT when small, multipart when large.
    public func upload(_ key: String, file: URL, contentType: String) async throws {
        let size = try Self.fileSize(file)
        if size <= UInt64(multipartThreshold) {
            let hash = try await BlockingIO.run { try Self.sha256(file, offset: 0, length: size) }
            _ = try await execute("PUT", key: key, headers: [
                ("Content-Type", contentType), ("x-amz-checksum-sha256", Data(hash).base64EncodedString()),
            ], upload: .file(file, offset: 0, length: size), payloadHash: Digest.hex(hash))
            return
        }
        try await multipartUpload(key, file: file, size: size, contentType: contentType)
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
                let hash = try await BlockingIO.run { try Self.sha256(file, offset: offset, length: length) }
                let checksum = Data(hash).base64EncodedString()
                let response = try await self.execute("PUT", key: key,
                                                      query: [("partNumber", String(number)), ("uploadId", uploadID)],
                                                      headers: [("x-amz-checksum-sha256", checksum)],
                                                      upload: .file(file, offset: offset, length: length),
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
                                              upload: .data(data), payloadHash: Digest.sha256Hex(data))
            // CompleteMultipartUpload can answer 200 with an error document.
            let text = String(decoding: completed.body, as: UTF8.self)
            if text.contains("<Error>") {
                throw PipelineError(.storage, "CompleteMultipartUpload of \(key) failed: \(MiniXML.text("Code", in: text) ?? "unknown error")",
                                    transient: MiniXML.text("Code", in: text) == "InternalError")
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

    /// Streams an object into a file.
    public func download(_ key: String, to file: URL) async throws {
        _ = try await execute("GET", key: key, download: .file(file))
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
        let query = signer.presign(SigV4Signer.Request(method: method, path: path, headers: [("Host", host)]),
                                   date: now(), expires: seconds)
        return url(host: host, path: path, base: base, query: query)
    }

    static func fileSize(_ file: URL) throws -> UInt64 {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: file.path),
              let size = attributes[.size] as? NSNumber else {
            throw PipelineError(.storage, "cannot read \(file.path)")
        }
        return size.uint64Value
    }

    static func sha256(_ file: URL, offset: UInt64, length: UInt64) throws -> [UInt8] {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let hasher = try SHA256Hasher()
        var remaining = length
        while remaining > 0 {
            guard let chunk = try handle.read(upToCount: Int(min(remaining, 4 << 20))), !chunk.isEmpty else {
                throw PipelineError(.storage, "\(file.path) ended early")
            }
            hasher.update(chunk)
            remaining -= UInt64(chunk.count)
        }
        return hasher.finalize()
    }
}

/// An S3 error answer: status, S3's code and message, and the request it answered.
public enum S3Error {
    static func from(_ response: HTTPResponse, method: String, key: String?, bucket: String,
                     download: CurlHTTPClient.Download) -> PipelineError {
        var body = response.body
        if case .file(let url) = download, body.isEmpty { body = (try? Data(contentsOf: url).prefix(4096)) ?? Data() }
        let text = String(decoding: body.prefix(4096), as: UTF8.self)
        let fallback: String
        switch response.status {
        case 403: fallback = "Forbidden"
        case 404: fallback = "NotFound"
        default: fallback = "HTTP \(response.status)"
        }
        let code = MiniXML.text("Code", in: text) ?? fallback
        var message = MiniXML.text("Message", in: text).map { ": \($0)" } ?? ""
        if method == "HEAD", response.status == 403 {
            message = " (a HEAD answer carries no detail: check the credentials and their permissions)"
        }
        let transient = [500, 502, 503, 504].contains(response.status) || code == "SlowDown" || code == "InternalError"
            || code == "RequestTimeout"
        let target = key.map { "s3://\(bucket)/\($0)" } ?? "s3://\(bucket)"
        return PipelineError(.storage, "\(method) \(target) answered \(response.status) \(code)\(message)", transient: transient)
    }
}
