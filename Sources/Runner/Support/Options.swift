import Cryptography
import ArgumentParser
import Foundation
import Logging
import Pipeline
import Stages
import Storage
import Transport

/// Where definitions live. Flags win over environment, which wins over defaults.
struct LocationOptions: ParsableArguments {
    @Option(name: .customLong("pipelines"), help: ArgumentHelp("Folder of pipeline definitions (env LIGHTSAIL_PIPELINES).", valueName: "dir"))
    var pipelinesDirectory: String?

    var pipelines: String {
        pipelinesDirectory ?? ProcessInfo.processInfo.environment["LIGHTSAIL_PIPELINES"] ?? "pipelines"
    }
}

struct LoggingOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(name: .long, help: "Log format on standard error: text or json.")
    var logFormat: Format = .text

    @Option(name: .long, help: "Least severe level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func bootstrap() throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        let format = logFormat
        ErrorOutput.shared.configure(json: format == .json, debug: level <= .debug)
        LoggingSystem.bootstrap { label in
            var handler = StandardErrorLogHandler(label: label, json: format == .json)
            handler.logLevel = level
            return handler
        }
    }
}

/// The built-in vocabulary definitions may use: the sources this build has, and the frameworks of
/// the catalog beside the definitions.
enum BuiltIn {
    static let collectors: [any EvidenceCollector] = [GitHubCollector(), AWSCollector(), GoogleWorkspaceCollector()]
    static var sources: Set<String> { Set(collectors.map(\.source)) }

    static func vocabulary(_ folder: String) -> Vocabulary {
        vocabulary(CatalogLoader(sources: sources).load(folder: folder).catalog)
    }

    static func vocabulary(_ catalog: Catalog) -> Vocabulary {
        Vocabulary(sources: sources, frameworks: Set(catalog.frameworks.keys))
    }
}

/// The catalog (frameworks/ and checks/ beside the definitions), as runs and commands use it.
enum CatalogFiles {
    /// The catalog of `folder`; its problems are printed, and errors stop the command (exit 2).
    static func load(_ folder: String) throws -> Catalog {
        try loadWithDigests(folder).catalog
    }

    /// The catalog and each of its files' SHA-256 (by path in the folder), for a bundle's manifest.
    static func loadWithDigests(_ folder: String) throws -> (catalog: Catalog, files: [Provenance.FileDigest]) {
        let result = CatalogLoader(sources: BuiltIn.sources).load(folder: folder)
        for diagnostic in result.diagnostics {
            StandardError.write(diagnostic.rendered(source: result.sources[diagnostic.file]) + "\n")
        }
        if result.diagnostics.hasErrors {
            throw PipelineError(.invalidDefinition, "the catalog in \(folder) has errors (fix them, or see `pipeline lint`)")
        }
        if let missing = CheckValidator.unimplemented(result.catalog).first {
            throw PipelineError(.invalidDefinition, "\(missing.file): check \(missing.id) has neither 'pass' nor built-in logic")
        }
        let files = try result.sources.map { path, text in
            Provenance.FileDigest(path: relative(path, to: folder), sha256: try Digest.sha256Hex(Data(text.utf8)))
        }
        return (result.catalog, files)
    }

    /// What a run's bundle names as its origin: this program, the definition's text as it was
    /// parsed, the catalog.
    static func provenance(_ catalog: Catalog, files: [Provenance.FileDigest], definition: PipelineDefinition,
                           source: String?, folder: String) throws -> Provenance {
        guard let bytes = source.map({ Data($0.utf8) }) ?? FileManager.default.contents(atPath: definition.file) else {
            throw PipelineError(.invalidDefinition, "cannot read \(definition.file) to hash it")
        }
        let listing = Provenance.catalogListing(files)
        return Provenance(definition: .init(path: relative(definition.file, to: folder), sha256: try Digest.sha256Hex(bytes)),
                          catalogSHA256: try Digest.sha256Hex(Data(listing.utf8)), catalogFiles: files,
                          frameworks: catalog.frameworks.values.map { .init(id: $0.id, title: $0.title, version: $0.version) })
    }

    /// `checks/aws.yml` for a file of the folder; the file's name for one elsewhere.
    static func relative(_ path: String, to folder: String) -> String {
        let file = URL(fileURLWithPath: path).standardizedFileURL.path
        let root = URL(fileURLWithPath: folder).standardizedFileURL.path
        let prefix = root.hasSuffix("/") ? root : root + "/"
        return file.hasPrefix(prefix) ? String(file.dropFirst(prefix.count)) : (file as NSString).lastPathComponent
    }
}
