import Foundation
import Pipeline
import Testing

let vocabulary = Vocabulary(sources: ["github", "aws"], frameworks: ["soc2", "iso27001"])

func load(_ yaml: String, name: String? = "report") -> DefinitionLoader.Result {
    DefinitionLoader(vocabulary: vocabulary).load(text: yaml, file: "pipelines/report.yml", expectedName: name)
}

let validDefinition = """
name: report
description: A report.
schedule: "0 2 * * 1-5"
stages:
  - type: collect
    sources: [github]
    concurrency: 3
    timeout: 5s
    retry:
      attempts: 4
      backoff: 100ms
      max_backoff: 2s
  - type: validate
    frameworks: [soc2, iso27001]
  - type: store
    batch_size: 10
  - type: score
    frameworks: [soc2]
  - type: render
    outputs: [pdf, bundle]
    period_days: 30
"""

@Suite struct DefinitionLoaderTests {
    @Test func aValidDefinitionLoadsWithEveryOption() throws {
        let result = load(validDefinition)
        #expect(result.diagnostics.isEmpty)
        let definition = try #require(result.definition)
        #expect(definition.name == "report")
        #expect(definition.stages.map(\.kind) == [.collect, .validate, .store, .score, .render])
        let collect = try #require(definition.collect)
        #expect(collect.sources == ["github"])
        #expect(collect.concurrency == 3)
        #expect(collect.timeout == .seconds(5))
        #expect(collect.retry.maxAttempts == 4)
        #expect(collect.retry.initialBackoff == .milliseconds(100))
        #expect(definition.store?.batchSize == 10)
        #expect(definition.render?.outputs == [.pdf, .bundle])
        #expect(definition.render?.periodDays == 30)
        #expect(definition.schedule?.expression == "0 2 * * 1-5")
    }

    /// Each malformed definition, the diagnostic code expected, and where.
    static let malformed: [(String, String, String, Int, Int)] = [
        ("syntax error", "name: report\nstages: [collect\n", "yaml-syntax", 3, 1),
        ("empty file", "", "empty-document", 1, 1),
        ("top level is a list", "- name: report\n", "expected-mapping", 1, 1),
        ("missing stages", "name: report\ndescription: d\n", "missing-key", 1, 1),
        ("unknown top-level key", "name: report\ndescription: d\nstage: []\nstages:\n  - type: collect\n    sources: [github]\n",
         "unknown-key", 3, 1),
        ("unknown stage type", "name: report\ndescription: d\nstages:\n  - type: colect\n    sources: [github]\n",
         "unknown-stage", 4, 11),
        ("unknown source", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github, gitlab]\n",
         "unknown-source", 5, 23),
        ("unknown framework", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n  - type: validate\n    frameworks: [soc3]\n",
         "unknown-framework", 7, 18),
        ("bad duration", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n    timeout: 30 seconds\n",
         "invalid-duration", 6, 14),
        ("concurrency out of range", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n    concurrency: 0\n",
         "out-of-range", 6, 18),
        ("concurrency not a number", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n    concurrency: many\n",
         "expected-integer", 6, 18),
        ("stages out of order", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n  - type: store\n  - type: validate\n    frameworks: [soc2]\n",
         "stage-order", 7, 11),
        ("duplicate stage", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n  - type: collect\n    sources: [github]\n",
         "duplicate-stage", 6, 11),
        ("render without score", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n  - type: render\n    outputs: [pdf]\n",
         "missing-stage", 6, 11),
        ("bad cron", "name: report\ndescription: d\nschedule: \"61 * * * *\"\nstages:\n  - type: collect\n    sources: [github]\n",
         "invalid-cron", 3, 11),
        ("duplicate key", "name: report\nname: other\ndescription: d\nstages: []\n", "duplicate-key", 1, 1),
        ("name differs from file", "name: nightly\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n",
         "name-mismatch", 1, 7),
        ("unknown output", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n  - type: validate\n    frameworks: [soc2]\n  - type: score\n    frameworks: [soc2]\n  - type: render\n    outputs: [pdf, docx]\n",
         "unknown-output", 11, 20),
        ("stage without type", "name: report\ndescription: d\nstages:\n  - sources: [github]\n", "missing-key", 4, 5),
        ("empty source list", "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: []\n", "empty-list", 5, 14),
    ]

    @Test(arguments: malformed.indices)
    func aMalformedDefinitionIsReportedWithItsCodeAndPosition(_ index: Int) {
        let (what, yaml, code, line, column) = Self.malformed[index]
        let result = load(yaml)
        #expect(result.definition == nil, "\(what): should not load")
        let match = result.diagnostics.first { $0.code == code }
        #expect(match != nil, "\(what): expected [\(code)], got \(result.diagnostics.map(\.description))")
        #expect(match?.line == line && match?.column == column,
                "\(what): expected \(line):\(column), got \(match.map { "\($0.line):\($0.column)" } ?? "none")")
        #expect(match?.description.hasPrefix("pipelines/report.yml:\(line):\(column): error: ") == true)
    }

    @Test func everyProblemIsReportedNotOnlyTheFirst() {
        let yaml = """
        name: report
        description: d
        colour: blue
        stages:
          - type: collect
            sources: [github, gitlab]
            timeout: soon
          - type: validate
            frameworks: [soc3]
        """
        let codes = load(yaml).diagnostics.map(\.code)
        #expect(codes == ["unknown-key", "unknown-source", "invalid-duration", "unknown-framework"])
    }

    @Test func aMisspelledKeyGetsASuggestion() {
        let yaml = "name: report\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n    concurency: 2\n"
        let diagnostic = load(yaml).diagnostics.first
        #expect(diagnostic?.message.contains("did you mean 'concurrency'?") == true)
    }

    @Test func aRenderedDiagnosticPointsAtTheColumn() {
        let yaml = "name: report\ndescription: d\nstages:\n  - type: colect\n"
        let result = load(yaml)
        let text = result.diagnostics[0].rendered(source: result.source)
        #expect(text.hasSuffix("  - type: colect\n            ^"))
    }

    @Test func theShippedDefinitionsAreClean() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let loader = DefinitionLoader(vocabulary: Vocabulary(sources: ["github", "aws", "google_workspace"],
                                                             frameworks: ["soc2", "iso27001"]))
        for name in ["report", "nightly"] {
            let result = loader.load(file: root.appendingPathComponent("pipelines/\(name).yml").path)
            #expect(result.diagnostics.isEmpty, "\(name): \(result.diagnostics)")
            #expect(result.definition?.name == name)
        }
    }

    @Test func durationsParseInEveryUnit() {
        #expect(parseDuration("250ms") == .milliseconds(250))
        #expect(parseDuration("30s") == .seconds(30))
        #expect(parseDuration("5m") == .seconds(300))
        #expect(parseDuration("2h") == .seconds(7200))
        #expect(parseDuration("1d") == .seconds(86_400))
        #expect(parseDuration("5") == nil)
        #expect(parseDuration("-5s") == nil)
        #expect(parseDuration("s") == nil)
    }
}

