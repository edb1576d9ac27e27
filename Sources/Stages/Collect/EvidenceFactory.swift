import Cryptography
import Foundation
import Pipeline

/// Builds content-addressed evidence from an answer. The id hashes the identity of the answer
/// (organization, source, operation, resource, request, status, content hash), so the same
/// answer collected again is the same evidence and is never stored twice.
public enum EvidenceFactory {
    public static func make(organization: OrganizationID, source: String, operation: String, resource: String,
                            request: String, status: Int, mediaType: String, body: Data,
                            collectedAt: Date, freshFor: Duration) -> Evidence {
        let contentHash = Digest.sha256Hex(body)
        let identity = ["lightsail-evidence-v1", organization.rawValue, source, operation, resource, request,
                        String(status), contentHash].joined(separator: "\n")
        let fresh = Double(freshFor.components.seconds)
        return Evidence(id: Digest.sha256Hex(Data(identity.utf8)), organizationID: organization, source: source,
                        operation: operation, resource: resource, request: request, status: status,
                        collectedAt: collectedAt, freshUntil: collectedAt.addingTimeInterval(fresh),
                        sha256: contentHash, mediaType: mediaType, body: body)
    }
}
