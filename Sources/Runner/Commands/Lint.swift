import ArgumentParser
import Foundation
import Pipeline
import Stages

struct Lint: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check pipeline definitions and report every problem with its position.",
        discussion: "Prints `file:line:col: severity: message [code]` per problem. Exit 0 clean, 1 problems, 2 usage."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Argument(help: "Definition files or folders (default: the pipelines folder).")
    var paths: [String] = []

    @Option(name: .long, help: "Output format: text or json.")
    var format: Format = .text

    @OptionGroup var locations: LocationOptions

    func run() async throws {
        let roots = paths.isEmpty ? [locations.pipelines] : paths
        let files = try DefinitionFiles.expandWithFolders(roots)
        var all: [Diagnostic] = []
        var output = ""
        // The catalog of each folder linted (frameworks/ and checks/ inside it), and of the
        // pipelines folder for definitions named one by one.
        var catalogFolders = roots.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        if catalogFolders.isEmpty { catalogFolders = [locations.pipelines] }
        var catalogFiles = 0
        for folder in catalogFolders {
            let result = CatalogLoader(sources: BuiltIn.sources).load(folder: folder)
            catalogFiles += result.sources.count
            var diagnostics = result.diagnostics
            if !diagnostics.hasErrors {
                diagnostics += CheckValidator.unimplemented(result.catalog).map {
                    Diagnostic(file: $0.file, line: 1, column: 1, message: "check \($0.id) has neither 'pass' nor built-in logic", code: "no-logic")
                }
            }
            all += diagnostics
            for diagnostic in diagnostics where format == .text {
                output += diagnostic.rendered(source: result.sources[diagnostic.file]) + "\n"
            }
        }
        let loader = DefinitionLoader(vocabulary: BuiltIn.vocabulary(catalogFolders[0]))
        for (file, folder) in files {
            let result = loader.load(file: file, within: folder)
            all += result.diagnostics
            for diagnostic in result.diagnostics where format == .text {
                output += diagnostic.rendered(source: result.source) + "\n"
            }
        }
        switch format {
        case .text:
            let errors = all.count { $0.severity == .error }
            let checked = "\(files.count) definition\(files.count == 1 ? "" : "s")"
                + (catalogFiles > 0 ? " and \(catalogFiles) catalog file\(catalogFiles == 1 ? "" : "s")" : "") + " checked"
            output += all.isEmpty
                ? "\(checked), no problems\n"
                : "\(checked), \(errors) error\(errors == 1 ? "" : "s"), \(all.count - errors) warning\(all.count - errors == 1 ? "" : "s")\n"
            print(output, terminator: "")
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            let document = ["files": files.count, "diagnostics": all] as LintReport
            print(String(decoding: try encoder.encode(document), as: UTF8.self))
        }
        if all.hasErrors { throw Exit.problems }
    }
}

struct LintReport: Encodable, ExpressibleByDictionaryLiteral {
    var files = 0
    var diagnostics: [Diagnostic] = []

    init(dictionaryLiteral elements: (String, Any)...) {
        for (key, value) in elements {
            if key == "files", let value = value as? Int { files = value }
            if key == "diagnostics", let value = value as? [Diagnostic] { diagnostics = value }
        }
    }
}

/// Turns the paths a user gave into definition files: folders expand to their *.yml and *.yaml.
enum DefinitionFiles {
    static func expand(_ paths: [String]) throws -> [String] {
        try expandWithFolders(paths).map(\.file)
    }

    /// Each file with the folder it was found in (nil for a file named directly): a file found in
    /// a folder must stay inside it.
    static func expandWithFolders(_ paths: [String]) throws -> [(file: String, folder: String?)] {
        var files: [(String, String?)] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ValidationError("no such file or folder: \(path)")
            }
            if isDirectory.boolValue {
                let entries = try FileManager.default.contentsOfDirectory(atPath: path)
                files += entries.filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted()
                    .map { ((path as NSString).appendingPathComponent($0), path) }
            } else {
                files.append((path, nil))
            }
        }
        return files
    }
}
