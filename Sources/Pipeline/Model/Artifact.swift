import Foundation

/// Something a run produced and put in the object store.
public struct Artifact: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case pdf, bundle, manifest }
    public let kind: Kind
    public let key: String
    public let sha256: String
    public let size: Int
    /// Where a reader finds it (a file path or URL), filled in by the object store.
    public let location: String

    public init(kind: Kind, key: String, sha256: String, size: Int, location: String) {
        self.kind = kind
        self.key = key
        self.sha256 = sha256
        self.size = size
        self.location = location
    }
}
