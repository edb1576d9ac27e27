import Cryptography
import Foundation
import Pipeline

/// Answers for conditional requests kept in the object store, under the organization's own
/// prefix: `{org}/cache/http/{source}/{sha256 of the URL}.json`. Nothing here is evidence; a
/// lost entry only costs a full answer next time.
public struct ObjectAnswerCache: HTTPAnswerCache {
    let objects: any ObjectStore
    let organization: OrganizationID
    let source: String

    public init(objects: any ObjectStore, organization: OrganizationID, source: String) {
        self.objects = objects
        self.organization = organization
        self.source = source
    }

    func key(_ url: URL) -> String? {
        guard let digest = try? Digest.sha256Hex(Data(url.absoluteString.utf8)) else { return nil }
        let key = "\(organization)/cache/http/\(source)/\(digest).json"
        do {
            try validateObjectKey(key, organization: organization)
        } catch {
            return nil
        }
        return key
    }

    public func answer(for url: URL) async -> CachedAnswer? {
        guard let key = key(url), (try? await objects.exists(key)) == true, let data = try? await objects.get(key) else { return nil }
        return try? JSONDecoder().decode(CachedAnswer.self, from: data)
    }

    public func keep(_ answer: CachedAnswer, for url: URL) async {
        guard let key = key(url), let data = try? JSONEncoder().encode(answer) else { return }
        _ = try? await objects.put(key, data: data, contentType: "application/json", ifAbsent: false)
    }
}
