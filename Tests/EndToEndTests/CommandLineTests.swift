import Foundation
import PipelineTesting
import Testing

/// Runs the built `pipeline` binary as a user would, on a fresh data directory holding the demo
/// organizations (imported from the shipped fixtures, as the README's first command does).
struct CLI {
    static let projectRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let binary: String = {
        if let explicit = ProcessInfo.processInfo.environment["PIPELINE_BIN"] { return explicit }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("pipeline")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside.path }
        return projectRoot.appendingPathComponent(".build/debug/pipeline").path
    }()

    let dataDir: URL

    /// The demo organizations most tests run: acme (mostly kept), globex (gaps), initech (every
    /// credential revoked). umbrella (everything kept) is exercised by `pipeline verify`.
    static let demo = ["fixtures/orgs/acme", "fixtures/orgs/globex", "fixtures/orgs/initech"]

    init(demo: Bool = true) throws {
        dataDir = try ExternalTool.temporaryDirectory()
        if demo {
            let imported = try run(["orgs", "import"] + CLI.demo)
            guard imported.status == 0 else { throw ToolFailure("orgs import", imported) }
        }
    }

    /// A definitions folder holding the shipped catalog and these definitions (file name → YAML).
    static func pipelinesFolder(_ definitions: [String: String]) throws -> URL {
        let folder = try ExternalTool.temporaryDirectory()
        for part in ["checks", "frameworks"] {
            try FileManager.default.copyItem(at: projectRoot.appendingPathComponent("pipelines/\(part)"),
                                             to: folder.appendingPathComponent(part))
        }
        for (name, text) in definitions {
            try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return folder
    }

    /// Connects the organization's GitHub integration to another recording.
    func replay(_ org: String, account: String, recording: URL) throws {
        let result = try run(["integrations", "add", "--org", org, "--kind", "github", "--account", account,
                              "--recording", recording.path])
        guard result.status == 0 else { throw ToolFailure("integrations add", result) }
    }

    @discardableResult
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ToolResult {
        try ExternalTool.run(CLI.binary, arguments, environment: ["LIGHTSAIL_DATA_DIR": dataDir.path].merging(environment) { _, b in b },
                             directory: CLI.projectRoot)
    }

    /// Runs SQL against the embedded database with Python's sqlite3 module.
    func sql(_ query: String) throws -> String {
        let script = "import sqlite3, sys\nfor row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]): print('|'.join(map(str, row)))"
        return try ExternalTool.run("python3", ["-c", script, dataDir.appendingPathComponent("lightsail.sqlite").path, query])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}


struct ToolFailure: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, _ result: ToolResult) { description = "\(what) exited \(result.status): \(result.stderr)" }
}

func line(_ output: String, _ prefix: String) -> String? {
    output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix(prefix) }
}

@Suite(.serialized) struct RunReportTests {
    @Test func theReportForAcmeIsAValidPDFAndAVerifiableBundle() throws {
        try ExternalTool.require("pdfinfo", "pdftotext", "unzip", "python3")
        let cli = try CLI()
        let result = try cli.run(["run", "report", "--org", "acme", "--as-of", "2026-11-28T00:00:00Z"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("acme: score 83% (iso27001 82%, soc2 84%)"))
        let pdf = try #require(line(result.stdout, "report:")?.dropFirst("report:".count).trimmingCharacters(in: .whitespaces))
        let zip = try #require(line(result.stdout, "bundle:")?.dropFirst("bundle:".count).trimmingCharacters(in: .whitespaces))
        #expect(pdf.hasPrefix(cli.dataDir.appendingPathComponent("objects/acme/exports/exp-").path))
        #expect(zip.hasSuffix(".zip"))

        let info = try ExternalTool.run("pdfinfo", [pdf])
        #expect(info.status == 0)
        #expect(info.stdout.contains("Title:           Compliance report: Acme Corp"))
        let text = try ExternalTool.run("pdftotext", ["-layout", pdf, "-"]).stdout
        for expected in ["Acme Corp", "83%", "Default branches require an approving review before merge",
                         "acme-corp/web: administrators bypass the protection", "acme-corp/infra: Dependabot alerts are off",
                         "A.8.32", "CC8.1", "The AWS root user has multi-factor authentication", "root: AccountMFAEnabled is 0",
                         "Every active Google Workspace user is enrolled in 2-step verification", "A.8.24", "CC7.2", "Page 1 of"] {
            #expect(text.contains(expected), "PDF lacks \(expected)")
        }

        #expect(try ExternalTool.run("unzip", ["-t", zip]).stdout.contains("No errors detected"))
        let verify = """
        import hashlib, json, sys, zipfile
        z = zipfile.ZipFile(sys.argv[1])
        m = json.loads(z.read("manifest.json"))
        bad = [f["path"] for f in m["files"] if hashlib.sha256(z.read(f["path"])).hexdigest() != f["sha256"] or len(z.read(f["path"])) != f["size"]]
        assert not bad, bad
        results = json.loads(z.read("results.json"))
        print(len(m["files"]), results["overall"], sorted({c["status"] for c in results["checks"]}))
        """
        let check = try ExternalTool.run("python3", ["-c", verify, zip])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout == "110 83% ['fail', 'not_applicable', 'not_verified', 'pass']\n")
    }

