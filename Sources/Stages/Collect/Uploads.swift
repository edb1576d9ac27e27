import Cryptography
import Foundation
import Pipeline

/// Evidence a person uploads (a policy PDF, a screenshot): hashed as it streams from disk, stored
/// under the same content-addressed layout as collected evidence.
public enum UploadedEvidence {
    static let mediaTypes = ["pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
                             "json": "application/json", "csv": "text/csv", "txt": "text/plain", "xml": "application/xml",
                             "zip": "application/zip",
                             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                             "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"]

    /// Describes `file` as evidence of `organization` without reading it into memory; the file
    /// is read on the blocking executor. A missing or unreadable file is the user's mistake.
    /// `date` is when the document was reviewed (the evidence's collection time), `freshFor` how
    /// long the review stays valid; the reviewer is part of how it was obtained.
    public static func describe(file: URL, organization: OrganizationID, mediaType: String?, at date: Date,
                                freshFor: Duration, reviewer: String? = nil) async throws -> Evidence {
        let name = file.lastPathComponent
        guard !name.isEmpty, name.utf8.count <= 255, name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw PipelineError(.invalidInput, "file name \(quotedForMessage(name)) cannot be recorded")
        }
        let (contentHash, size) = try await BlockingExecutor.shared.run { try hash(file) }
        let type = mediaType ?? mediaTypes[file.pathExtension.lowercased()] ?? "application/octet-stream"
        return try EvidenceFactory.make(organization: organization, source: "upload", operation: "evidence/upload",
                                        resource: name, request: "PUT upload \(name)" + (reviewer.map { ", reviewed by \($0)" } ?? ""),
                                        status: 200, mediaType: type,
                                        contentHash: contentHash, size: size, collectedAt: date, freshFor: freshFor)
    }

    static func hash(_ file: URL) throws -> (String, Int) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw PipelineError(.invalidInput, "no such file: \(file.path)")
        }
        let (digest, size) = try Digest.sha256(file: file, code: .invalidInput)
        return (Digest.hex(digest), size)
    }
}
