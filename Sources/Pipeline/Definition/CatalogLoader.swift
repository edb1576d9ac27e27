import Foundation
import Yams

/// Loads the catalog from a definitions folder: `frameworks/*.yml` (a framework each) and
/// `checks/*.yml` (lists of checks), reporting every problem at its file, line and column. A
/// check in a later file (by name) replaces one of the same id in an earlier one, so a user
/// overrides a shipped check by adding a file; a framework is added by adding its file.
public struct CatalogLoader: Sendable {
    /// The sources checks may read: built-in ones (declared http sources are checked by name only).
    public let sources: Set<String>

    public init(sources: Set<String>) {
        self.sources = sources
    }

    public struct Result: Sendable {
        public let catalog: Catalog
        public let diagnostics: [Diagnostic]
        /// The files read, with their text (for diagnostics' snippets).
        public let sources: [String: String]
    }

    public func load(folder: String) -> Result {
        var diagnostics: [Diagnostic] = []
        var texts: [String: String] = [:]
        func files(_ sub: String) -> [String] {
            let path = (folder as NSString).appendingPathComponent(sub)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            return names.filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted().map { (path as NSString).appendingPathComponent($0) }
        }
        func read(_ file: String) -> Node? {
            let resolved = URL(fileURLWithPath: file).resolvingSymlinksInPath().path
            let root = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
            var info = stat()
            guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
                diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "the file is a link outside \(folder): not read", code: "outside-folder"))
                return nil
            }
            guard stat(resolved, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= DefinitionLoader.maximumSize,
                  let data = FileManager.default.contents(atPath: resolved), let text = String(data: data, encoding: .utf8) else {
                diagnostics.append(Diagnostic(file: file, line: 1, column: 1,
                                              message: "not a readable UTF-8 file of at most \(DefinitionLoader.maximumSize) bytes", code: "unreadable-file"))
                return nil
            }
            texts[file] = text
            var walker = Walker(file: file, vocabulary: Vocabulary(sources: sources, frameworks: []))
            do {
                guard let node = try Yams.compose(yaml: text) else {
                    diagnostics.append(Diagnostic(file: file, line: 1, column: 1, message: "the file is empty", code: "empty-document"))
                    return nil
                }
                return node
            } catch let error as YamlError {
                walker.syntaxError(error)
            } catch {
                walker.report(nil, "cannot parse YAML: \(error)", "yaml-syntax")
            }
            diagnostics += walker.diagnostics
            return nil
        }

        var frameworks: [Catalog.Framework] = []
        for file in files("frameworks") {
            guard let node = read(file) else { continue }
            var walker = Walker(file: file, vocabulary: Vocabulary(sources: sources, frameworks: []))
            if let framework = walker.framework(node) {
                if let earlier = frameworks.first(where: { $0.id == framework.id }) {
                    walker.report(node, "framework '\(framework.id)' is also defined in \(earlier.file)", "duplicate-framework")
                } else {
                    frameworks.append(framework)
                }
            }
            diagnostics += walker.diagnostics
        }
        var checks: [String: Catalog.CheckSpec] = [:]
        for file in files("checks") {
            guard let node = read(file) else { continue }
            var walker = Walker(file: file, vocabulary: Vocabulary(sources: sources, frameworks: Set(frameworks.map(\.id))))
            for check in walker.checks(node, frameworks: frameworks) {
                checks[check.id] = check  // a later file overrides
            }
            diagnostics += walker.diagnostics
        }
        let sorted = diagnostics.sorted { ($0.file, $0.line, $0.column) < ($1.file, $1.line, $1.column) }
        return Result(catalog: Catalog(frameworks: frameworks, checks: Array(checks.values)), diagnostics: sorted, sources: texts)
    }
}

