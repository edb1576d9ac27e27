import Foundation
import Yams

/// Loads pipeline definitions from YAML, collecting every problem with its position rather than
/// stopping at the first.
public struct DefinitionLoader: Sendable {
    public let vocabulary: Vocabulary

    public init(vocabulary: Vocabulary) {
        self.vocabulary = vocabulary
    }

    public struct Result: Sendable {
        public let definition: PipelineDefinition?
        public let diagnostics: [Diagnostic]
        public let source: String?
    }

    /// Definitions are small: anything larger is not one (and is not read).
    public static let maximumSize = 1 << 20

    /// Loads a file. A definition is returned only when there are no errors. With `within`, the
    /// file (after following links) must lie inside that folder. Only a regular file of at most
    /// `maximumSize` bytes is read.
    public func load(file path: String, within folder: String? = nil) -> Result {
        func refuse(_ message: String, _ code: String) -> Result {
            Result(definition: nil, diagnostics: [Diagnostic(file: path, line: 1, column: 1, message: message, code: code)],
                   source: nil)
        }
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        if let folder {
            let root = URL(fileURLWithPath: folder).resolvingSymlinksInPath().path
            guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
                return refuse("the file is a link to \(quotedForMessage(resolved)), outside \(folder): not read", "outside-folder")
            }
        }
        var info = stat()
        guard stat(resolved, &info) == 0 else { return refuse("no such file", "unreadable-file") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return refuse("not a regular file: not read", "not-a-file") }
        guard info.st_size <= Self.maximumSize else {
            return refuse("the file is \(info.st_size) bytes; a definition is at most \(Self.maximumSize)", "too-large")
        }
        guard let data = FileManager.default.contents(atPath: resolved) else {
            return refuse("cannot read the file", "unreadable-file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return Result(definition: nil, diagnostics: [Diagnostic(
                file: path, line: 1, column: 1, message: "the file is not UTF-8 text", code: "not-utf8")], source: nil)
        }
        let stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return load(text: text, file: path, expectedName: stem)
    }

    public func load(text: String, file: String, expectedName: String? = nil) -> Result {
        var walker = Walker(file: file, vocabulary: vocabulary)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            walker.syntaxError(error)
            return Result(definition: nil, diagnostics: walker.diagnostics, source: text)
        } catch {
            walker.report(nil, "cannot parse YAML: \(error)", "yaml-syntax")
            return Result(definition: nil, diagnostics: walker.diagnostics, source: text)
        }
        guard let root else {
            walker.report(nil, "the file is empty: a pipeline needs name, description and stages", "empty-document")
            return Result(definition: nil, diagnostics: walker.diagnostics, source: text)
        }
        let definition = walker.definition(root, expectedName: expectedName)
        let diagnostics = walker.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
        return Result(definition: diagnostics.hasErrors ? nil : definition, diagnostics: diagnostics, source: text)
    }
}

/// Walks the composed YAML node tree, building the model and recording diagnostics.
struct Walker {
    let file: String
    let vocabulary: Vocabulary
    var diagnostics: [Diagnostic] = []
    /// Names of the sources the definition declares.
    var declaredSources: Set<String> = []

    init(file: String, vocabulary: Vocabulary) {
        self.file = file
        self.vocabulary = vocabulary
    }

