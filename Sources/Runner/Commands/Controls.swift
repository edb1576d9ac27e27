import ArgumentParser
import Foundation
import Pipeline
import Stages

/// The catalog as a compliance lead and an auditor read it: every check with its severity,
/// evidence and mapping, and for one check or one criterion, everything about it.
struct Controls: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the catalog's checks and what they map to, or show one check or criterion.",
        subcommands: [ListControls.self, ShowControl.self]
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    struct ListControls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List every check of the catalog.")
        @Option(name: .long, help: "Only checks mapped to this framework.") var framework: String?
        @Option(name: .long, help: "Only checks reading this source.") var source: String?
        @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
        @OptionGroup var locations: LocationOptions

        func run() async throws {
            do {
                let catalog = try CatalogFiles.load(locations.pipelines)
                if let framework, catalog.frameworks[framework] == nil {
                    throw PipelineError(.invalidInput, "unknown framework \(quotedForMessage(framework)) (known: \(catalog.frameworks.keys.sorted().joined(separator: ", ")))")
                }
                let checks = catalog.checks.filter { spec in
                    (framework.map { f in spec.controls.contains { $0.framework == f } } ?? true) && (source.map { spec.source == $0 } ?? true)
                }
                let validator = CheckValidator(catalog: catalog)
                switch format {
                case .json:
                    try printJSON(checks.map { Controls.document($0, catalog: catalog, validator: validator) })
                case .text:
                    for spec in checks {
                        let mapping = Dictionary(grouping: spec.controls, by: \.framework).sorted { $0.key < $1.key }
                            .map { "\($0.key) \($0.value.map(\.id).joined(separator: ","))" }.joined(separator: "; ")
                        print("\(spec.id)\t\(spec.severity.rawValue)\t\(spec.rule == nil ? "built-in" : "declarative")\t\(mapping)")
                    }
                    let frameworks = catalog.frameworks.values.sorted { $0.id < $1.id }.map { "\($0.id) \($0.controls.count)" }
                    print("\(checks.count) checks; frameworks (controls): \(frameworks.joined(separator: ", "))")
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct ShowControl: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show a check (what it checks, the evidence, the criteria) or a criterion (its checks).")
        @Argument(help: "A check id (github.org-requires-2fa) or a criterion or control id (CC6.1, A.8.5).") var id: String
        @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
        @OptionGroup var locations: LocationOptions

        func run() async throws {
            do {
                let catalog = try CatalogFiles.load(locations.pipelines)
                let validator = CheckValidator(catalog: catalog)
                if let spec = catalog.check(id) {
                    let document = Controls.document(spec, catalog: catalog, validator: validator)
                    if format == .json { return try printJSON(document) }
                    print("\(spec.id): \(spec.title)")
                    print("severity:    \(spec.severity.rawValue)")
                    if !spec.description.isEmpty { print("checks:      \(spec.description)") }
                    print("evidence:    " + Controls.evidence(spec, validator: validator).joined(separator: ", "))
                    if let rule = spec.rule {
                        print("resources:   " + (rule.each.map { $0.isEmpty ? "each element of the answer" : "each element of \($0.joined(separator: "."))" } ?? "the answer")
                              + ", named \(rule.resource)")
                        if let applies = rule.appliesText { print("applies to:  \(applies)") }
                        print("passes when: \(rule.passText)")
                    } else {
                        print("logic:       built in")
                    }
                    if !spec.remediation.isEmpty { print("remediation: \(spec.remediation)") }
                    print("supports:")
                    for control in spec.controls { print("  \(control.framework) \(control.id): \(catalog.title(of: control))") }
                    print("defined in:  \(spec.file)")
                    return
                }
                let matches = catalog.frameworks.values.sorted { $0.id < $1.id }.compactMap { framework in
                    framework.title(of: id).map { (framework, $0) }
                }
                guard !matches.isEmpty else {
                    let every = catalog.checks.map(\.id) + catalog.frameworks.values.flatMap { $0.controls.map(\.id) }
                    let hint = closest(id, in: every).map { "; did you mean '\($0)'?" } ?? ""
                    throw PipelineError(.invalidInput, "no check or control \(quotedForMessage(id)) in the catalog\(hint)")
                }
                var documents: [[String: Any]] = []
                for (framework, title) in matches {
                    let checks = catalog.checks.filter { $0.controls.contains(ControlRef(framework: framework.id, id: id)) }
                    documents.append(["framework": framework.id, "control": id, "title": title,
                                      "checks": checks.map { ["id": $0.id, "title": $0.title, "severity": $0.severity.rawValue] }])
                    if format == .text {
                        print("\(framework.id) \(id): \(title)")
                        if checks.isEmpty { print("  no automated check; met by uploaded evidence (pipeline evidence upload --controls \(id))") }
                        for check in checks { print("  \(check.id) (\(check.severity.rawValue)): \(check.title)") }
                    }
                }
                if format == .json { try printJSON(documents.count == 1 ? documents[0] as Any : documents as Any) }
            } catch {
                throw report(error)
            }
        }
    }

    /// What a check reads: source and operation of each answer.
    static func evidence(_ spec: Catalog.CheckSpec, validator: CheckValidator) -> [String] {
        if spec.source == "upload" { return ["upload evidence/upload (documents uploaded for \(spec.controls.map(\.id).joined(separator: ", ")))"] }
        let reads = validator.checks.first { $0.id == spec.id }?.reads ?? []
        return Array(Set(reads.map { "\($0.source) \($0.operation)" })).sorted()
    }

    static func document(_ spec: Catalog.CheckSpec, catalog: Catalog, validator: CheckValidator) -> [String: Any] {
        var document: [String: Any] = [
            "id": spec.id, "title": spec.title, "description": spec.description, "severity": spec.severity.rawValue,
            "remediation": spec.remediation, "source": spec.source, "implementation": spec.rule == nil ? "built-in" : "declarative",
            "evidence": evidence(spec, validator: validator),
            "controls": Dictionary(grouping: spec.controls, by: \.framework).mapValues { refs in
                refs.map { ["id": $0.id, "title": catalog.title(of: $0)] }
            },
            "file": spec.file,
        ]
        if let rule = spec.rule {
            var declared: [String: Any] = ["evidence": rule.operation, "resource": rule.resource, "pass": rule.passText]
            if let each = rule.each { declared["each"] = each.isEmpty ? "@" : each.joined(separator: ".") }
            if let applies = rule.appliesText { declared["applies"] = applies }
            document["rule"] = declared
        }
        return document
    }

    static func printJSON(_ value: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }
}
