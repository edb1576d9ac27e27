import Cryptography
import Foundation
import Pipeline

/// Describes an answer as content-addressed evidence. The id hashes the identity of the answer
/// (organization, source, operation, resource, request, status, content hash), so the same answer
/// collected again is the same evidence and is never stored twice.
public enum EvidenceFactory {
    public static func make(organization: OrganizationID, source: String, operation: String, resource: String,
                            request: String, status: Int, mediaType: String, body: Data,
                            collectedAt: Date, freshFor: Duration) throws -> Evidence {
        try make(organization: organization, source: source, operation: operation, resource: resource, request: request,
                 status: status, mediaType: mediaType, contentHash: try Digest.sha256Hex(body), size: body.count,
                 collectedAt: collectedAt, freshFor: freshFor)
    }

    /// For an original hashed as it streamed (an upload), not held in memory.
    public static func make(organization: OrganizationID, source: String, operation: String, resource: String,
                            request: String, status: Int, mediaType: String, contentHash: String, size: Int,
                            collectedAt: Date, freshFor: Duration) throws -> Evidence {
        let identity = ["lightsail-evidence-v1", organization.rawValue, source, operation, resource, request,
                        String(status), contentHash].joined(separator: "\n")
        let fresh = Double(freshFor.components.seconds)
        return Evidence(id: try Digest.sha256Hex(Data(identity.utf8)), organizationID: organization, source: source,
                        operation: operation, resource: resource, request: request, status: status,
                        collectedAt: collectedAt, freshUntil: collectedAt.addingTimeInterval(fresh),
                        sha256: contentHash, mediaType: mediaType, size: size)
    }
}