    mutating func report(_ node: Node?, _ message: String, _ code: String, severity: Diagnostic.Severity = .error) {
        let mark = node?.mark
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1,
                                      severity: severity, message: message, code: code))
    }

    mutating func syntaxError(_ error: YamlError) {
        func add(_ mark: Mark?, _ message: String, _ code: String, line: Int = 1) {
            diagnostics.append(Diagnostic(file: file, line: mark?.line ?? line, column: mark?.column ?? 1,
                                          message: message, code: code))
        }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            let prefix = context.map { "\($0.text) (line \($0.mark.line)): " } ?? ""
            add(mark, "invalid YAML: \(prefix)\(problem)", "yaml-syntax")
        case let .reader(problem, offset, _, yaml):
            let before = yaml.utf8.prefix(offset ?? 0)
            let line = before.filter { $0 == UInt8(ascii: "\n") }.count + 1
            add(nil, "invalid YAML input: \(problem)", "yaml-syntax", line: line)
        case let .duplicatedKeysInMapping(duplicates, context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            add(context.mark, "key \(names) appears more than once in the same mapping", "duplicate-key")
        default:
            add(nil, "cannot parse YAML: \(error)", "yaml-syntax")
        }
    }

    // MARK: Typed accessors

    mutating func mapping(_ node: Node, _ what: String) -> [(key: String, keyNode: Node, value: Node)]? {
        guard let mapping = node.mapping else {
            report(node, "\(what) must be a mapping of keys to values, found \(kindName(node))", "expected-mapping")
            return nil
        }
        var out: [(String, Node, Node)] = []
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                report(key, "keys in \(what) must be plain strings", "expected-string")
                continue
            }
            out.append((name, key, value))
        }
        return out.map { (key: $0.0, keyNode: $0.1, value: $0.2) }
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard let scalar = node.scalar, node.tag.description != Tag.Name.null.rawValue || scalar.style != .plain,
              !(scalar.style == .plain && ["~", "null", ""].contains(scalar.string)) else {
            report(node, "\(what) must be a string, found \(kindName(node))", "expected-string")
            return nil
        }
        return scalar.string
    }

    mutating func integer(_ node: Node, _ what: String, _ range: ClosedRange<Int>) -> Int? {
        guard let scalar = node.scalar, scalar.style == .plain, let value = Int(scalar.string) else {
            report(node, "\(what) must be a whole number, found \(kindName(node))", "expected-integer")
            return nil
        }
        guard range.contains(value) else {
            report(node, "\(what) must be between \(range.lowerBound) and \(range.upperBound), found \(value)", "out-of-range")
            return nil
        }
        return value
    }

    mutating func stringList(_ node: Node, _ what: String) -> [(String, Node)]? {
        guard let sequence = node.sequence else {
            report(node, "\(what) must be a list, found \(kindName(node))", "expected-sequence")
            return nil
        }
        if sequence.isEmpty {
            report(node, "\(what) must not be empty", "empty-list")
            return nil
        }
        var out: [(String, Node)] = []
        var seen = Set<String>()
        for item in sequence {
            guard let value = string(item, "each entry of \(what)") else { continue }
            if !seen.insert(value).inserted {
                report(item, "'\(value)' is listed twice in \(what)", "duplicate-entry")
                continue
            }
            out.append((value, item))
        }
        return out
    }

    /// A duration; with `positive`, zero is refused (a timeout of 0s would fail every request).
    mutating func duration(_ node: Node, _ what: String, positive: Bool = false) -> Duration? {
        guard let text = string(node, what) else { return nil }
        guard let value = parseDuration(text) else {
            report(node, "\(what) '\(text)' is not a duration: use a number with ms, s, m or h (e.g. 500ms, 30s, 5m)",
                   "invalid-duration")
            return nil
        }
        if positive, value <= .zero {
            report(node, "\(what) must be longer than 0, found '\(text)'", "zero-duration")
            return nil
        }
        return value
    }

    func kindName(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if scalar.style == .plain && ["~", "null", ""].contains(scalar.string) { return "nothing (null)" }
            return "'\(scalar.string)'"
        }
    }

    /// Whether `value` is a well-formed `{placeholder}` template; reports it at `node` when not.
    mutating func validTemplate(_ value: String, _ node: Node, _ what: String) -> Bool {
        guard case .failure(let problem) = HTTPSourceDefinition.placeholders(value) else { return true }
        report(node, "\(what) '\(value)': \(problem.message)", "invalid-template")
        return false
    }

    mutating func unknownKey(_ key: String, _ node: Node, allowed: [String], in what: String) {
        let hint = closest(key, in: allowed).map { "; did you mean '\($0)'?" } ?? ""
        report(node, "unknown key '\(key)' in \(what)\(hint) (allowed: \(allowed.joined(separator: ", ")))", "unknown-key")
    }

    mutating func unknownValue(_ value: String, _ node: Node, allowed: [String], what: String, code: String) {
        let hint = closest(value, in: allowed).map { "; did you mean '\($0)'?" } ?? ""
        report(node, "unknown \(what) '\(value)'\(hint) (known: \(allowed.sorted().joined(separator: ", ")))", code)
    }

    // MARK: The document

    mutating func definition(_ root: Node, expectedName: String?) -> PipelineDefinition? {
        guard let entries = mapping(root, "a pipeline definition") else { return nil }
        let allowed = ["name", "description", "schedule", "sources", "stages"]
        var name: String?
        var description: String?
        var schedule: CronSchedule?
        var stages: [PipelineDefinition.Stage] = []
        var httpSources: [HTTPSourceDefinition] = []
        var sawStages = false
        // Declared sources first: the collect stage may name them wherever they are written.
        if let declared = entries.first(where: { $0.key == "sources" }) {
            httpSources = self.httpSources(declared.value)
        }
        for entry in entries {
            switch entry.key {
            case "name":
                guard let value = string(entry.value, "name") else { continue }
                if !isValidPipelineName(value) {
                    report(entry.value, "pipeline name '\(value)' must be lowercase letters, digits, '-' or '_', starting with a letter",
                           "invalid-name")
                } else if let expectedName, value != expectedName {
                    report(entry.value, "pipeline name '\(value)' differs from its file name '\(expectedName)': `pipeline run` finds a pipeline by its file",
                           "name-mismatch")
                }
                name = value
            case "description":
                description = string(entry.value, "description")
            case "schedule":
                if entry.value.scalar.map({ $0.style == .plain && ["~", "null"].contains($0.string) }) == true { continue }
                guard let text = string(entry.value, "schedule") else { continue }
                do {
                    schedule = try CronSchedule(text)
                } catch {
                    report(entry.value, "schedule '\(text)' is not a cron expression: \(error.message)", "invalid-cron")
                }
            case "stages":
                sawStages = true
                stages = self.stages(entry.value)
            case "sources":
                continue
            default:
                unknownKey(entry.key, entry.keyNode, allowed: allowed, in: "the pipeline")
            }
        }
        if name == nil, !entries.contains(where: { $0.key == "name" }) {
            report(root, "the pipeline has no 'name'", "missing-key")
        }
        if description == nil, !entries.contains(where: { $0.key == "description" }) {
            report(root, "the pipeline has no 'description'", "missing-key")
        }
        if !sawStages {
            report(root, "the pipeline has no 'stages'", "missing-key")
        }
        guard let name, let description else { return nil }
        return PipelineDefinition(name: name, description: description, schedule: schedule, stages: stages,
                                  httpSources: httpSources, file: file)
    }

    // MARK: Declared sources

    mutating func httpSources(_ node: Node) -> [HTTPSourceDefinition] {
        guard let sequence = node.sequence else {
            report(node, "sources must be a list of source declarations, found \(kindName(node))", "expected-sequence")
            return []
        }
        var out: [HTTPSourceDefinition] = []
        for item in sequence {
            guard let entries = mapping(item, "a source declaration") else { continue }
            let allowed = ["name", "type", "auth", "requests"]
            var name: String?
            var auth = HTTPSourceDefinition.Auth.none
            var requests: [HTTPSourceDefinition.Request] = []
            var valid = true
            for entry in entries {
                switch entry.key {
                case "name":
                    guard let value = string(entry.value, "a source's name") else { valid = false; continue }
                    if !isValidPipelineName(value) || value.contains("-") {
                        report(entry.value, "source name '\(value)' must be lowercase letters, digits and '_', starting with a letter", "invalid-name")
                        valid = false
                    } else if vocabulary.sources.contains(value) {
                        report(entry.value, "source name '\(value)' is a built-in source's; choose another", "duplicate-source")
                        valid = false
                    } else if declaredSources.contains(value) {
                        report(entry.value, "source '\(value)' is declared twice", "duplicate-source")
                        valid = false
                    } else {
                        declaredSources.insert(value)
                    }
                    name = value
                case "type":
                    guard let value = string(entry.value, "a source's type") else { valid = false; continue }
                    if value != "http" {
                        unknownValue(value, entry.value, allowed: ["http"], what: "source type", code: "unknown-source-type")
                        valid = false
                    }
                case "auth":
                    if let value = httpAuth(entry.value) { auth = value } else { valid = false }
                case "requests":
                    guard let list = entry.value.sequence, !list.isEmpty else {
                        report(entry.value, "requests must be a non-empty list, found \(kindName(entry.value))", "expected-sequence")
                        valid = false
                        continue
                    }
                    var operations = Set<String>()
                    for requestNode in list {
                        guard let request = httpRequest(requestNode) else { valid = false; continue }
                        if !operations.insert(request.operation).inserted {
                            report(requestNode, "operation '\(request.operation)' appears twice in this source", "duplicate-entry")
                            valid = false
                        }
                        requests.append(request)
                    }
                default:
                    unknownKey(entry.key, entry.keyNode, allowed: allowed, in: "a source declaration")
                    valid = false
                }
            }
            for key in ["name", "type", "requests"] where !entries.contains(where: { $0.key == key }) {
                report(item, "the source declaration has no '\(key)'", "missing-key")
                valid = false
            }
            if valid, let name { out.append(HTTPSourceDefinition(name: name, auth: auth, requests: requests)) }
        }
        return out
    }

    mutating func httpAuth(_ node: Node) -> HTTPSourceDefinition.Auth? {
        if let scalar = node.scalar {
            switch scalar.string {
            case "none": return HTTPSourceDefinition.Auth.none
            case "bearer": return .bearer
            case "basic": return .basic
            default:
                unknownValue(scalar.string, node, allowed: ["none", "bearer", "basic", "header"], what: "auth", code: "unknown-auth")
                return nil
            }
        }
        guard let entries = mapping(node, "auth") else { return nil }
        var header: String?
        var prefix = ""
        var valid = true
        for entry in entries {
            switch entry.key {
            case "header":
                guard let value = string(entry.value, "auth header") else { valid = false; continue }
                let token = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~").union(.alphanumerics)
                guard !value.isEmpty, value.unicodeScalars.allSatisfy({ $0.isASCII && token.contains($0) }) else {
                    report(entry.value, "auth header '\(value)' is not an HTTP header name", "invalid-header")
                    valid = false
                    continue
                }
                header = value
            case "prefix":
                guard let value = string(entry.value, "auth prefix") else { valid = false; continue }
                guard value.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) else {
                    report(entry.value, "auth prefix must be printable ASCII", "invalid-header")
                    valid = false
                    continue
                }
                prefix = value
            default:
                unknownKey(entry.key, entry.keyNode, allowed: ["header", "prefix"], in: "auth (or use bearer, basic or none)")
                valid = false
            }
        }
        guard let header else {
            if valid { report(node, "auth as a mapping needs 'header' (the header carrying the secret)", "missing-key") }
            return nil
        }
        return valid ? .header(name: header, prefix: prefix) : nil
    }

    mutating func httpRequest(_ node: Node) -> HTTPSourceDefinition.Request? {
        guard let entries = mapping(node, "a request") else { return nil }
        let allowed = ["operation", "path", "pagination", "each", "resource", "fields"]
        var operation: String?
        var path: String?
        var pagination = HTTPSourceDefinition.Pagination.none
        var items: FieldPath?
        var resource: String?
        var fields: [FieldPath] = []
        var valid = true
        for entry in entries {
            switch entry.key {
            case "operation":
                guard let value = string(entry.value, "operation") else { valid = false; continue }
                guard !value.isEmpty, value.count <= 100,
                      value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_/.?=&".contains($0)) }) else {
                    report(entry.value, "operation '\(value)' must be letters, digits and - _ / . ? = & (at most 100)", "invalid-operation")
                    valid = false
                    continue
                }
                operation = value
            case "path":
                guard let value = string(entry.value, "path") else { valid = false; continue }
                guard value.hasPrefix("/"), !value.contains("://"), !value.contains(" "), !value.contains("#") else {
                    report(entry.value, "path '\(value)' must start with '/' under the integration's base URL (no scheme, host, spaces or fragment)",
                           "invalid-path")
                    valid = false
                    continue
                }
                guard validTemplate(value, entry.value, "path") else { valid = false; continue }
                path = value
            case "pagination":
                if let value = httpPagination(entry.value) { pagination = value } else { valid = false }
            case "each":
                guard let value = string(entry.value, "each") else { valid = false; continue }
                items = FieldPath(value)
            case "resource":
                guard let value = string(entry.value, "resource"), validTemplate(value, entry.value, "resource") else {
                    valid = false
                    continue
                }
                resource = value
            case "fields":
                guard let list = stringList(entry.value, "fields") else { valid = false; continue }
                fields = list.map { FieldPath($0.0) }
            default:
                unknownKey(entry.key, entry.keyNode, allowed: allowed, in: "a request")
                valid = false
            }
        }
        for key in ["operation", "path"] where !entries.contains(where: { $0.key == key }) {
            report(node, "the request has no '\(key)'", "missing-key")
            valid = false
        }
        if items == nil, let entry = entries.first(where: { $0.key == "resource" || $0.key == "fields" }) {
            report(entry.keyNode, "'\(entry.key)' applies to each item: name the list with 'each'", "missing-key")
            valid = false
        }
        if items != nil, resource == nil {
            report(node, "a request with 'each' needs 'resource' (each item's name, as \"{id}\")", "missing-key")
            valid = false
        }
        if case .page = pagination, items == nil {
            report(node, "page-number pagination ends at a page without items: name the list with 'each'", "missing-key")
            valid = false
        }
        guard valid, let operation, let path else { return nil }
        return HTTPSourceDefinition.Request(operation: operation, path: path, pagination: pagination, items: items,
                                            resource: resource, fields: fields)
    }

    mutating func httpPagination(_ node: Node) -> HTTPSourceDefinition.Pagination? {
        if let scalar = node.scalar {
            switch scalar.string {
            case "none": return HTTPSourceDefinition.Pagination.none
            case "link": return .link
            default:
                unknownValue(scalar.string, node, allowed: ["none", "link", "next_token", "page"], what: "pagination",
                             code: "unknown-pagination")
                return nil
            }
        }
        guard let entries = mapping(node, "pagination") else { return nil }
        var type: String?
        var field: String?
        var parameter: String?
        var start = 1
        var valid = true
        for entry in entries {
            switch entry.key {
            case "type":
                guard let value = string(entry.value, "pagination type") else { valid = false; continue }
                guard ["link", "next_token", "page"].contains(value) else {
                    unknownValue(value, entry.value, allowed: ["link", "next_token", "page"], what: "pagination", code: "unknown-pagination")
                    valid = false
                    continue
                }
                type = value
            case "field": field = string(entry.value, "pagination field")
            case "parameter":
                guard let value = string(entry.value, "pagination parameter") else { valid = false; continue }
                guard !value.isEmpty, value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.[]".contains($0)) }) else {
                    report(entry.value, "pagination parameter '\(value)' is not a query parameter name", "invalid-parameter")
                    valid = false
                    continue
                }
                parameter = value
            case "start":
                if let value = integer(entry.value, "pagination start", 0...1) { start = value } else { valid = false }
            default:
                unknownKey(entry.key, entry.keyNode, allowed: ["type", "field", "parameter", "start"], in: "pagination")
                valid = false
            }
        }
        guard valid else { return nil }
        switch type {
        case "link"?:
            return .link
        case "next_token"?:
            guard let field, let parameter else {
                report(node, "next_token pagination needs 'field' (where the token is in the body) and 'parameter' (the query parameter that sends it)",
                       "missing-key")
                return nil
            }
            return .nextToken(field: FieldPath(field), parameter: parameter)
        case "page"?:
            guard let parameter else {
                report(node, "page pagination needs 'parameter' (the query parameter of the page number)", "missing-key")
                return nil
            }
            return .page(parameter: parameter, start: start)
        default:
            report(node, "pagination needs 'type': link, next_token or page", "missing-key")
            return nil
        }
    }

    mutating func stages(_ node: Node) -> [PipelineDefinition.Stage] {
        guard let sequence = node.sequence else {
            report(node, "stages must be a list, found \(kindName(node))", "expected-sequence")
            return []
        }
        if sequence.isEmpty {
            report(node, "stages must not be empty", "empty-list")
            return []
        }
        var stages: [(PipelineDefinition.Stage, Node)] = []
        for item in sequence {
            guard let entries = mapping(item, "a stage") else { continue }
            guard let typeEntry = entries.first(where: { $0.key == "type" }) else {
                report(item, "the stage has no 'type' (one of \(StageKind.allCases.map(\.rawValue).joined(separator: ", ")))",
                       "missing-key")
                continue
            }
            guard let typeName = string(typeEntry.value, "type") else { continue }
            guard let kind = StageKind(rawValue: typeName) else {
                unknownValue(typeName, typeEntry.value, allowed: StageKind.allCases.map(\.rawValue),
                             what: "stage type", code: "unknown-stage")
                continue
            }
            let options = entries.filter { $0.key != "type" }
            if let stage = self.stage(kind, options, item) {
                if let previous = stages.first(where: { $0.0.kind == kind }) {
                    report(typeEntry.value, "stage '\(kind.rawValue)' appears twice (first at line \(previous.1.mark?.line ?? 0))",
                           "duplicate-stage")
                    continue
                }
                if let later = stages.last, later.0.kind > kind {
                    report(typeEntry.value, "stage '\(kind.rawValue)' must come before '\(later.0.kind.rawValue)': stages run in the order \(StageKind.allCases.map(\.rawValue).joined(separator: ", "))",
                           "stage-order")
                }
                stages.append((stage, typeEntry.value))
            }
        }
        let kinds = Set(stages.map { $0.0.kind })
        let requirements: [(StageKind, StageKind)] = [(.validate, .collect), (.store, .collect), (.score, .validate), (.render, .score),
                                                    (.render, .store)]
        for (stage, needed) in requirements where kinds.contains(stage) && !kinds.contains(needed) {
            let node = stages.first { $0.0.kind == stage }?.1
            report(node, "stage '\(stage.rawValue)' needs a '\(needed.rawValue)' stage before it", "missing-stage")
        }
        if let validate = stages.first(where: { $0.0.kind == .validate }),
           let score = stages.first(where: { $0.0.kind == .score }),
           case .validate(let v) = validate.0, case .score(let s) = score.0 {
            for framework in s.frameworks where !v.frameworks.contains(framework) {
                report(score.1, "stage 'score' scores framework '\(framework)' that 'validate' does not check", "framework-not-validated")
            }
        }
        return stages.map(\.0)
    }

    mutating func stage(_ kind: StageKind, _ entries: [(key: String, keyNode: Node, value: Node)],
                        _ node: Node) -> PipelineDefinition.Stage? {
        var valid = true
        func required(_ key: String) -> Node? {
            entries.first { $0.key == key }?.value
        }
        switch kind {
        case .collect:
            let allowed = ["sources", "concurrency", "source_concurrency", "timeout", "retry", "fresh_for"]
            var options = CollectOptions(sources: [])
            guard let sourcesNode = required("sources") else {
                report(node, "stage 'collect' has no 'sources'", "missing-key")
                return nil
            }
            for entry in entries {
                switch entry.key {
                case "sources":
                    guard let list = stringList(entry.value, "sources") else { valid = false; continue }
                    for (source, item) in list where !vocabulary.sources.contains(source) && !declaredSources.contains(source) {
                        unknownValue(source, item, allowed: Array(vocabulary.sources.union(declaredSources)), what: "source", code: "unknown-source")
                        valid = false
                    }
                    options.sources = list.map(\.0)
                case "concurrency":
                    if let v = integer(entry.value, "concurrency", 1...256) { options.concurrency = v } else { valid = false }
                case "source_concurrency":
                    if let v = integer(entry.value, "source_concurrency", 1...64) { options.sourceConcurrency = v } else { valid = false }
                case "timeout":
                    if let v = duration(entry.value, "timeout", positive: true) { options.timeout = v } else { valid = false }
                case "fresh_for":
                    if let v = duration(entry.value, "fresh_for", positive: true) { options.freshFor = v } else { valid = false }
                case "retry":
                    if let v = retry(entry.value) { options.retry = v } else { valid = false }
                default:
                    unknownKey(entry.key, entry.keyNode, allowed: allowed, in: "stage 'collect'")
                    valid = false
                }
            }
            _ = sourcesNode
            return valid ? .collect(options) : nil
        case .validate, .score:
            var frameworks: [String]? = nil
            var manualControls = false
            for entry in entries {
                switch entry.key {
                case "frameworks":
                    guard let list = stringList(entry.value, "frameworks") else { valid = false; continue }
                    for (framework, item) in list where !vocabulary.frameworks.contains(framework) {
                        unknownValue(framework, item, allowed: Array(vocabulary.frameworks), what: "framework",
                                     code: "unknown-framework")
                        valid = false
                    }
                    frameworks = list.map(\.0)
                case "manual_controls" where kind == .validate:
                    guard let scalar = entry.value.scalar, ["true", "false"].contains(scalar.string) else {
                        report(entry.value, "manual_controls must be true or false, found \(kindName(entry.value))", "expected-boolean")
                        valid = false
                        continue
                    }
                    manualControls = scalar.string == "true"
                default:
                    unknownKey(entry.key, entry.keyNode, allowed: kind == .validate ? ["frameworks", "manual_controls"] : ["frameworks"],
                               in: "stage '\(kind.rawValue)'")
                    valid = false
                }
            }
            guard let frameworks else {
                if valid { report(node, "stage '\(kind.rawValue)' has no 'frameworks'", "missing-key") }
                return nil
            }
            guard valid else { return nil }
            return kind == .validate ? .validate(ValidateOptions(frameworks: frameworks, manualControls: manualControls))
                : .score(ScoreOptions(frameworks: frameworks))
        case .store:
            var options = StoreOptions()
            for entry in entries {
                switch entry.key {
                case "batch_size":
                    if let v = integer(entry.value, "batch_size", 1...100_000) { options.batchSize = v } else { valid = false }
                default:
                    unknownKey(entry.key, entry.keyNode, allowed: ["batch_size"], in: "stage 'store'")
                    valid = false
                }
            }
            return valid ? .store(options) : nil
        case .render:
            let allowed = ["outputs", "period_days", "title"]
            var options = RenderOptions(outputs: [])
            guard required("outputs") != nil else {
                report(node, "stage 'render' has no 'outputs'", "missing-key")
                return nil
            }
            for entry in entries {
                switch entry.key {
                case "outputs":
                    guard let list = stringList(entry.value, "outputs") else { valid = false; continue }
                    for (output, item) in list {
                        if let value = RenderOptions.Output(rawValue: output) {
                            options.outputs.append(value)
                        } else {
                            unknownValue(output, item, allowed: RenderOptions.Output.allCases.map(\.rawValue),
                                         what: "output", code: "unknown-output")
                            valid = false
                        }
                    }
                case "period_days":
                    if let v = integer(entry.value, "period_days", 1...3660) { options.periodDays = v } else { valid = false }
                case "title":
                    if let v = string(entry.value, "title") { options.title = v } else { valid = false }
                default:
                    unknownKey(entry.key, entry.keyNode, allowed: allowed, in: "stage 'render'")
                    valid = false
                }
            }
            return valid ? .render(options) : nil
        case .notify:
            return notify(entries, node)
        }
    }

    mutating func notify(_ entries: [(key: String, keyNode: Node, value: Node)], _ node: Node) -> PipelineDefinition.Stage? {
        var options = NotifyOptions()
        var valid = true
        func variable(_ value: Node, _ what: String) -> String? {
            guard let name = string(value, what) else { return nil }
            guard name.range(of: "^[A-Z_][A-Z0-9_]{0,127}$", options: .regularExpression) != nil else {
                report(value, "\(what) must name an environment variable (A-Z, 0-9, _), found '\(name)'", "invalid-variable")
                return nil
            }
            return name
        }
        func address(_ value: Node, _ what: String) -> String? {
            guard let text = string(value, what) else { return nil }
            guard text.range(of: "^[^@\\s<>,;\"]+@[^@\\s<>,;\"]+\\.[^@\\s<>,;\"]+$", options: .regularExpression) != nil else {
                report(value, "\(what) '\(text)' is not an email address", "invalid-address")
                return nil
            }
            return text
        }
        for entry in entries {
            switch entry.key {
            case "on":
                guard let list = stringList(entry.value, "on") else { valid = false; continue }
                options.on = []
                for (name, item) in list {
                    if let event = NotifyOptions.Event(rawValue: name) {
                        options.on.append(event)
                    } else {
                        unknownValue(name, item, allowed: NotifyOptions.Event.allCases.map(\.rawValue), what: "event", code: "unknown-event")
                        valid = false
                    }
                }
            case "webhook":
                guard let fields = mapping(entry.value, "webhook") else { valid = false; continue }
                var url: String?
                var secret: String?
                var named = false
                for field in fields {
                    switch field.key {
                    case "url_env":
                        named = true
                        url = variable(field.value, "url_env")
                    case "secret_env": secret = variable(field.value, "secret_env")
                    default:
                        unknownKey(field.key, field.keyNode, allowed: ["url_env", "secret_env"], in: "webhook")
                        valid = false
                    }
                }
                guard let url else {
                    if !named { report(entry.value, "webhook has no 'url_env' (the environment variable holding its URL)", "missing-key") }
                    valid = false
                    continue
                }
                options.webhook = .init(urlVariable: url, secretVariable: secret)
            case "email":
                guard let fields = mapping(entry.value, "email") else { valid = false; continue }
                var server: String?
                var from: String?
                var to: [String] = []
                for field in fields {
                    switch field.key {
                    case "server_env": server = variable(field.value, "server_env")
                    case "from": from = address(field.value, "from")
                    case "to":
                        guard let list = stringList(field.value, "to") else { valid = false; continue }
                        for (_, item) in list {
                            if let one = address(item, "to") { to.append(one) } else { valid = false }
                        }
                    default:
                        unknownKey(field.key, field.keyNode, allowed: ["server_env", "from", "to"], in: "email")
                        valid = false
                    }
                }
                guard let server, let from, !to.isEmpty else {
                    if valid { report(entry.value, "email needs 'server_env', 'from' and at least one 'to'", "missing-key") }
                    valid = false
                    continue
                }
                options.email = .init(serverVariable: server, from: from, to: to)
            default:
                unknownKey(entry.key, entry.keyNode, allowed: ["on", "webhook", "email"], in: "stage 'notify'")
                valid = false
            }
        }
        if valid, options.webhook == nil, options.email == nil {
            report(node, "stage 'notify' names neither a 'webhook' nor an 'email'", "missing-key")
            return nil
        }
        return valid ? .notify(options) : nil
    }

    mutating func retry(_ node: Node) -> RetryPolicy? {
        guard let entries = mapping(node, "retry") else { return nil }
        var policy = RetryPolicy()
        var valid = true
        for entry in entries {
            switch entry.key {
            case "attempts":
                if let v = integer(entry.value, "retry attempts", 1...20) { policy.maxAttempts = v } else { valid = false }
            case "backoff":
                if let v = duration(entry.value, "retry backoff") { policy.initialBackoff = v } else { valid = false }
            case "max_backoff":
                if let v = duration(entry.value, "retry max_backoff") { policy.maxBackoff = v } else { valid = false }
            default:
                unknownKey(entry.key, entry.keyNode, allowed: ["attempts", "backoff", "max_backoff"], in: "retry")
                valid = false
            }
        }
        if valid, policy.maxBackoff < policy.initialBackoff {
            report(node, "retry max_backoff is shorter than backoff", "out-of-range")
            valid = false
        }
        return valid ? policy : nil
    }
}

func isValidPipelineName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, ("a"..."z").contains(first), name.count <= 64 else { return false }
    return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }
}

/// `500ms`, `30s`, `5m`, `2h`, `1d`.
public func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        let number = text.dropLast(suffix.count)
        // "5ms" also ends in "s": take the longest suffix whose number part parses.
        guard let value = Int64(number), value >= 0, value <= 10_000_000 else { continue }
        return .milliseconds(value * factor)
    }
    return nil
}

/// The allowed word nearest to a misspelling, if any is close (edit distance ≤ 2).
public func closest(_ word: String, in candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
    let a = Array(word.lowercased())
    return candidates.map { ($0, distance(a, Array($0))) }.filter { $0.1 <= 2 }.min { $0.1 < $1.1 }?.0
}