@Suite struct CronScheduleTests {
    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    @Test func aDailyScheduleFiresOnceADayAtItsTime() throws {
        let cron = try CronSchedule("0 2 * * *")
        #expect(cron.matches(date("2026-11-28T02:00:00Z")))
        #expect(!cron.matches(date("2026-11-28T02:01:00Z")))
        #expect(cron.next(after: date("2026-11-28T02:00:00Z")) == date("2026-11-29T02:00:00Z"))
    }

    @Test func rangesStepsListsAndNamesAreUnderstood() throws {
        let cron = try CronSchedule("*/15 9-17 * jan,jul mon-fri")
        #expect(cron.matches(date("2026-01-05T09:45:00Z")))  // a Monday
        #expect(!cron.matches(date("2026-01-04T09:45:00Z"))) // a Sunday
        #expect(!cron.matches(date("2026-02-02T09:45:00Z"))) // February
        #expect(!cron.matches(date("2026-01-05T09:50:00Z")))
    }

    @Test func dayOfMonthOrDayOfWeekMatchWhenBothAreRestricted() throws {
        let cron = try CronSchedule("0 0 1 * 0")
        #expect(cron.matches(date("2026-11-01T00:00:00Z")))  // the 1st
        #expect(cron.matches(date("2026-11-08T00:00:00Z")))  // a Sunday
        #expect(!cron.matches(date("2026-11-09T00:00:00Z")))
    }

    @Test func macrosExpand() throws {
        #expect(try CronSchedule("@hourly").matches(date("2026-11-28T13:00:00Z")))
        #expect(try CronSchedule("@weekly").matches(date("2026-11-29T00:00:00Z")))
    }

