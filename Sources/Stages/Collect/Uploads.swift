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
    /// is hashed off the cooperative pool.
    public static func describe(file: URL, organization: OrganizationID, mediaType: String?, at date: Date,
                                freshFor: Duration) async throws -> Evidence {
        try await BlockingIO.run {
            try describeNow(file: file, organization: organization, mediaType: mediaType, at: date, freshFor: freshFor)
        }
    }

    static func describeNow(file: URL, organization: OrganizationID, mediaType: String?, at date: Date,
                            freshFor: Duration) throws -> Evidence {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw PipelineError(.configuration, "no such file: \(file.path)")
        }
        let name = file.lastPathComponent
        guard !name.isEmpty, name.utf8.count <= 255, name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
            throw PipelineError(.configuration, "file name \(quotedForMessage(name)) cannot be recorded")
        }
        let type = mediaType ?? mediaTypes[file.pathExtension.lowercased()] ?? "application/octet-stream"
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: file)
        } catch {
            throw PipelineError(.configuration, "cannot read \(file.path): \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        let hasher = try SHA256Hasher()
        var size = 0
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            hasher.update(chunk)
            size += chunk.count
        }
        let contentHash = Digest.hex(hasher.finalize())
        let request = "PUT upload \(name)"
        let identity = ["lightsail-evidence-v1", organization.rawValue, "upload", "evidence/upload", name, request,
                        "200", contentHash].joined(separator: "\n")
        return Evidence(id: Digest.sha256Hex(Data(identity.utf8)), organizationID: organization, source: "upload",
                        operation: "evidence/upload", resource: name, request: request, status: 200, collectedAt: date,
                        freshUntil: date.addingTimeInterval(Double(freshFor.components.seconds)), sha256: contentHash,
                        mediaType: type, body: Data(), size: size)
    }
}
