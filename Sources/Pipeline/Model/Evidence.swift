import Foundation

/// One immutable, content-addressed piece of evidence: what one API operation answered about one
/// resource, with where it came from and until when it is fresh. The answer itself (the body)
/// travels beside it only while it is collected and stored (`CollectEvent.evidence`); from then on
/// it lives in the object store under `originalKey`, and this description is what a run keeps.
/// Encoded, it is the `metadata.json` stored beside the original.
public struct Evidence: Sendable, Hashable, Codable {
    /// Hex SHA-256 over the evidence identity (source, operation, resource, status, content hash):
    /// the same answer about the same resource is the same evidence, run after run.
    public let id: String
    public let organizationID: OrganizationID
    /// Integration it came from: `github`, `aws`, `google_workspace`, ...
    public let source: String
    /// API operation, named as the provider names it (`orgs/get`, `repos/get-branch-protection`).
    public let operation: String
    /// The resource it describes (`acme-corp`, `acme-corp/api@main`).
    public let resource: String
    /// The request as sent, without credentials (`GET /orgs/acme-corp`).
    public let request: String
    /// Status of the answer (HTTP status for HTTP sources).
    public let status: Int
    public let collectedAt: Date
    public let freshUntil: Date
    /// Hex SHA-256 of the original.
    public let sha256: String
    public let mediaType: String
    /// Size of the original in bytes.
    public let size: Int

    public init(id: String, organizationID: OrganizationID, source: String, operation: String, resource: String,
                request: String, status: Int, collectedAt: Date, freshUntil: Date, sha256: String,
                mediaType: String, size: Int) {
        self.id = id
        self.organizationID = organizationID
        self.source = source
        self.operation = operation
        self.resource = resource
        self.request = request
        self.status = status
        self.collectedAt = collectedAt
        self.freshUntil = freshUntil
        self.sha256 = sha256
        self.mediaType = mediaType
        self.size = size
    }

    enum CodingKeys: String, CodingKey {
        case id, source, operation, resource, request, status, sha256, size
        case organizationID = "organization_id"
        case collectedAt = "collected_at"
        case freshUntil = "fresh_until"
        case mediaType = "media_type"
    }

    /// The file extension its original is stored under.
    public var fileExtension: String {
        // The media types collectors record, as they record them: no parsing for each of a
        // bundle's thousands of keys.
        switch mediaType {
        case "application/json", "application/vnd.github+json": return "json"
        case "text/plain": return "txt"
        default: break
        }
        var type = Substring(mediaType)
        if let semicolon = type.firstIndex(of: ";") { type = type[..<semicolon] }
        switch type.trimmingCharacters(in: .whitespaces).lowercased() {
        case "application/json", "application/vnd.github+json", "application/x-amz-json-1.1": return "json"
        case "text/xml", "application/xml": return "xml"
        case "text/csv": return "csv"
        case "application/pdf": return "pdf"
        case "text/plain": return "txt"
        case "image/png": return "png"
        case "image/jpeg": return "jpg"
        case "application/zip": return "zip"
        case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": return "xlsx"
        case "application/vnd.openxmlformats-officedocument.wordprocessingml.document": return "docx"
        default: return size == 0 ? "txt" : "bin"
        }
    }

    /// Object key of the original, as the product's storage layout has it.
    public var originalKey: String { "\(organizationID)/evidence/\(id)/original.\(fileExtension)" }
    public var metadataKey: String { "\(organizationID)/evidence/\(id)/metadata.json" }

    /// `metadata.json`: canonical JSON (sorted keys, ISO-8601 UTC dates), so the same evidence is
    /// the same bytes. Written directly (it is made for every item of a bundle).
    public func canonicalJSON() -> Data {
        JSONValue.object([
            "id": .string(id), "organization_id": .string(organizationID.rawValue), "source": .string(source),
            "operation": .string(operation), "resource": .string(resource), "request": .string(request),
            "status": .number(Double(status)), "collected_at": .string(Timestamp.iso8601(collectedAt)),
            "fresh_until": .string(Timestamp.iso8601(freshUntil)), "sha256": .string(sha256),
            "media_type": .string(mediaType), "size": .number(Double(size)),
        ]).canonicalData()
    }
}

/// Evidence a source could not collect: it makes the checks that needed it `not_verified`.
public struct CollectionFailure: Sendable, Hashable, Codable {
    public let source: String
    public let operation: String
    public let resource: String
    public let reason: String

    public init(source: String, operation: String, resource: String, reason: String) {
        self.source = source
        self.operation = operation
        self.resource = resource
        self.reason = reason
    }
}

/// What a collector yields, in the order it learns it: evidence with the answer it describes, or
/// what could not be collected.
public enum CollectEvent: Sendable {
    case evidence(Evidence, body: Data)
    case failure(CollectionFailure)

    /// What it weighs in memory, for the collect stream's budget: its body's bytes.
    public var weight: Int {
        if case .evidence(_, let body) = self { return max(1, body.count) }
        return 1
    }
}

/// ISO-8601 in UTC with whole seconds: the one time format of stored and rendered output.
public enum Timestamp {
    /// `2026-11-28T00:00:00Z`. Formatted by hand from the UTC calendar fields: it runs for every
    /// stored row, and Foundation's format styles are far slower.
    public static func iso8601(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))Z"
    }

    public static func day(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).year().month().day())
    }

    public static func parse(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true,
                                                  timeZone: TimeZone(identifier: "UTC")!).parse(text) { return date }
        if text.count == 10, let date = try? Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!)
            .year().month().day().parse(text) { return date }
        return nil
    }
}