    @Test(arguments: ["* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "*/0 * * * *", "@often", "a * * * *"])
    func invalidExpressionsAreRefused(_ expression: String) {
        #expect(throws: CronSchedule.ParseError.self) { try CronSchedule(expression) }
    }
}

@Suite struct OrganizationIDTests {
    @Test(arguments: ["acme", "globex-2", "a", "0day"])
    func plainIDsAreAccepted(_ raw: String) throws {
        #expect(try OrganizationID(raw).rawValue == raw)
    }

    @Test(arguments: ["../x", "a/b", "", "ACME", "acme corp", "-acme", "acme-", "a'; DROP TABLE runs;--",
                      "acme\0", "ac\nme", String(repeating: "a", count: 64), "acmé", "."])
    func hostileIDsAreRefusedBeforeAnyUse(_ raw: String) {
        #expect(throws: PipelineError.self) { try OrganizationID(raw) }
    }

    @Test func theRefusalQuotesTheIDSafely() {
        do {
            _ = try OrganizationID("ev\u{1B}[31mil\n")
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("\"ev\\u{1B}[31mil\\n\""))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func objectKeysOutsideTheOrganizationAreRefused() throws {
        let acme = try OrganizationID("acme")
        #expect(throws: Never.self) { try validateObjectKey("acme/evidence/x/original.json", organization: acme) }
        for key in ["globex/evidence/x", "acme/../globex/x", "acme//x", "acme", "acme/./x", "/acme/x"] {
            #expect(throws: PipelineError.self, "\(key)") { try validateObjectKey(key, organization: acme) }
        }
    }
}

@Suite struct DefinitionFileSafetyTests {
    let loader = DefinitionLoader(vocabulary: Vocabulary(sources: ["github"], frameworks: ["soc2"]))
    let valid = "name: NAME\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n"

    func folder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("defs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func aLinkThatLeavesTheFolderIsRefusedByName() throws {
        let outside = try folder().appendingPathComponent("secret.yml")
        try valid.replacingOccurrences(of: "NAME", with: "secret").write(to: outside, atomically: true, encoding: .utf8)
        let pipelines = try folder()
        let link = pipelines.appendingPathComponent("report.yml")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: outside)
        let result = loader.load(file: link.path, within: pipelines.path)
        #expect(result.definition == nil)
        #expect(result.diagnostics.map(\.code) == ["outside-folder"])
        #expect(result.source == nil, "the file it points at is not read")
        // A link that stays inside the folder is followed.
        let inside = pipelines.appendingPathComponent("real.yml")
        try valid.replacingOccurrences(of: "NAME", with: "alias").write(to: inside, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(at: pipelines.appendingPathComponent("alias.yml"), withDestinationURL: inside)
        #expect(loader.load(file: pipelines.appendingPathComponent("alias.yml").path, within: pipelines.path).definition != nil)
    }

    @Test func whatIsNotARegularFileIsRefusedWithoutReadingIt() throws {
        let result = loader.load(file: "/dev/zero")
        #expect(result.diagnostics.map(\.code) == ["not-a-file"])
        let dir = try folder()
        #expect(loader.load(file: dir.path).diagnostics.map(\.code) == ["not-a-file"])
        let big = dir.appendingPathComponent("big.yml")
        try Data(count: DefinitionLoader.maximumSize + 1).write(to: big)
        #expect(loader.load(file: big.path).diagnostics.map(\.code) == ["too-large"])
    }

    @Test(arguments: ["0s", "0ms", "0m"])
    func aZeroTimeoutIsAnError(_ value: String) {
        let yaml = "name: quick\ndescription: d\nstages:\n  - type: collect\n    sources: [github]\n    timeout: \(value)\n"
        let result = loader.load(text: yaml, file: "quick.yml")
        #expect(result.definition == nil)
        #expect(result.diagnostics.first?.code == "zero-duration")
        #expect(result.diagnostics.first?.line == 6)
    }

    @Test func aDiagnosticShowsItsLineOnlyCutAroundTheColumn() {
        let long = String(repeating: "x", count: 5000)
        let source = "first line\n  key: \(long)BAD\(long)\nthird line"
        let diagnostic = Diagnostic(file: "f.yml", line: 2, column: 5008, message: "bad", code: "c")
        let rendered = diagnostic.rendered(source: source)
        let lines = rendered.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[1].count <= Diagnostic.snippetWidth + 4)
        #expect(lines[1].contains("BAD"))
        #expect(!rendered.contains("first line") && !rendered.contains("third line"))
        let caret = lines[2].firstIndex(of: "^").map { lines[2].distance(from: lines[2].startIndex, to: $0) }
        let bad = lines[1].range(of: "BAD").map { lines[1].distance(from: lines[1].startIndex, to: $0.lowerBound) }
        #expect(caret == bad)
        // Control characters in the line are not passed to the terminal.
        let escape = Diagnostic(file: "f.yml", line: 1, column: 1, message: "bad", code: "c").rendered(source: "\u{1B}[2Jwipe")
        #expect(!escape.contains("\u{1B}"))
    }
}
