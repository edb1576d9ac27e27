import Foundation
import PipelineTesting
import Testing

/// A GitHub organization as the fixture server serves it: paginated two repositories a page, one
/// branch not protected (404 "Branch not protected"), one protection the token may not read (403),
/// one repository with Dependabot alerts off, one member without 2FA.
func hooliWorld(token: String = "ghp_FixtureToken0123456789abcdefABCDEF", app: [String: Any]? = nil,
                faults: [[String: Any]] = []) -> [String: Any] {
    var github: [String: Any] = [
        "tokens": [token],
        "orgs": ["hooli": [
            "name": "Hooli XYZ", "two_factor": true, "members_without_2fa": ["erlich"], "per_page_max": 2,
            "repos": [
                ["name": "api", "protection": ["reviews": 2]],
                ["name": "web", "protection": NSNull()],
                ["name": "nucleus", "protection": "hidden"],
                ["name": "docs", "protection": ["reviews": 1], "alerts": false],
                ["name": "old", "archived": true],
            ],
        ]],
    ]
    if let app { github["app"] = app }
    return ["github": github, "faults": faults]
}

/// A data directory holding organization hooli, owned by gavin, and nothing else.
func hooli() throws -> CLI {
    let cli = try CLI(demo: false)
    let added = try cli.run(["orgs", "add", "hooli", "--name", "Hooli XYZ", "--owner", "gavin@hooli.example"])
    guard added.status == 0 else { throw ToolFailure("orgs add", added) }
    return cli
}

func runJSON(_ result: ToolResult) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    return try #require((object?["runs"] as? [[String: Any]])?.first)
}

func checkStatuses(_ run: [String: Any]) -> [String: String] {
    Dictionary(uniqueKeysWithValues: ((run["checks"] as? [[String: String]]) ?? []).map { ($0["check_id"] ?? "", $0["status"] ?? "") })
}

/// Every file under `folder` (zips unpacked by unzip) that holds `needle`.
func filesHolding(_ needle: String, under folder: URL) throws -> [String] {
    var found: [String] = []
    let files = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String } ?? []
    for name in files {
        let path = folder.appendingPathComponent(name).path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
        if name.hasSuffix(".zip") {
            let unpacked = try ExternalTool.run("unzip", ["-p", path])
            if unpacked.stdout.contains(needle) { found.append(name + " (inside)") }
        }
        if let data = FileManager.default.contents(atPath: path), data.range(of: Data(needle.utf8)) != nil {
            found.append(name)
        }
    }
    return found
}