    @Test func aSecondRunAddsNoEvidenceRows() throws {
        try ExternalTool.require("python3")
        let cli = try CLI()
        #expect(try cli.run(["run", "report", "--org", "acme", "--quiet"]).status == 0)
        let first = try cli.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'")
        #expect(first == "52")  // 49 collected and the 3 documents imported with acme
        let again = try cli.run(["run", "report", "--org", "acme", "--quiet"])
        #expect(again.status == 0)
        #expect(line(again.stdout, "evidence:") == "evidence: 49 collected, 0 new, 0 not collected")
        #expect(try cli.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'") == first)
        #expect(try cli.sql("SELECT count(*) FROM runs WHERE status = 'succeeded' AND pipeline = 'report'") == "2")
        #expect(try cli.sql("SELECT count(DISTINCT organization_id) FROM evidence WHERE source <> 'upload'") == "1")
        #expect(try cli.sql("SELECT group_concat(source || ':' || n) FROM (SELECT source, count(*) n FROM evidence WHERE organization_id = 'acme' GROUP BY source ORDER BY source)")
                == "aws:29,github:16,google_workspace:4,upload:3")
    }

    @Test func theSameClockGivesByteIdenticalOutputsAcrossDataDirectories() throws {
        let a = try CLI()
        let b = try CLI()
        let args = ["run", "report", "--org", "globex", "--as-of", "2026-11-28T00:00:00Z", "--quiet"]
        // The same signing key (Ed25519 signs deterministically); different time zones.
        let key = Data(repeating: 7, count: 32).base64EncodedString()
        let first = try a.run(args, environment: ["TZ": "Asia/Tokyo", "LIGHTSAIL_SIGNING_KEY": key])
        let second = try b.run(args, environment: ["TZ": "America/Los_Angeles", "LIGHTSAIL_SIGNING_KEY": key])
        let firstZip = try #require(line(first.stdout, "bundle:")?.split(separator: " ").last.map(String.init))
        let secondZip = try #require(line(second.stdout, "bundle:")?.split(separator: " ").last.map(String.init))
        #expect((firstZip as NSString).lastPathComponent == (secondZip as NSString).lastPathComponent)
        #expect(FileManager.default.contents(atPath: firstZip) == FileManager.default.contents(atPath: secondZip))
    }

    /// Every organization runs to the end; initech's revoked token fails its GitHub integration,
    /// which the exit code and standard error say, while its report says every check is not verified.
    @Test func allOrganizationsRunAndARevokedTokenIsReported() throws {
        let cli = try CLI()
        let result = try cli.run(["run", "nightly", "--all-orgs", "--quiet", "--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let runs = try #require(object?["runs"] as? [[String: Any]])
        #expect(runs.compactMap { $0["organization_id"] as? String } == ["acme", "globex", "initech"])
        #expect(runs.allSatisfy { $0["status"] as? String == "succeeded" })
        #expect(runs.map { ($0["source_errors"] as? [String: String])?.keys.sorted() ?? [] } == [[], [], ["aws", "github", "google_workspace"]])
        let initech = try #require(runs.last?["checks"] as? [[String: Any]])
        #expect(initech.allSatisfy { $0["status"] as? String == "not_verified" })
        #expect(result.stderr.contains("pipeline: error: initech: the github integration failed: GitHub refused the credentials (HTTP 401) reading organization initech: the token is wrong, expired or revoked"))
        #expect(!result.stderr.contains("pipeline: error: acme") && !result.stderr.contains("pipeline: error: globex"))
    }

    /// globex's recording is cut in half: globex's GitHub integration fails, naming the file, and
    /// its report says why nothing was verified; acme and initech are untouched by it.
    @Test func withSeveralOrganizationsOneFailingDoesNotStopTheOthers() throws {
        let cli = try CLI()
        let recording = try ExternalTool.temporaryDirectory().appendingPathComponent("globex.jsonl")
        let data = try Data(contentsOf: CLI.projectRoot.appendingPathComponent("fixtures/orgs/globex/github.jsonl"))
        try data.prefix(data.count / 2).write(to: recording)
        try cli.replay("globex", account: "globex", recording: recording)
        let result = try cli.run(["run", "nightly", "--all-orgs", "--quiet", "--json"])
        #expect(result.status == 1)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let runs = try #require(object?["runs"] as? [[String: Any]])
        let errors = Dictionary(uniqueKeysWithValues: runs.map {
            ($0["organization_id"] as? String ?? "?", ($0["source_errors"] as? [String: String]) ?? [:])
        })
        #expect(errors["acme"] == [:])
        #expect(errors["globex"]?["github"]?.contains("\(recording.path):") == true)
        #expect(result.stderr.contains("pipeline: error: globex: the github integration failed: \(recording.path):"))
        #expect(try cli.sql("SELECT DISTINCT status FROM check_results WHERE organization_id = 'globex' AND check_id LIKE 'github.%'") == "not_verified")
        #expect(try cli.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'") == "52")
    }
}

@Suite struct BadInputTests {
    @Test(arguments: ["../x", "a/b", "ACME", "acme;drop", ""])
    func aHostileOrganizationIDIsRefusedBeforeAnyUse(_ id: String) throws {
        let cli = try CLI(demo: false)
        let result = try cli.run(["run", "report", "--org", id])
        #expect(result.status == 2)
        #expect(result.stderr.contains("is not valid"))
        #expect(!FileManager.default.fileExists(atPath: cli.dataDir.appendingPathComponent("lightsail.sqlite").path))
    }

    @Test func anUnknownOrganizationIsNamed() throws {
        let result = try CLI().run(["run", "report", "--org", "umbrella"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("unknown organization 'umbrella'"))
        #expect(result.stderr.contains("known: acme, globex, initech"))
    }

    @Test func anUnknownPipelineIsNamed() throws {
        let result = try CLI().run(["run", "audit", "--org", "acme"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("unknown pipeline 'audit'"))
    }

    @Test func neitherOrgNorAllOrgsIsAUsageError() throws {
        let result = try CLI().run(["run", "report"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--org"))
    }

    @Test func aMalformedDefinitionRunsNothingAndSaysWhere() throws {
        let cli = try CLI()
        let file = cli.dataDir.appendingPathComponent("broken.yml")
        try "name: broken\ndescription: d\nstages:\n  - type: collect\n    sources: [gitlab]\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try cli.run(["run", file.path, "--org", "acme"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("broken.yml:5:15: error: unknown source 'gitlab'"))
        #expect(result.stderr.contains("nothing was run"))
        #expect(!FileManager.default.fileExists(atPath: cli.dataDir.appendingPathComponent("objects/acme/exports").path))
    }

    @Test func aCorruptFixtureFailsNamingTheFileAndLosesNothingStored() throws {
        try ExternalTool.require("python3")
        let cli = try CLI()
        // A first good run stores evidence and an export.
        #expect(try cli.run(["run", "report", "--org", "acme", "--quiet"]).status == 0)
        let before = try cli.sql("SELECT count(*) FROM evidence")
        let exports = try FileManager.default.contentsOfDirectory(atPath: cli.dataDir.appendingPathComponent("objects/acme/exports").path)
        // Then the recording is truncated mid-body.
        let recording = try ExternalTool.temporaryDirectory().appendingPathComponent("acme.jsonl")
        let data = try Data(contentsOf: CLI.projectRoot.appendingPathComponent("fixtures/orgs/acme/github.jsonl"))
        try data.prefix(data.count / 2).write(to: recording)
        try cli.replay("acme", account: "acme-corp", recording: recording)
        let result = try cli.run(["run", "report", "--org", "acme"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(recording.path):"))
        #expect(result.stderr.contains("recording line is not valid JSON"))
        #expect(try cli.sql("SELECT count(*) FROM evidence") == before)
        let after = try FileManager.default.contentsOfDirectory(atPath: cli.dataDir.appendingPathComponent("objects/acme/exports").path)
        #expect(Set(exports).isSubset(of: Set(after)))
    }

    @Test func anUnwritableDataDirectoryIsFatal() throws {
        let result = try CLI().run(["run", "report", "--org", "acme", "--data-dir", "/proc/lightsail"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("/proc/lightsail"))
    }
}

@Suite struct LintAndListTests {
    @Test func theShippedPipelinesLintClean() throws {
        let result = try CLI().run(["lint", "pipelines/"])
        #expect(result.status == 0)
        #expect(result.stdout == "2 definitions and 6 catalog files checked, no problems\n")
    }

    @Test func lintReportsEveryProblemAndExitsOne() throws {
        let cli = try CLI()
        let file = cli.dataDir.appendingPathComponent("bad.yml")
        try "name: bad\ndescription: d\nstages:\n  - type: colect\n  - type: render\n    outputs: [pdf]\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try cli.run(["lint", file.path])
        #expect(result.status == 1)
        #expect(result.stdout.contains("bad.yml:4:11: error: unknown stage type 'colect'; did you mean 'collect'?"))
        #expect(result.stdout.contains("bad.yml:5:11: error: stage 'render' needs a 'score' stage before it [missing-stage]"))
        #expect(result.stdout.contains("bad.yml:5:11: error: stage 'render' needs a 'store' stage before it [missing-stage]"))
        let json = try cli.run(["lint", file.path, "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((object?["diagnostics"] as? [Any])?.count == 3)
    }

    @Test func lintOfAMissingPathIsAUsageError() throws {
        #expect(try CLI().run(["lint", "no/such/dir"]).status == 2)
    }

    @Test func listShowsPipelinesAndOrganizations() throws {
        let result = try CLI().run(["list"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("report  Collect evidence"))
        #expect(result.stdout.contains("schedule 0 2 * * * UTC"))
        #expect(result.stdout.contains("globex  Globex Corporation  [aws, github, google_workspace]"))
    }

    @Test func everyCommandHasHelp() throws {
        for command in [[], ["run"], ["list"], ["lint"], ["health"], ["db", "migrate"], ["evidence", "upload"], ["members", "add"]] {
            let result = try CLI().run(command + ["--help"])
            #expect(result.status == 0)
            #expect(result.stdout.contains("USAGE: pipeline"))
        }
    }

    @Test func jsonLogsAreOneObjectPerLine() throws {
        let result = try CLI().run(["run", "report", "--org", "globex", "--quiet", "--log-format", "json", "--log-level", "info"])
        #expect(result.status == 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count >= 3)
        for entry in lines {
            let object = try JSONSerialization.jsonObject(with: Data(entry.utf8)) as? [String: String]
            // The one line about the process (the signing key made on first use) belongs to no run.
            if object?["message"]?.hasPrefix("made the export signing key") == true { continue }
            #expect(object?["org.id"] == "globex")
            #expect(object?["run.id"] != nil)
        }
    }
}

/// A copy of an organization's demo recording that answers `path` only after `delayMS`.
func slowRecording(org: String, path: String, delayMS: Int) throws -> URL {
    let file = try ExternalTool.temporaryDirectory().appendingPathComponent("\(org)-slow.jsonl")
    var lines: [String] = []
    let original = CLI.projectRoot.appendingPathComponent("fixtures/orgs/\(org)/github.jsonl")
    for line in try String(contentsOf: original, encoding: .utf8).split(separator: "\n") {
        var exchange = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        if (exchange["request"] as? [String: Any])?["path"] as? String == path {
            var response = exchange["response"] as! [String: Any]
            response["delay_ms"] = delayMS
            exchange["response"] = response
        }
        lines.append(String(decoding: try JSONSerialization.data(withJSONObject: exchange), as: UTF8.self))
    }
    try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
    return file
}

/// Starts a run of acme whose last answer comes after a minute, and returns once it is recorded as
/// running (and storing evidence). Acme replays its demo recording again afterwards.
func startStuckRun(_ cli: CLI) throws -> Process {
    try cli.replay("acme", account: "acme-corp",
                   recording: try slowRecording(org: "acme", path: "/repos/acme-corp/web/vulnerability-alerts", delayMS: 60_000))
    defer { try? cli.replay("acme", account: "acme-corp", recording: CLI.projectRoot.appendingPathComponent("fixtures/orgs/acme/github.jsonl")) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CLI.binary)
    process.arguments = ["run", "report", "--org", "acme", "--quiet", "--data-dir", cli.dataDir.path]
    process.currentDirectoryURL = CLI.projectRoot
    process.standardOutput = Pipe()
    process.standardError = Pipe()
    try process.run()
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline, (try? cli.sql("SELECT count(*) FROM runs WHERE status = 'running'")) != "1" {
        Thread.sleep(forTimeInterval: 0.05)
    }
    return process
}

@Suite struct StoppingTests {
    @Test func sigtermStopsARunInFlightAndRecordsItAsCancelled() throws {
        try ExternalTool.require("python3")
        let cli = try CLI()
        let process = try startStuckRun(cli)
        Thread.sleep(forTimeInterval: 0.3)
        let stopAt = Date()
        process.terminate()
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(stopAt) < 10)
        #expect(process.terminationStatus == 130)
        #expect(try cli.sql("SELECT status FROM runs WHERE pipeline <> 'evidence-upload'") == "cancelled")
        #expect(!FileManager.default.fileExists(atPath: cli.dataDir.appendingPathComponent("objects/acme/exports").path))
        // No temporary file is left anywhere in the object store.
        let leftovers = FileManager.default.enumerator(atPath: cli.dataDir.appendingPathComponent("objects").path)?
            .compactMap { $0 as? String }.filter { $0.contains(".tmp-") } ?? []
        #expect(leftovers.isEmpty)
        // Running again completes, with nothing duplicated.
        let again = try cli.run(["run", "report", "--org", "acme", "--quiet"])
        #expect(again.status == 0)
        #expect(try cli.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'") == "52")
    }

    /// acme's infra branch protection answers only after 30 s; with a 100 ms timeout it is not
    /// collected, so the review check that passes on every other repository is not verified, never
    /// passed (infra's rulesets block force pushes and deletion, but require no review).
    @Test func aRequestSlowerThanItsTimeoutIsNotCollectedAndTheCheckNotVerified() throws {
        let cli = try CLI()
        try cli.replay("acme", account: "acme-corp",
                       recording: try slowRecording(org: "acme", path: "/repos/acme-corp/infra/branches/master/protection", delayMS: 30_000))
        let definition = cli.dataDir.appendingPathComponent("quick.yml")
        try """
        name: quick
        description: Short timeouts.
        stages:
          - type: collect
            sources: [github]
            timeout: 100ms
            retry: {attempts: 2, backoff: 10ms, max_backoff: 10ms}
          - type: validate
            frameworks: [soc2]
        """.write(to: definition, atomically: true, encoding: .utf8)
        let start = Date()
        let result = try cli.run(["run", definition.path, "--org", "acme", "--quiet", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        // Well before the answer's 30 s (generous, for a loaded machine).
        #expect(Date().timeIntervalSince(start) < 15)
        #expect(result.stderr.contains("timed out after 100ms"))
        let runs = (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]]
        let checks = runs?.first?["checks"] as? [[String: String]] ?? []
        #expect(checks.first { $0["check_id"] == "github.default-branch-requires-review" }?["status"] == "not_verified")
        #expect(checks.first { $0["check_id"] == "github.force-pushes-blocked" }?["status"] == "pass")  // the ruleset says so
        #expect(checks.first { $0["check_id"] == "github.dependabot-alerts-enabled" }?["status"] == "fail")
        #expect(runs?.first?["not_collected"] as? Int == 1)
    }
}

@Suite struct CrashResidueTests {
    /// A run killed with SIGKILL cannot clean up: its scratch folder stays, its run stays
    /// `running`. The next run removes the folder and any half-written object of a dead writer, and
    /// marks the killed run abandoned, with the audit log saying so; `runs list` shows it.
    @Test func afterKill9TheNextRunSweepsWhatTheKilledOneLeftAndMarksItAbandoned() throws {
        try ExternalTool.require("python3")
        let cli = try CLI()
        let process = try startStuckRun(cli)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let scratch = cli.dataDir.appendingPathComponent("scratch")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).count == 1, "the killed run's folder is left")
        #expect(try cli.sql("SELECT status FROM runs WHERE pipeline <> 'evidence-upload'") == "running")
        // A half-written object, as a writer killed mid-copy leaves one (its name says which process).
        let staging = cli.dataDir.appendingPathComponent("objects/.staging")
        let host = try #require(try FileManager.default.contentsOfDirectory(atPath: scratch.path).first?.split(separator: ".").first)
        try Data(count: 4 << 20).write(to: staging.appendingPathComponent("\(host).\(process.processIdentifier).\(UUID().uuidString).tmp"))

        let again = try cli.run(["run", "report", "--org", "acme", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: staging.path).isEmpty)
        #expect(try cli.sql("SELECT status FROM runs WHERE pipeline <> 'evidence-upload' ORDER BY started_at") == "abandoned\nsucceeded")
        #expect(try cli.sql("SELECT count(*) FROM audit_log WHERE action = 'run.abandoned'") == "1")
        let list = try cli.run(["runs", "list", "--org", "acme"])
        #expect(list.status == 0)
        // Newest first: the two report runs, then the uploads of acme's documents on import.
        #expect(list.stdout.split(separator: "\n").map { $0.split(separator: "\t")[1] }.prefix(2) == ["succeeded", "abandoned"])
        let json = try cli.run(["runs", "list", "--org", "acme", "--format", "json", "--status", "abandoned"])
        let runs = (try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]]
        #expect(runs?.count == 1)
        #expect((runs?.first?["message"] as? String)?.contains("process \(process.processIdentifier)") == true)
    }
}

@Suite struct ErrorOutputTests {
    @Test func aUsersMistakeExitsTwo() throws {
        let cli = try CLI()
        #expect(try cli.run(["run", "report", "--org", "acme", "--quiet"]).status == 0)
        let unknown = try cli.run(["members", "remove", "--org", "acme", "--user", "nobody@acme.example"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("\"nobody@acme.example\" is not a member of acme"))
        let noFile = try cli.run(["evidence", "upload", "--org", "acme", "--file", "/no/such/file.pdf", "--controls", "CC6.1"])
        #expect(noFile.status == 2)
        #expect(noFile.stderr.contains("no such file: /no/such/file.pdf"))
        let badControl = try cli.run(["evidence", "upload", "--org", "acme", "--file", "README.md", "--controls", "CC99.9"])
        #expect(badControl.status == 2)
    }

    @Test func withJSONAFailedRunPrintsAJSONErrorObject() throws {
        let result = try CLI().run(["run", "report", "--org", "acme", "--json", "--data-dir", "/proc/lightsail"])
        #expect(result.status == 3)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let error = try #require(object?["error"] as? [String: Any])
        #expect(error["code"] as? String == "storage")
        #expect(error["exit_code"] as? Int == 3)
        #expect((error["message"] as? String)?.contains("/proc/lightsail") == true)
    }

    @Test func withJSONLogsAFatalErrorIsAJSONLine() throws {
        let result = try CLI().run(["run", "report", "--org", "acme", "--log-format", "json", "--data-dir", "/proc/lightsail"])
        #expect(result.status == 3)
        let lines = result.stderr.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] as? String == "error")
        }
    }

    @Test func debugLoggingPrintsWhereAnErrorWasMade() throws {
        let result = try CLI().run(["run", "report", "--org", "acme", "--log-level", "debug", "--data-dir", "/proc/lightsail"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("Backends.swift:"))
    }

    @Test func anUnknownDatabaseSchemeIsRefusedAndAPasswordNeverShown() throws {
        let cli = try CLI()
        let mysql = try cli.run(["health", "--database", "mysql://root:hunter2@db/x"])
        #expect(mysql.status == 1)
        let health = try JSONSerialization.jsonObject(with: Data(mysql.stdout.utf8)) as? [String: Any]
        let database = (health?["checks"] as? [String: Any])?["database"] as? [String: Any]
        #expect((database?["error"] as? String)?.hasPrefix("database URL scheme \"mysql\" is not supported") == true)
        #expect(!mysql.stdout.contains("hunter2") && !mysql.stderr.contains("hunter2"))
        let down = try cli.run(["run", "report", "--org", "acme", "--database", "postgres://app:hun#ter2@127.0.0.1:1/x"])
        #expect(down.status == 3)
        #expect(!down.stderr.contains("hun#ter2") && !down.stderr.contains("ter2"))
        #expect(down.stderr.contains("127.0.0.1"))
    }

    @Test func runWithAPathNeverEchoesTheFile() throws {
        let cli = try CLI()
        let file = cli.dataDir.appendingPathComponent("notes.yml")
        try "token: ghp_SECRETSECRETSECRET\nname: [unclosed\n".write(to: file, atomically: true, encoding: .utf8)
        let result = try cli.run(["run", file.path, "--org", "acme"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("notes.yml:"))
        #expect(!result.stderr.contains("SECRET") && !result.stdout.contains("SECRET"))
    }
}

/// The catalog through the command line: listed, shown, and its mistakes linted where they are.
@Suite struct ControlsCommandTests {
    @Test func fortyChecksOrMoreAreListedEachMappedToBothFrameworks() throws {
        let result = try CLI(demo: false).run(["controls", "list", "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let checks = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
        #expect(checks.count >= 40)
        for check in checks {
            let controls = check["controls"] as? [String: Any] ?? [:]
            #expect(controls["soc2"] != nil && controls["iso27001"] != nil, "\(check["id"] ?? "?")")
            #expect(["low", "medium", "high", "critical"].contains(check["severity"] as? String ?? ""))
            #expect(!(check["evidence"] as? [String] ?? []).isEmpty, "\(check["id"] ?? "?") names no evidence")
        }
    }

    @Test func aCheckAndACriterionAreShown() throws {
        let cli = try CLI(demo: false)
        let check = try cli.run(["controls", "show", "github.dependabot-security-updates-enabled"])
        #expect(check.status == 0)
        for expected in ["evidence:    github repos/list-for-org", "applies to:  archived != true",
                         "passes when: security_and_analysis.dependabot_security_updates.status == 'enabled'",
                         "iso27001 A.8.8: Management of technical vulnerabilities"] {
            #expect(check.stdout.contains(expected), "\(expected)\n\(check.stdout)")
        }
        let criterion = try cli.run(["controls", "show", "A.8.2", "--format", "json"])
        let document = try JSONSerialization.jsonObject(with: Data(criterion.stdout.utf8)) as? [String: Any]
        #expect(document?["title"] as? String == "Privileged access rights")
        #expect((document?["checks"] as? [[String: Any]])?.contains { $0["id"] as? String == "aws.root-has-no-access-keys" } == true)
        let unknown = try cli.run(["controls", "show", "github.org-require-2fa"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("did you mean 'github.org-requires-2fa'?"))
    }

    /// A user's check with a broken expression: lint points at it, and a run refuses to start.
    @Test func aBrokenExpressionIsLintedAndStopsARun() throws {
        let cli = try CLI()
        let folder = cli.dataDir.appendingPathComponent("catalog")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("checks"), withIntermediateDirectories: true)
        for sub in ["frameworks", "checks"] {
            for file in try FileManager.default.contentsOfDirectory(atPath: "pipelines/\(sub)") where file.hasSuffix(".yml") {
                try? FileManager.default.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: "pipelines/\(sub)/\(file)", toPath: folder.appendingPathComponent("\(sub)/\(file)").path)
            }
        }
        try FileManager.default.copyItem(atPath: "pipelines/report.yml", toPath: folder.appendingPathComponent("report.yml").path)
        try """
        checks:
          - id: github.mine
            title: Mine
            controls: {soc2: [CC6.1], iso27001: [A.8.5]}
            source: github
            evidence: orgs/get
            resource: "{login}"
            pass: two_factor_requirement_enabled = true
        """.write(to: folder.appendingPathComponent("checks/zz-local.yml"), atomically: true, encoding: .utf8)
        let lint = try cli.run(["lint", folder.path])
        #expect(lint.status == 1)
        #expect(lint.stdout.contains("zz-local.yml:8:42: error: in 'pass': '=' is not a comparison: use '==' [invalid-expression]"), "\(lint.stdout)")
        let run = try cli.run(["run", "report", "--org", "acme", "--pipelines", folder.path])
        #expect(run.status == 1)  // as a definition with errors
        #expect(run.stderr.contains("the catalog in \(folder.path) has errors"))
    }
}

/// `pipeline verify` holds the fixture organizations' expected results in CI.
@Suite struct VerifyTests {
    @Test func theCommittedExpectationsHold() throws {
        let result = try CLI(demo: false).run(["verify"])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("acme report: as expected"))
        #expect(result.stdout.contains("umbrella report: as expected"))
        #expect(result.stdout.hasSuffix("8 verified, 0 drifted\n"))
    }

    /// An edited expected file is drift: a readable diff, a JUnit failure, exit 1; --update rewrites it.
    @Test func anEditedExpectationFailsWithADiff() throws {
        let cli = try CLI(demo: false)
        let copy = cli.dataDir.appendingPathComponent("fixtures/acme")
        try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "fixtures/orgs/acme", toPath: copy.path)
        let expected = copy.appendingPathComponent("expected/report.json")
        let original = try String(contentsOf: expected, encoding: .utf8)
        // The status of github.org-requires-2fa, the first "status" after its key, turned to fail.
        let key = try #require(original.range(of: "\"github.org-requires-2fa\" : {"))
        let status = try #require(original.range(of: "\"status\" : \"pass\"", range: key.upperBound..<original.endIndex))
        let edited = original.replacingCharacters(in: status, with: "\"status\" : \"fail\"")
        #expect(edited != original)
        try edited.write(to: expected, atomically: true, encoding: .utf8)
        let junit = cli.dataDir.appendingPathComponent("junit.xml")
        let drift = try cli.run(["verify", copy.path, "--pipeline", "report", "--junit-report", junit.path])
        #expect(drift.status == 1)
        #expect(drift.stdout.contains("acme report: DRIFT from"))
        #expect(drift.stdout.contains("-      \"status\" : \"fail\"") && drift.stdout.contains("+      \"status\" : \"pass\""), "\(drift.stdout)")
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("<testcase classname=\"acme\" name=\"report\">") && xml.contains("<failure message=\"results drifted from report.json\">"))
        // Validated as XML by Python's parser, as a CI system would read it.
        #expect(try ExternalTool.run("python3", ["-c", "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.get('failures'))", junit.path]).stdout == "1\n")

        #expect(try cli.run(["verify", copy.path, "--pipeline", "report", "--update"]).status == 0)
        #expect(try String(contentsOf: expected, encoding: .utf8) == original)
        #expect(try cli.run(["verify", copy.path, "--pipeline", "report"]).status == 0)
        #expect(try cli.run(["verify", copy.path, "--pipeline", "nope"]).status == 2)
    }
}

/// Risk exceptions through the command line: who may add them, what they change, and expiry.
@Suite struct ExceptionCommandTests {
    @Test func anExceptionAppliesThenExpires() throws {
        let cli = try CLI()
        func add(_ extra: [String], actor: String = "olive@acme.example") throws -> ToolResult {
            try cli.run(["exceptions", "add", "--org", "acme", "--check", "github.admins-follow-protection",
                         "--approver", "olive@acme.example", "--justification", "web is replaced in Q1; admins hotfix it",
                         "--actor", actor] + extra)
        }
        // A member cannot accept risks; a viewer cannot approve them; a year is the longest.
        #expect(try add(["--expires", "30d"], actor: "mel@acme.example").status == 1)
        let viewer = try cli.run(["exceptions", "add", "--org", "acme", "--check", "github.admins-follow-protection",
                                  "--approver", "vic@acme.example", "--justification", "web is replaced in Q1; admins hotfix it",
                                  "--expires", "30d", "--actor", "olive@acme.example"])
        #expect(viewer.status == 2)
        #expect(viewer.stderr.contains("the approver must be a member who manages controls"))
        #expect(try add(["--expires", "400d"]).stderr.contains("an exception lasts at most 366 days"))
        let misspelt = try cli.run(["exceptions", "add", "--org", "acme", "--check", "github.admins-follow-protecton",
                                    "--approver", "olive@acme.example", "--justification", "0123456789 ok", "--expires", "30d"])
        #expect(misspelt.stderr.contains("did you mean 'github.admins-follow-protection'?"))

        let added = try add(["--resource", "acme-corp/web", "--expires", "2026-12-31"])
        #expect(added.status == 0, "\(added.stderr)")
        let before = try cli.run(["run", "report", "--org", "acme", "--json", "--as-of", "2026-11-28T00:00:00Z"])
        #expect(checkStatuses(try runJSON(before))["github.admins-follow-protection"] == "excepted")
        let after = try cli.run(["run", "report", "--org", "acme", "--json", "--as-of", "2027-01-02T00:00:00Z"])
        #expect(checkStatuses(try runJSON(after))["github.admins-follow-protection"] == "fail")
        let reason = try cli.sql("SELECT reason FROM check_results WHERE check_id = 'github.admins-follow-protection' ORDER BY rowid DESC LIMIT 1")
        #expect(reason.contains("An exception approved by olive@acme.example for acme-corp/web expired on 2026-12-31."), "\(reason)")

        let listed = try cli.run(["exceptions", "list", "--org", "acme", "--format", "json", "--actor", "vic@acme.example"])
        let items = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
        let id = try #require(items?.first?["id"] as? String)
        #expect(items?.first?["resource"] as? String == "acme-corp/web")
        #expect(try cli.run(["exceptions", "remove", "--org", "acme", "--id", id, "--actor", "vic@acme.example"]).status == 1)
        #expect(try cli.run(["exceptions", "remove", "--org", "acme", "--id", id, "--actor", "olive@acme.example"]).status == 0)
        #expect(try cli.sql("SELECT group_concat(action) FROM (SELECT action FROM audit_log WHERE entity_type = 'exception' AND organization_id = 'acme' ORDER BY seq)")
                == "exception.added,exception.removed")
    }
}

/// Scores kept for every run, their trend, and what changed since the previous run.
@Suite struct ScoreHistoryTests {
    @Test func aSecondRunSaysWhatChangedAndTheTrendShowsBoth() throws {
        let cli = try CLI()
        #expect(try cli.run(["run", "report", "--org", "acme", "--quiet", "--as-of", "2026-11-27T00:00:00Z"]).status == 0)
        // The GitHub organization is now in worse shape (globex's answers, as if acme's had changed).
        #expect(try cli.run(["integrations", "add", "--org", "acme", "--kind", "github", "--account", "globex",
                             "--recording", "fixtures/orgs/globex/github.jsonl", "--actor", "olive@acme.example"]).status == 0)
        let second = try cli.run(["run", "report", "--org", "acme", "--json", "--as-of", "2026-11-28T00:00:00Z"])
        let changes = try #require(try runJSON(second)["changes"] as? [String: Any])
        #expect((changes["newly_failing"] as? [String])?.contains("github.org-requires-2fa") == true)
        #expect((changes["new_resources"] as? [String])?.contains("github globex/hammock") == true)
        #expect((changes["vanished_resources"] as? [String])?.contains("github acme-corp/api") == true)
        let text = try cli.run(["score", "--org", "acme"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("  trend:   83% → "), "\(text.stdout)")
        #expect(text.stdout.contains("newly failing: github.org-requires-2fa"))
        let json = try JSONSerialization.jsonObject(with: Data(try cli.run(["score", "--org", "acme", "--format", "json"]).stdout.utf8)) as? [String: Any]
        #expect((json?["trend"] as? [[String: Any]])?.count == 2)
        #expect((json?["frameworks"] as? [[String: Any]])?.map { $0["framework"] as? String } == ["iso27001", "soc2"])
        #expect(try cli.run(["score", "--org", "globex"]).stderr.contains("has no scored run yet"))
    }
}

/// Manual controls are met by uploaded, reviewed documents while the review is valid.
@Suite struct ManualControlTests {
    @Test func anUploadedPolicyMeetsItsControlUntilItGoesStale() throws {
        let cli = try CLI()
        func policyStatus(_ asOf: String) throws -> String? {
            let run = try cli.run(["run", "report", "--org", "acme", "--json", "--as-of", asOf])
            return checkStatuses(try runJSON(run))["manual.incident-response-plan"]
        }
        #expect(try policyStatus("2026-11-28T00:00:00Z") == "not_verified")
        let file = cli.dataDir.appendingPathComponent("incident-response-plan.pdf")
        try Data("%PDF-1.4 incident response plan v2".utf8).write(to: file)
        let upload = try cli.run(["evidence", "upload", "--org", "acme", "--file", file.path, "--controls", "A.5.24",
                                  "--reviewer", "olive@acme.example", "--reviewed", "2026-10-01", "--valid-for", "365d",
                                  "--actor", "olive@acme.example"])
        #expect(upload.status == 0, "\(upload.stderr)")
        #expect(upload.stdout.contains("valid:    reviewed 2026-10-01 by olive@acme.example, until 2027-10-01"))
        #expect(try policyStatus("2026-11-28T00:00:00Z") == "pass")
        #expect(try policyStatus("2027-12-01T00:00:00Z") == "not_verified")
        let reason = try cli.sql("SELECT reason FROM check_results WHERE check_id = 'manual.incident-response-plan' ORDER BY rowid DESC LIMIT 1")
        #expect(reason == "Stale: the latest evidence was reviewed on 2026-10-01 and expired on 2027-10-01.")
        // Reviewed before the run's clock only: a review dated in the future is refused.
        #expect(try cli.run(["evidence", "upload", "--org", "acme", "--file", file.path, "--controls", "A.5.24",
                             "--reviewed", "2999-01-01", "--actor", "olive@acme.example"]).status == 2)
    }
}