extension Walker {
    mutating func framework(_ root: Node) -> Catalog.Framework? {
        guard let entries = mapping(root, "a framework") else { return nil }
        var id: String?, title: String?, version = ""
        var controls: [Catalog.Control] = []
        for entry in entries {
            switch entry.key {
            case "id":
                guard let value = string(entry.value, "id") else { continue }
                guard isValidPipelineName(value) || value.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                    report(entry.value, "framework id '\(value)' must be lowercase letters, digits, '-' or '_'", "invalid-name")
                    continue
                }
                id = value
            case "title": title = string(entry.value, "title")
            case "version": version = string(entry.value, "version") ?? ""
            case "controls":
                guard let list = entry.value.sequence, !list.isEmpty else {
                    report(entry.value, "controls must be a non-empty list of {id, title}", "expected-sequence")
                    continue
                }
                var seen = Set<String>()
                for item in list {
                    guard let fields = mapping(item, "a control") else { continue }
                    var controlID: String?, controlTitle: String?
                    for field in fields {
                        switch field.key {
                        case "id": controlID = string(field.value, "a control's id")
                        case "title": controlTitle = string(field.value, "a control's title")
                        default: unknownKey(field.key, field.keyNode, allowed: ["id", "title"], in: "a control")
                        }
                    }
                    guard let controlID, let controlTitle else {
                        report(item, "a control needs 'id' and 'title'", "missing-key")
                        continue
                    }
                    guard seen.insert(controlID).inserted else {
                        report(item, "control '\(controlID)' is listed twice", "duplicate-entry")
                        continue
                    }
                    controls.append(Catalog.Control(id: controlID, title: controlTitle))
                }
            default:
                unknownKey(entry.key, entry.keyNode, allowed: ["id", "title", "version", "controls"], in: "a framework")
            }
        }
        for key in ["id", "title", "controls"] where !entries.contains(where: { $0.key == key }) {
            report(root, "the framework has no '\(key)'", "missing-key")
        }
        guard let id, let title, !controls.isEmpty else { return nil }
        return Catalog.Framework(id: id, title: title, version: version, controls: controls, file: file)
    }

    mutating func checks(_ root: Node, frameworks: [Catalog.Framework]) -> [Catalog.CheckSpec] {
        guard let entries = mapping(root, "a checks file") else { return [] }
        var out: [Catalog.CheckSpec] = []
        for entry in entries {
            guard entry.key == "checks" else {
                unknownKey(entry.key, entry.keyNode, allowed: ["checks"], in: "a checks file")
                continue
            }
            guard let list = entry.value.sequence else {
                report(entry.value, "checks must be a list, found \(kindName(entry.value))", "expected-sequence")
                continue
            }
            var seen = Set<String>()
            for item in list {
                guard let check = check(item, frameworks: frameworks) else { continue }
                guard seen.insert(check.id).inserted else {
                    report(item, "check '\(check.id)' appears twice in this file", "duplicate-entry")
                    continue
                }
                out.append(check)
            }
        }
        return out
    }

    static let checkKeys = ["id", "title", "description", "severity", "remediation", "controls", "source",
                            "evidence", "each", "resource", "applies", "pass"]

    mutating func check(_ node: Node, frameworks: [Catalog.Framework]) -> Catalog.CheckSpec? {
        guard let entries = mapping(node, "a check") else { return nil }
        var valid = true
        var id: String?, title: String?, description = "", remediation = "", source: String?
        var severity = Catalog.Severity.medium
        var controls: [ControlRef] = []
        var operation: String?, each: [String]?, resource: String?
        var applies: (CheckExpression, String)?, pass: (CheckExpression, String)?
        for entry in entries {
            switch entry.key {
            case "id":
                guard let value = string(entry.value, "id") else { valid = false; continue }
                guard !value.isEmpty, value.count <= 100, value.first?.isLetter == true,
                      value.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "._-".contains($0)) }) else {
                    report(entry.value, "check id '\(value)' must be lowercase letters, digits, '.', '_' or '-', starting with a letter", "invalid-name")
                    valid = false
                    continue
                }
                id = value
            case "title": title = string(entry.value, "title")
            case "description": description = string(entry.value, "description") ?? ""
            case "remediation": remediation = string(entry.value, "remediation") ?? ""
            case "severity":
                guard let value = string(entry.value, "severity") else { valid = false; continue }
                guard let level = Catalog.Severity(rawValue: value) else {
                    unknownValue(value, entry.value, allowed: Catalog.Severity.allCases.map(\.rawValue), what: "severity", code: "unknown-severity")
                    valid = false
                    continue
                }
                severity = level
            case "source":
                guard let value = string(entry.value, "source") else { valid = false; continue }
                source = value
            case "controls":
                guard let mapping = mapping(entry.value, "controls (framework: [control ids])") else { valid = false; continue }
                for (framework, keyNode, value) in mapping.map({ ($0.key, $0.keyNode, $0.value) }) {
                    guard let known = frameworks.first(where: { $0.id == framework }) else {
                        unknownValue(framework, keyNode, allowed: frameworks.map(\.id), what: "framework", code: "unknown-framework")
                        valid = false
                        continue
                    }
                    guard let ids = stringList(value, "\(framework) controls") else { valid = false; continue }
                    for (control, controlNode) in ids {
                        guard known.title(of: control) != nil else {
                            let hint = closest(control, in: known.controls.map(\.id)).map { "; did you mean '\($0)'?" } ?? ""
                            report(controlNode, "'\(control)' is not a control of \(framework) (\(known.file))\(hint)", "unknown-control")
                            valid = false
                            continue
                        }
                        controls.append(ControlRef(framework: framework, id: control))
                    }
                }
            case "evidence":
                guard let value = string(entry.value, "evidence") else { valid = false; continue }
                operation = value
            case "each":
                guard let value = string(entry.value, "each") else { valid = false; continue }
                each = value == "@" ? [] : value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                if each?.contains(where: \.isEmpty) == true {
                    report(entry.value, "each '\(value)' is not a field path ('@' for an answer that is a list)", "invalid-path")
                    valid = false
                }
            case "resource":
                guard let value = string(entry.value, "resource"), validTemplate(value, entry.value, "resource") else {
                    valid = false
                    continue
                }
                resource = value
            case "applies", "pass":
                guard let value = string(entry.value, entry.key) else { valid = false; continue }
                do {
                    let parsed = try CheckExpression.parse(value)
                    if entry.key == "pass" { pass = (parsed, value) } else { applies = (parsed, value) }
                } catch {
                    reportExpression(entry.value, error, what: entry.key)
                    valid = false
                }
            default:
                unknownKey(entry.key, entry.keyNode, allowed: Self.checkKeys, in: "a check")
                valid = false
            }
        }
        for key in ["id", "title", "controls", "source"] where !entries.contains(where: { $0.key == key }) {
            report(node, "the check has no '\(key)'", "missing-key")
            valid = false
        }
        if entries.contains(where: { $0.key == "controls" }), controls.isEmpty, valid {
            report(node, "the check maps to no control", "missing-key")
            valid = false
        }
        let declarative = ["evidence", "each", "resource", "applies", "pass"].filter { key in entries.contains { $0.key == key } }
        var rule: Catalog.Rule?
        if !declarative.isEmpty {
            for key in ["evidence", "resource", "pass"] where !entries.contains(where: { $0.key == key }) {
                report(node, "a declarative check needs '\(key)' (it has \(declarative.joined(separator: ", ")))", "missing-key")
                valid = false
            }
            if let operation, let resource, let pass {
                rule = Catalog.Rule(operation: operation, each: each, resource: resource, applies: applies?.0, pass: pass.0,
                                    appliesText: applies?.1, passText: pass.1)
            }
        }
        guard valid, let id, let title, let source else { return nil }
        return Catalog.CheckSpec(id: id, title: title, description: description, severity: severity, remediation: remediation,
                                 controls: controls.sorted(), source: source, rule: rule, file: file)
    }

    /// An expression's error at its own line and column: the scalar's position plus the offset
    /// (and one for an opening quote).
    mutating func reportExpression(_ node: Node, _ error: CheckExpression.SyntaxError, what: String) {
        let mark = node.mark
        let quoted = node.scalar.map { $0.style == .singleQuoted || $0.style == .doubleQuoted } ?? false
        let column = (mark?.column ?? 1) + error.offset + (quoted ? 1 : 0)
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 1, column: column,
                                      message: "in '\(what)': \(error.message)", code: "invalid-expression"))
    }
}
