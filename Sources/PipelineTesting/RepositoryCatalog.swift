import Foundation
import Pipeline

/// The catalog this repository ships (pipelines/frameworks, pipelines/checks), for tests.
public enum RepositoryCatalog {
    /// The repository's root, found from this file's place in it.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    public static let pipelines = root.appendingPathComponent("pipelines").path

    /// Loaded once; its diagnostics are in `diagnostics` (a test asserts there are none).
    public static let result = CatalogLoader(sources: ["github", "aws", "google_workspace"]).load(folder: pipelines)
    public static var shared: Catalog { result.catalog }
    public static var diagnostics: [Diagnostic] { result.diagnostics }
}