/// An answer a run cannot collect is taken from the last run that did while it is fresh; once
/// stale, the checks on it are not verified and say when it was collected.
@Suite struct FreshnessTests {
    @Test func aFailedAnswerIsReusedWhileFreshThenGoesStale() throws {
        let cli = try CLI()
        let definition = cli.dataDir.appendingPathComponent("quick.yml")
        try """
        name: quick
        description: Short timeouts; evidence fresh for a day.
        stages:
          - type: collect
            sources: [github]
            timeout: 200ms
            fresh_for: 24h
            retry: {attempts: 2, backoff: 10ms, max_backoff: 10ms}
          - type: validate
            frameworks: [soc2]
          - type: store
        """.write(to: definition, atomically: true, encoding: .utf8)
        func review(_ asOf: String) throws -> (status: String?, run: [String: Any]) {
            let result = try cli.run(["run", definition.path, "--org", "acme", "--json", "--as-of", asOf])
            let run = try runJSON(result)
            return (checkStatuses(run)["github.default-branch-requires-review"], run)
        }
        #expect(try review("2026-11-27T00:00:00Z").status == "pass")
        // infra's protection now answers too late: the day-old answer stands in for it.
        try cli.replay("acme", account: "acme-corp",
                       recording: try slowRecording(org: "acme", path: "/repos/acme-corp/infra/branches/master/protection", delayMS: 3_000))
        let fresh = try review("2026-11-27T12:00:00Z")
        #expect(fresh.status == "pass")
        #expect((fresh.run["reused"] as? [String])?.first?.hasPrefix("github repos/get-branch-protection acme-corp/infra@master: collected at 2026-11-27T00:00:00Z, fresh until 2026-11-28T00:00:00Z") == true,
                "\(fresh.run["reused"] ?? "")")
        #expect(fresh.run["not_collected"] as? Int == 1)  // still said: this run did not collect it
        // A day and more later it is stale: not verified, saying when it was collected.
        let stale = try review("2026-11-28T06:00:00Z")
        #expect(stale.status == "not_verified")
        let findings = try cli.sql("SELECT findings FROM check_results WHERE check_id = 'github.default-branch-requires-review' ORDER BY rowid DESC LIMIT 1")
        #expect(findings.contains("the last evidence, collected at 2026-11-27T00:00:00Z, went stale at 2026-11-28T00:00:00Z"), "\(findings)")
    }
}