@Suite(.serialized) struct LiveGitHubTests {
    @Test func aTokenIntegrationRunsLiveAndTheTokenAppearsNowhere() throws {
        try ExternalTool.require("unzip", "python3")
        let token = "ghp_FixtureToken0123456789abcdefABCDEF"
        let server = try FixtureAPIServer(world: hooliWorld(token: token))
        let cli = try hooli()
        let environment = ["HOOLI_GITHUB_TOKEN": token]
        let add = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                               "--token-env", "HOOLI_GITHUB_TOKEN", "--api-url", server.url.absoluteString,
                               "--actor", "gavin@hooli.example"], environment: environment)
        #expect(add.status == 0, "\(add.stderr)")
        #expect(add.stdout.contains("hooli: github connected (credentials sealed with key k-"))
        // The embedded default made its key file, readable by its owner only.
        let keyFile = cli.dataDir.appendingPathComponent("encryption.key")
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(add.stderr.contains("made the encryption key"))

        let probe = try cli.run(["integrations", "test", "--org", "hooli", "--kind", "github"])
        #expect(probe.status == 0, "\(probe.stderr)")
        #expect(probe.stdout.contains("hooli: github works: read organization hooli (\"Hooli XYZ\"); rate limit:"))

        let run = try cli.run(["run", "report", "--org", "hooli", "--json", "--log-level", "debug"])
        #expect(run.status == 0, "\(run.stderr)")
        let outcome = try runJSON(run)
        let checks = checkStatuses(outcome)
        #expect(checks["github.members-have-2fa"] == "fail")
        #expect(checks["github.org-requires-2fa"] == "pass")
        #expect(checks["github.default-branch-requires-review"] == "fail")  // web is not protected
        #expect(checks["github.dependabot-alerts-enabled"] == "fail")  // docs
        // nucleus's protection could not be read: not collected, with the reason.
        #expect(outcome["not_collected"] as? Int == 1)
        #expect(run.stderr.contains("the token cannot read this branch's protection"))
        // Three pages of repositories (two a page), all followed.
        let stats = try server.stats()
        let paths = (stats["by_path"] as? [String: Int]) ?? [:]
        #expect(paths.keys.filter { $0.hasPrefix("GET /orgs/hooli/repos") }.count == 3)
        #expect(Set((stats["authorization_schemes"] as? [String]) ?? []) == ["Bearer"])

        // The token is in no output, no log, no stored file, no bundle, not in the database in clear.
        #expect(!run.stdout.contains(token) && !run.stderr.contains(token))
        #expect(!add.stdout.contains(token) && !add.stderr.contains(token) && !probe.stdout.contains(token))
        #expect(try filesHolding(token, under: cli.dataDir).isEmpty)
        #expect(try filesHolding(String(token.dropFirst(4).prefix(16)), under: cli.dataDir).isEmpty)
        #expect(try cli.sql("SELECT count(*) FROM integrations WHERE secret IS NOT NULL AND key_id LIKE 'k-%'") == "1")
        let listed = try cli.run(["integrations", "list", "--org", "hooli"])
        #expect(listed.stdout.hasPrefix("github\taccount=hooli api_url=\(server.url.absoluteString)"))
        #expect(!listed.stdout.contains(token))
    }

    @Test func aWrongTokenFailsThatIntegrationNamingItAndTheReportStillSaysWhy() throws {
        let server = try FixtureAPIServer(world: hooliWorld())
        let cli = try hooli()
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                             "--token-env", "T", "--api-url", server.url.absoluteString],
                            environment: ["T": "ghp_revoked"]).status == 0)
        let probe = try cli.run(["integrations", "test", "--org", "hooli", "--kind", "github"])
        #expect(probe.status == 1)
        #expect(probe.stderr.contains("GitHub refused the credentials (HTTP 401: \"Bad credentials\")"))
        let run = try cli.run(["run", "report", "--org", "hooli"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("pipeline: error: hooli: the github integration failed: GitHub refused the credentials (HTTP 401)"))
        #expect(run.stdout.contains("github:   FAILED: GitHub refused the credentials"))
        #expect(run.stdout.contains("report:"))  // every check not verified, and the report says why
        #expect(try cli.sql("SELECT DISTINCT status FROM check_results") == "not_verified")
        // One request, not one per repository.
        #expect((try server.stats()["requests"] as? Int) ?? 0 <= 3)
    }

    @Test func aGitHubAppSignsAJWTAndItsInstallationTokenIsReusedForTheWholeRun() throws {
        let keys = try FixtureAPIServer.rsaKeyPair()
        let server = try FixtureAPIServer(world: hooliWorld(app: ["id": "4242", "installation_id": "99", "public_key": keys.publicPEM]))
        let cli = try hooli()
        let keyFile = cli.dataDir.appendingPathComponent("app.pem")
        try keys.privatePEM.write(to: keyFile, atomically: true, encoding: .utf8)
        let add = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                               "--app-id", "4242", "--installation-id", "99", "--private-key-file", keyFile.path,
                               "--api-url", server.url.absoluteString])
        #expect(add.status == 0, "\(add.stderr)")
        try FileManager.default.removeItem(at: keyFile)  // sealed in the store now
        let run = try cli.run(["run", "report", "--org", "hooli", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(checkStatuses(try runJSON(run))["github.org-requires-2fa"] == "pass")
        #expect(try server.stats()["tokens_issued"] as? Int == 1)
        #expect(try filesHolding("PRIVATE KEY", under: cli.dataDir).isEmpty)

        // The wrong installation: GitHub's refusal, named, and the integration failed as a whole.
        try keys.privatePEM.write(to: keyFile, atomically: true, encoding: .utf8)
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                             "--app-id", "4242", "--installation-id", "100", "--private-key-file", keyFile.path,
                             "--api-url", server.url.absoluteString]).status == 0)
        let wrong = try cli.run(["run", "report", "--org", "hooli"])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("GitHub refused an installation token for app 4242, installation 100 (HTTP 404"))
    }

    @Test func rateLimitsAreWaitedOutAndServerErrorsRetried() throws {
        let server = try FixtureAPIServer(world: hooliWorld(faults: [
            ["path": "/orgs/hooli/repos", "rate_limit": "secondary", "retry_after": 1, "times": 1],
            ["path": "/repos/hooli/api/branches/main/protection", "rate_limit": "primary", "retry_after": 1, "times": 1],
            ["path": "/repos/hooli/docs/branches/main/protection", "status": 502, "times": 1],
        ]))
        let cli = try hooli()
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                             "--token-env", "T", "--api-url", server.url.absoluteString],
                            environment: ["T": "ghp_FixtureToken0123456789abcdefABCDEF"]).status == 0)
        let started = Date()
        let run = try cli.run(["run", "report", "--org", "hooli", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Date().timeIntervalSince(started) >= 1)
        let outcome = try runJSON(run)
        #expect(outcome["not_collected"] as? Int == 1)  // only nucleus, whose protection is hidden
        #expect(checkStatuses(outcome)["github.force-pushes-blocked"] != "pass")
    }

    @Test func aTruncatedAnswerIsNotCollectedAndNeverPasses() throws {
        let server = try FixtureAPIServer(world: hooliWorld(faults: [
            ["path": "/repos/hooli/api/branches/main/protection", "truncate": true, "times": -1],
        ]))
        let cli = try hooli()
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                             "--token-env", "T", "--api-url", server.url.absoluteString],
                            environment: ["T": "ghp_FixtureToken0123456789abcdefABCDEF"]).status == 0)
        let run = try cli.run(["run", "report", "--org", "hooli", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let outcome = try runJSON(run)
        #expect(outcome["not_collected"] as? Int == 2)
        #expect(run.stderr.contains("GET /repos/hooli/api/branches/main/protection"))
    }

    /// A live run recorded, then replayed offline: the same verdicts, and the recording holds no
    /// credential.
    @Test func aRecordingReproducesALiveRunOfflineWithoutItsSecrets() throws {
        let token = "ghp_FixtureToken0123456789abcdefABCDEF"
        let server = try FixtureAPIServer(world: hooliWorld(token: token))
        let cli = try hooli()
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                             "--token-env", "T", "--api-url", server.url.absoluteString], environment: ["T": token]).status == 0)
        let live = try cli.run(["run", "report", "--org", "hooli", "--json", "--as-of", "2026-11-28T00:00:00Z"])
        let folder = try ExternalTool.temporaryDirectory()
        let record = try cli.run(["record", "--org", "hooli", "--kind", "github", "--out", folder.path])
        #expect(record.status == 0, "\(record.stderr)")
        #expect(record.stdout.contains("hooli: recorded 20 exchanges of github (19 evidence items, 1 not collected)"))
        let recording = folder.appendingPathComponent("github.jsonl")
        let text = try String(contentsOf: recording, encoding: .utf8)
        #expect(!text.contains(token) && !text.contains("Authorization") && !text.contains("Bearer"))
        #expect(try FileManager.default.attributesOfItem(atPath: recording.path)[.posixPermissions] as? Int == 0o600)

        try cli.replay("hooli", account: "hooli", recording: recording)
        let offline = try cli.run(["run", "report", "--org", "hooli", "--json", "--as-of", "2026-11-28T00:00:00Z"])
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(checkStatuses(try runJSON(offline)) == checkStatuses(try runJSON(live)))
        #expect(try runJSON(offline)["evidence_new"] as? Int == 0)  // the same answers, the same evidence
    }

    /// An enterprise named on the integration has its audit-log streams read; a paused stream
    /// fails the check, naming it; a slug that is not one is refused when the integration is added.
    @Test func anEnterprisesAuditLogStreamsAreRead() throws {
        let token = "ghp_FixtureToken0123456789abcdefABCDEF"
        var world = hooliWorld(token: token)
        var github = world["github"] as! [String: Any]
        github["enterprises"] = ["hooli-global": ["streams": [["Splunk", false]]]]
        world["github"] = github
        let server = try FixtureAPIServer(world: world)
        let cli = try hooli()
        let refused = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli", "--enterprise", "../x",
                                   "--token-env", "T", "--api-url", server.url.absoluteString], environment: ["T": token])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("--enterprise \"../x\" is not an enterprise slug"))
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli", "--enterprise", "hooli-global",
                             "--token-env", "T", "--api-url", server.url.absoluteString], environment: ["T": token]).status == 0)
        let run = try cli.run(["run", "nightly", "--org", "hooli", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(checkStatuses(try runJSON(run))["github.audit-log-streamed"] == "fail")
        #expect(try server.stats()["by_path"].map { "\($0)" }?.contains("/enterprises/hooli-global/audit-log/streams") == true)
    }

    /// A re-run of an unchanged organization revalidates with ETags: the server answers 304, which
    /// costs no rate limit, and the evidence is the same.
    @Test func aNightlyReRunCostsLittleOfTheRateLimit() throws {
        let token = "ghp_FixtureToken0123456789abcdefABCDEF"
        let server = try FixtureAPIServer(world: hooliWorld(token: token))
        let cli = try hooli()
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                             "--token-env", "T", "--api-url", server.url.absoluteString], environment: ["T": token]).status == 0)
        let first = try cli.run(["run", "nightly", "--org", "hooli", "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        let firstStats = try server.stats()
        let charged = firstStats["charged"] as? Int ?? 0, etagged = firstStats["etagged"] as? Int ?? 0
        #expect(etagged >= 7, "\(firstStats)")
        let second = try cli.run(["run", "nightly", "--org", "hooli", "--json"])
        #expect(second.status == 0, "\(second.stderr)")
        let stats = try server.stats()
        // Every answer that came with an ETag is revalidated for free; only the answers GitHub
        // sends without one (404s, 204s) are charged again.
        #expect(stats["not_modified"] as? Int == etagged, "\(stats)")
        #expect((stats["charged"] as? Int ?? 0) - charged == charged - etagged, "\(stats)")
        #expect(try runJSON(second)["evidence_new"] as? Int == 0)
        #expect(checkStatuses(try runJSON(second)) == checkStatuses(try runJSON(first)))
        // The kept answers live under the organization's own prefix.
        let kept = FileManager.default.enumerator(atPath: cli.dataDir.appendingPathComponent("objects/hooli/cache/http/github").path)?
            .compactMap { $0 as? String } ?? []
        #expect(kept.count == etagged)
    }

    /// Rotation adds a key and re-seals every credential under it; once rotated, the old key may
    /// go. A key file without the sealing key fails that integration, naming it and the key.
    @Test func keysRotateAndAMissingKeyIsNamed() throws {
        let server = try FixtureAPIServer(world: hooliWorld())
        let cli = try hooli()
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli",
                             "--token-env", "T", "--api-url", server.url.absoluteString],
                            environment: ["T": "ghp_FixtureToken0123456789abcdefABCDEF"]).status == 0)
        let keyFile = cli.dataDir.appendingPathComponent("encryption.key")
        let firstKey = try String(contentsOf: keyFile, encoding: .utf8)
        let before = try cli.sql("SELECT key_id FROM integrations")

        let rotate = try cli.run(["keys", "rotate"])
        #expect(rotate.status == 0, "\(rotate.stderr)")
        #expect(rotate.stdout.contains("1 integration credential re-sealed with key k-"))
        let after = try cli.sql("SELECT key_id FROM integrations")
        #expect(after != before)
        #expect(try cli.sql("SELECT detail FROM audit_log WHERE action = 'integration.resealed'") == "\(before) -> \(after)")
        let show = try cli.run(["keys", "show"])
        #expect(show.stdout.contains("current key: \(after)"))
        #expect(show.stdout.contains("older key:   \(before)"))
        // Drop the old key: what it sealed was all re-sealed.
        let lines = try String(contentsOf: keyFile, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.count == 2)
        try Keyring(lines.last!).write(to: keyFile)
        #expect(try cli.run(["run", "report", "--org", "hooli", "--quiet"]).status == 0)

        // The key file of another machine: the credentials cannot be opened, and the error says whose.
        try firstKey.write(to: keyFile, atomically: false, encoding: .utf8)
        let run = try cli.run(["run", "report", "--org", "hooli"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("the github integration failed: cannot open the credentials of hooli's github integration: it was sealed with key \(after), which is not among the keys of \(keyFile.path)"))
        #expect(!run.stdout.contains("ghp_") && !run.stderr.contains("ghp_"))
    }
}

/// A key file of one key, written as the tool writes them.
struct Keyring {
    let line: Substring
    init(_ line: Substring) { self.line = line }
    func write(to file: URL) throws {
        try (line + "\n").write(to: file, atomically: false, encoding: .utf8)
    }
}
