import Foundation
import Pipeline
import Transport

/// The production object store: an S3-compatible bucket. S3 makes a PUT visible whole or not at
/// all, and a failed multipart upload is aborted, so nothing half-written is ever visible; an
/// answered PUT is durable, so `sync()` has nothing to do.
public struct S3ObjectStore: ObjectStore {
    public let client: S3Client

    public init(client: S3Client) {
        self.client = client
    }

    public func fullKey(_ key: String) -> String { client.location.prefix + key }

    /// One conditional PUT (`If-None-Match: *`): no HEAD first, and no race between two writers.
    public func put(_ key: String, data: Data, contentType: String, ifAbsent: Bool) async throws -> Bool {
        try await client.put(fullKey(key), data: data, contentType: contentType, ifAbsent: ifAbsent)
    }

    public func put(_ key: String, file: URL, contentType: String, ifAbsent: Bool) async throws -> Bool {
        try await client.upload(fullKey(key), file: file, contentType: contentType, ifAbsent: ifAbsent)
    }

    public func get(_ key: String) async throws -> Data {
        try await client.get(fullKey(key))
    }

    /// Ranged GETs of `chunkSize` bytes, one after another.
    public func read(_ key: String, chunkSize: Int, _ body: (Data) async throws -> Void) async throws {
        var offset: Int64 = 0
        while true {
            let (data, total) = try await client.getRange(fullKey(key), offset: offset, length: Int64(max(1, chunkSize)))
            if !data.isEmpty { try await body(data) }
            offset += Int64(data.count)
            if data.isEmpty || offset >= total { return }
        }
    }

    public func exists(_ key: String) async throws -> Bool {
        try await client.head(fullKey(key)) != nil
    }

    public func delete(_ key: String) async throws {
        try await client.delete(fullKey(key))
    }

    public func sync() async throws {}

    /// Aborts multipart uploads under the prefix that were started more than a day ago: what an
    /// uploader killed before it could abort leaves behind (their parts are billed, never shown).
    /// The bucket's uploads are listed whole and filtered here (moto 5.2 refuses the signature of
    /// a `prefix` with `/`); a bucket lifecycle rule `AbortIncompleteMultipartUpload` does the same
    /// job on AWS.
    public func sweep() async throws -> (files: Int, bytes: Int64) {
        var aborted = 0
        let cutoff = Date().addingTimeInterval(-24 * 3600)
        let prefix = client.location.prefix
        for upload in try await client.multipartUploads(prefix: "")
        where upload.key.hasPrefix(prefix) && upload.initiated < cutoff {
            try await client.abortMultipartUpload(upload.key, uploadID: upload.uploadID)
            aborted += 1
        }
        return (aborted, 0)
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
        try await client.uploadPresigned(fullKey(key), file: file, size: size, contentType: contentType)
    }
}