/// Exports are signed: the manifest's Ed25519 signature checks with the exported public key and
/// openssl alone, and fails once the manifest is edited.
@Suite struct SignedBundleTests {
    @Test func theManifestSignatureChecksWithTheExportedPublicKeyAndOpensslAlone() throws {
        try ExternalTool.require("openssl")
        try ExternalTool.require("unzip")
        let cli = try CLI()
        let run = try cli.run(["run", "report", "--org", "acme", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("made the export signing key ed25519:"))
        let keyFile = cli.dataDir.appendingPathComponent("signing.key")
        #expect(try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int == 0o600)
        let artifacts = try #require(try runJSON(run)["artifacts"] as? [[String: Any]])
        let zip = try #require(artifacts.first { $0["kind"] as? String == "bundle" }?["location"] as? String)
        let folder = try ExternalTool.temporaryDirectory()
        #expect(try ExternalTool.run("unzip", ["-q", zip, "-d", folder.path]).status == 0)
        let pem = try cli.run(["keys", "export-public"])
        #expect(pem.stdout.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        try pem.stdout.write(to: folder.appendingPathComponent("public.pem"), atomically: true, encoding: .utf8)
        let fingerprint = try cli.run(["keys", "export-public", "--format", "fingerprint"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try String(contentsOf: folder.appendingPathComponent("manifest.json"), encoding: .utf8).contains("\"signer\" : \"\(fingerprint)\""))
        let args = ["pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin", "-in", "manifest.json", "-sigfile", "manifest.json.sig"]
        #expect(try ExternalTool.run("openssl", args, directory: folder).stdout.contains("Signature Verified Successfully"))
        // An edited manifest no longer checks, even with SHA256SUMS recomputed to match.
        let manifest = folder.appendingPathComponent("manifest.json")
        try (try String(contentsOf: manifest, encoding: .utf8)).replacingOccurrences(of: "Acme Corp", with: "Acme Corp.")
            .write(to: manifest, atomically: true, encoding: .utf8)
        #expect(try ExternalTool.run("openssl", args, directory: folder).status != 0)
        // The same key signs the next export: it is read, not made again.
        let again = try cli.run(["run", "report", "--org", "acme", "--quiet"])
        #expect(again.status == 0 && !again.stderr.contains("made the export signing key"))
    }
}
