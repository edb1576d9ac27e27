import Foundation
import Pipeline

/// The production object store: an S3-compatible bucket. S3 makes a PUT visible whole or not at
/// all, and a failed multipart upload is aborted, so nothing half-written is ever visible.
public struct S3ObjectStore: ObjectStore {
    public let client: S3Client

    public init(client: S3Client) {
        self.client = client
    }

    public func fullKey(_ key: String) -> String { client.location.prefix + key }

    public func put(_ key: String, data: Data, contentType: String, ifAbsent: Bool) async throws -> Bool {
        if ifAbsent, try await client.head(fullKey(key)) != nil { return false }
        try await client.put(fullKey(key), data: data, contentType: contentType)
        return true
    }

    public func get(_ key: String) async throws -> Data {
        try await client.get(fullKey(key))
    }

    public func exists(_ key: String) async throws -> Bool {
        try await client.head(fullKey(key)) != nil
    }

    public func delete(_ key: String) async throws {
        try await client.delete(fullKey(key))
    }

    public func location(of key: String) -> String {
        "s3://\(client.location.bucket)/\(fullKey(key))"
    }

    public func presignedURL(_ method: String, key: String, expires: Duration) throws -> URL {
        try client.presignedURL(method, key: fullKey(key), expires: expires)
    }

    public func shareableLink(for key: String, expires: Duration) throws -> URL? {
        try presignedURL("GET", key: key, expires: expires)
    }

    public var backend: String { "s3" }

    /// Through a presigned PUT, then a HEAD to check the whole object arrived.
    public func upload(_ key: String, file: URL, size: Int, contentType: String) async throws {
        let url = try presignedURL("PUT", key: key, expires: .seconds(900))
        let response = try await client.http.perform(
            HTTPRequest(method: "PUT", url: url, headers: [("Content-Type", contentType)]),
            upload: .file(file, offset: 0, length: UInt64(size)), download: .memory)
        guard (200...299).contains(response.status) else {
            throw PipelineError(.storage, "the presigned upload of \(file.lastPathComponent) answered \(response.status)")
        }
        guard let head = try await client.head(fullKey(key)), head.size == size else {
            throw PipelineError(.storage, "the uploaded object of \(file.lastPathComponent) is missing or not \(size) bytes")
        }
    }
}

/// Storage chosen by URL: `file:///path` for a local directory, or
/// `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true`.
/// Without `endpoint`, AWS S3 of the region is used with virtual-hosted addressing; with one,
/// path-style is the default (MinIO, moto; R2 works either way with `region=auto`).
public enum StorageURL {
    public enum Parsed: Sendable, Equatable {
        case local(URL)
        case s3(S3Location)
    }

    public static func parse(_ text: String) throws -> Parsed {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw PipelineError(.configuration, "storage URL \(quotedForMessage(text)) is not a URL: use file:///path or s3://bucket/prefix")
        }
        switch scheme {
        case "file":
            guard !components.path.isEmpty else { throw PipelineError(.configuration, "storage URL \(text) has no path") }
            return .local(URL(fileURLWithPath: components.path))
        case "s3":
            guard let bucket = components.host, isValidBucket(bucket) else {
                throw PipelineError(.configuration, "storage URL \(quotedForMessage(text)) names no valid bucket (3-63 lowercase letters, digits, '.', '-')")
            }
            var options: [String: String] = [:]
            for item in components.queryItems ?? [] { options[item.name] = item.value ?? "" }
            let known: Set = ["endpoint", "region", "path_style"]
            if let unknown = options.keys.sorted().first(where: { !known.contains($0) }) {
                throw PipelineError(.configuration, "storage URL option '\(unknown)' is unknown (known: endpoint, region, path_style)")
            }
            let region = options["region"] ?? ProcessInfo.processInfo.environment["AWS_REGION"]
                ?? ProcessInfo.processInfo.environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
            let endpoint: URL
            if let given = options["endpoint"] {
                guard let url = URL(string: given), let endpointScheme = url.scheme, ["http", "https"].contains(endpointScheme),
                      url.host != nil else {
                    throw PipelineError(.configuration, "storage endpoint \(quotedForMessage(given)) must be an http or https URL")
                }
                endpoint = url
            } else {
                endpoint = URL(string: "https://s3.\(region).amazonaws.com")!
            }
            let pathStyle: Bool
            switch options["path_style"]?.lowercased() {
            case nil: pathStyle = options["endpoint"] != nil || bucket.contains(".")
            case "true", "1", "yes": pathStyle = true
            case "false", "0", "no": pathStyle = false
            case let other?: throw PipelineError(.configuration, "path_style must be true or false, not \(other)")
            }
            var prefix = components.path
            while prefix.hasPrefix("/") { prefix.removeFirst() }
            if !prefix.isEmpty, !prefix.hasSuffix("/") { prefix += "/" }
            guard !prefix.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw PipelineError(.configuration, "storage prefix \(quotedForMessage(prefix)) may not contain '.' or '..'")
            }
            return .s3(S3Location(endpoint: endpoint, bucket: bucket, region: region, pathStyle: pathStyle, prefix: prefix))
        default:
            throw PipelineError(.configuration, "storage URL scheme '\(scheme)' is not supported: use file:// or s3://")
        }
    }

    static func isValidBucket(_ name: String) -> Bool {
        (3...63).contains(name.count) && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-"
        } && !name.hasPrefix("-") && !name.hasSuffix("-")
    }
}
