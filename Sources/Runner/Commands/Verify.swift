import ArgumentParser
import Cryptography
import Foundation
import Logging
import Pipeline
import Reporting
import Stages
import Storage

/// `pipeline verify`: every pipeline over the recorded fixtures of every fixture organization, at
/// a fixed clock, compared with the expected results committed beside the fixtures. How a
/// customer's CI proves that a change to a definition or a check did what was meant.
struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the pipelines over fixture organizations and compare the results with the expected ones.",
        discussion: """
        Each organization folder (organization.yml and its recordings; a folder of them works too) is \
        imported into a fresh embedded store, every pipeline runs over it at the --as-of clock, and \
        the outcome (each check's status and findings, the scores, what could not be collected, the \
        bundle manifest's entries) is compared with <org>/expected/<pipeline>.json. Prints a diff of \
        each drift; --update writes the expected files instead. Exit 0 when everything matches, 1 on \
        any drift or missing expected file, 2 on usage errors.
        """)

    @Argument(help: "Fixture organization folders, or folders of them (default: fixtures/orgs).") var paths: [String] = []
    @Option(name: .customLong("pipeline"), help: "Only this pipeline (repeatable; default: every definition).") var only: [String] = []
    @Option(name: .long, help: "The run clock (default 2026-11-28T00:00:00Z).") var asOf = "2026-11-28T00:00:00Z"
    @Flag(name: .long, help: "Write the expected files from this run instead of comparing.") var update = false
    @Option(name: .long, help: ArgumentHelp("Also write a JUnit XML report for CI systems.", valueName: "file")) var junitReport: String?
    @OptionGroup var locations: LocationOptions

    struct Case {
        let organization: String
        let pipeline: String
        let expectedFile: URL
        var problem: String?
        var diff: String?
    }

    func run() async throws {
        guard let clock = Timestamp.parse(asOf) else {
            throw ValidationError("--as-of \(asOf) is not a timestamp (2026-11-28T00:00:00Z)")
        }
        do {
            let (catalog, catalogFiles) = try CatalogFiles.loadWithDigests(locations.pipelines)
            let loader = DefinitionLoader(vocabulary: BuiltIn.vocabulary(catalog))
            var definitions: [PipelineDefinition] = []
            var sources: [String: String] = [:]
            for file in try DefinitionFiles.expand([locations.pipelines]) {
                let result = loader.load(file: file, within: locations.pipelines)
                guard let definition = result.definition else {
                    for diagnostic in result.diagnostics { StandardError.write(diagnostic.rendered(source: result.source) + "\n") }
                    throw PipelineError(.invalidDefinition, "\(file) has errors; nothing was verified")
                }
                if only.isEmpty || only.contains(definition.name) { definitions.append(definition) }
                sources[definition.file] = result.source
            }
            if let missing = only.first(where: { name in !definitions.contains { $0.name == name } }) {
                throw PipelineError(.invalidInput, "no pipeline \(quotedForMessage(missing)) in \(locations.pipelines)")
            }
            let folders = paths.isEmpty ? ["fixtures/orgs"] : paths
            var cases: [Case] = []
            for found in try DemoImport.organizations(in: folders) {
                guard case .success(let (organization, members, integrations, documents, exceptions)) = found else {
                    if case .failure(let problem) = found { StandardError.write("pipeline: error: \(problem.description)\n") }
                    throw Exit.problems
                }
                let folder = try Self.folder(of: organization, in: folders)
                for definition in definitions.sorted(by: { $0.name < $1.name }) {
                    let expected = folder.appendingPathComponent("expected/\(definition.name).json")
                    var item = Case(organization: organization.id.rawValue, pipeline: definition.name, expectedFile: expected)
                    let actual = try await Self.outcome(of: definition, for: organization, members: members, integrations: integrations,
                                                        documents: documents, exceptions: exceptions, catalog: catalog,
                                                        provenance: try CatalogFiles.provenance(catalog, files: catalogFiles, definition: definition,
                                                                                                source: sources[definition.file],
                                                                                                folder: locations.pipelines),
                                                        clock: clock)
                    if update {
                        try FileManager.default.createDirectory(at: expected.deletingLastPathComponent(), withIntermediateDirectories: true)
                        try Data(actual.utf8).write(to: expected, options: .atomic)
                        print("\(organization.id) \(definition.name): wrote \(expected.path)")
                    } else if let text = try? String(contentsOf: expected, encoding: .utf8) {
                        if text != actual {
                            item.diff = LineDiff.unified(expected: text, actual: actual, label: expected.path)
                            print("\(organization.id) \(definition.name): DRIFT from \(expected.path)\n\(item.diff ?? "")")
                        } else {
                            print("\(organization.id) \(definition.name): as expected")
                        }
                    } else {
                        item.problem = "no expected file \(expected.path) (write it with --update)"
                        print("\(organization.id) \(definition.name): \(item.problem ?? "")")
                    }
                    cases.append(item)
                }
            }
            let failed = cases.filter { $0.diff != nil || $0.problem != nil }
            print("\(cases.count) verified, \(failed.count) drifted" + (update ? " (expected files written)" : ""))
            if let junitReport { try Self.junit(cases).write(toFile: junitReport, atomically: true, encoding: .utf8) }
            if !failed.isEmpty { throw Exit.problems }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw report(error)
        }
    }

    /// The folder an organization was read from (its organization.yml's folder).
    static func folder(of organization: Organization, in paths: [String]) throws -> URL {
        for path in paths {
            let url = URL(fileURLWithPath: path).standardizedFileURL
            for candidate in [url, url.appendingPathComponent(organization.id.rawValue)]
            where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("organization.yml").path) {
                if try DemoImport.organizations(in: [candidate.path]).contains(where: { (try? $0.get().0.id) == organization.id }) {
                    return candidate
                }
            }
        }
        throw PipelineError(.invalidInput, "cannot find the folder of \(organization.id)")
    }

    /// A fixed key for the fresh stores of `verify` (Ed25519 signs deterministically, so bundles,
    /// and what is compared of them, are the same on every machine). It signs nothing real.
    static func verifyKey() throws -> SigningKey { try SigningKey(seed: Array(repeating: 0x5A, count: 32)) }

    /// One pipeline over one organization in a fresh embedded store, as canonical JSON text.
    static func outcome(of definition: PipelineDefinition, for organization: Organization, members: [Member],
                        integrations: [Integration], documents: [FixtureOrganizations.Document], exceptions: [RiskException],
                        catalog: Catalog, provenance: Provenance, clock: Date) async throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lightsail-verify-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        var backends = BackendOptions()
        backends.dataDir = root.path
        backends.database = "sqlite://\(root.appendingPathComponent("lightsail.sqlite").path)"
        backends.storage = "file://\(root.appendingPathComponent("objects").path)"
        let store = try await backends.openStore()
        let objects = try await backends.openObjects()
        _ = try await store.addOrganization(organization, members: members, integrations: integrations, actor: "system")
        try await DocumentUpload.importDocuments(documents, of: organization.id, store: store, objects: objects, actor: "system")
        for exception in exceptions { try await store.addException(exception, to: organization.id, actor: "system") }
        guard let stored = try await store.organization(organization.id) else {
            throw PipelineError(.storage, "\(organization.id) was not stored")
        }
        let transports = IntegrationTransports(store: store, backends: backends, declared: definition.httpSources)
        let stages = StageSet(
            collectors: BuiltIn.collectors + definition.httpSources.map { HTTPSourceCollector($0) },
            transport: { source, organization in try await transports.transport(for: source, of: organization) },
            validator: CheckValidator(catalog: catalog), scorer: ControlScorer(catalog: catalog),
            renderer: BundleRenderer(signingKey: try Self.verifyKey()))
        let record = RunRecord(id: "verify", organizationID: organization.id, pipeline: definition.name, asOf: clock, actor: "system")
        let scratch = root.appendingPathComponent("scratch")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var logger = Logger(label: "lightsail.verify")
        logger.logLevel = .critical
        let outcome = try await PipelineExecutor(definition: definition, stages: stages, catalog: catalog, provenance: provenance).run(
            RunContext(run: record, organization: stored, logger: logger, store: store, objects: objects, scratch: scratch))
        return try await document(outcome, organization: organization.id.rawValue, pipeline: definition.name, clock: clock)
    }

    /// What is compared: statuses with their reasons and findings, scores, what was not collected,
    /// the report's text, and the bundle manifest's entries (the PDF by name: its bytes follow the
    /// fonts of the machine).
    static func document(_ outcome: RunOutcome, organization: String, pipeline: String, clock: Date) async throws -> String {
        var document: [String: Any] = ["organization": organization, "pipeline": pipeline, "as_of": Timestamp.iso8601(clock)]
        document["checks"] = Dictionary(outcome.results.map { result in
            (result.checkID, ["status": result.status.rawValue, "reason": result.reason, "findings": result.findings] as [String: Any])
        }, uniquingKeysWith: { first, _ in first })
        var scores: [String: Any] = [:]
        if let summary = outcome.scores {
            scores["overall"] = summary.percentText
            for framework in summary.frameworks {
                scores[framework.framework] = ["passed": framework.passed, "failed": framework.failed, "not_verified": framework.notVerified,
                                               "not_applicable": framework.notApplicable, "percent": framework.percentText]
            }
        }
        document["scores"] = scores
        document["not_collected"] = outcome.failures.map { "\($0.source) \($0.operation) \($0.resource): \($0.reason)" }.sorted()
        document["source_errors"] = outcome.sourceErrors
        document["evidence"] = outcome.evidenceCollected
        if let bundle = outcome.export?.artifacts.first(where: { $0.kind == .bundle }) {
            // libarchive blocks: on the executor, not the cooperative pool.
            let location = bundle.location
            let (names, manifest) = try await BlockingExecutor.shared.run { try ZipReader.read(location, entry: "manifest.json") }
            // The report's words, line by line (its PDF bytes follow the machine's fonts).
            if let text = try await BlockingExecutor.shared.run({ try ZipReader.read(location, entry: "report.txt").data }) {
                document["report_text"] = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            }
            var entries: [String] = names.filter { $0 == "report.pdf" }
            if let manifest, let object = try JSONSerialization.jsonObject(with: manifest) as? [String: Any],
               let files = object["files"] as? [[String: Any]] {
                entries += files.compactMap { file -> String? in
                    guard let path = file["path"] as? String, path != "report.pdf" else { return nil }
                    return "\(path) \(file["sha256"] as? String ?? "?")"
                }
            }
            document["bundle"] = entries.sorted()
        }
        let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func junit(_ cases: [Case]) -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failures = cases.count { $0.diff != nil || $0.problem != nil }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"pipeline verify\" tests=\"\(cases.count)\" failures=\"\(failures)\">\n"
        for (organization, items) in Dictionary(grouping: cases, by: \.organization).sorted(by: { $0.key < $1.key }) {
            let failed = items.count { $0.diff != nil || $0.problem != nil }
            xml += "  <testsuite name=\"\(escape(organization))\" tests=\"\(items.count)\" failures=\"\(failed)\">\n"
            for item in items {
                xml += "    <testcase classname=\"\(escape(organization))\" name=\"\(escape(item.pipeline))\""
                if let problem = item.problem {
                    xml += ">\n      <failure message=\"\(escape(problem))\"/>\n    </testcase>\n"
                } else if let diff = item.diff {
                    xml += ">\n      <failure message=\"results drifted from \(escape(item.expectedFile.lastPathComponent))\">\(escape(diff))</failure>\n    </testcase>\n"
                } else {
                    xml += "/>\n"
                }
            }
            xml += "  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }
}

/// A line diff of two texts in the unified format, with three lines of context.
enum LineDiff {
    static func unified(expected: String, actual: String, label: String) -> String {
        let a = expected.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = actual.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Longest common subsequence by dynamic programming (expected files are small).
        var lengths = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lengths[i][j] = a[i] == b[j] ? lengths[i + 1][j + 1] + 1 : max(lengths[i + 1][j], lengths[i][j + 1])
            }
        }
        var lines: [(Character, String)] = []
        var (i, j) = (0, 0)
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] { lines.append((" ", a[i])); i += 1; j += 1 }
            else if j < b.count, i == a.count || lengths[i][j + 1] >= lengths[i + 1][j] { lines.append(("+", b[j])); j += 1 }
            else { lines.append(("-", a[i])); i += 1 }
        }
        let changed = lines.indices.filter { lines[$0].0 != " " }
        var keep = Set<Int>()
        for index in changed { for k in max(0, index - 3)...min(lines.count - 1, index + 3) { keep.insert(k) } }
        var out = "--- \(label) (expected)\n+++ this run\n"
        var previous = -2
        for index in keep.sorted() {
            if index != previous + 1 { out += "@@ line \(index + 1) @@\n" }
            out += "\(lines[index].0)\(lines[index].1)\n"
            previous = index
        }
        return out
    }
}
