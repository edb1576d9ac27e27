import Foundation
import PipelineTesting
import Testing

/// A SaaS added without Swift: a source declared in a definition, read over HTTP through the live
/// transport from the fixture API server, its secret sealed in an integration.
@Suite struct DeclaredSourceTests {
    static let secret = "00aB-saas-SECRET-token-9f8e7d6c5b4a"

    static func world(auth: [String: Any]) -> [String: Any] {
        ["saas": [
            "tenant": "acme", "auth": auth, "page_size": 2,
            "users": (1...5).map { ["id": "00u\($0)", "status": $0 == 4 ? "SUSPENDED" : "ACTIVE",
                                    "profile": ["login": "user\($0)@acme.example", "mfa": $0 != 2], "credentials": ["recovery_question": "pet"]] },
            "devices": (1...3).map { ["serial": "SN-\($0)", "encrypted": $0 != 3, "owner": "user\($0)@acme.example"] },
            "groups": (1...3).map { ["name": "group-\($0)", "members": $0] },
        ]]
    }

    static let definition = """
    name: saas
    description: Users, devices and groups of a SaaS declared without Swift.
    sources:
      - name: acme_idp
        type: http
        auth: {header: Authorization, prefix: SSWS}
        requests:
          - operation: users/list
            path: /saas/{tenant}/api/v1/users?limit=2
            pagination: link
            each: ""
            resource: "{profile.login}"
            fields: [id, status, profile.mfa]
          - operation: devices/list
            path: /saas/{tenant}/v2/devices
            pagination: {type: next_token, field: next_page_token, parameter: page_token}
            each: devices
            resource: "{serial}"
          - operation: groups/list
            path: /saas/{tenant}/v3/groups
            pagination: {type: page, parameter: page}
            each: groups
            resource: "group {name}"
    stages:
      - type: collect
        sources: [acme_idp]
        concurrency: 4
      - type: store
    """

    func setUp(auth: [String: Any] = ["type": "header", "prefix": "SSWS", "secret": DeclaredSourceTests.secret])
        throws -> (CLI, FixtureAPIServer, URL) {
        let server = try FixtureAPIServer(world: Self.world(auth: auth))
        let cli = try hooli()
        let pipelines = cli.dataDir.appendingPathComponent("definitions")
        try FileManager.default.createDirectory(at: pipelines, withIntermediateDirectories: true)
        try Self.definition.write(to: pipelines.appendingPathComponent("saas.yml"), atomically: true, encoding: .utf8)
        return (cli, server, pipelines)
    }

    @Test func aDeclaredSourceIsCollectedThroughEveryKindOfPaginationAndItsSecretAppearsNowhere() throws {
        let (cli, server, pipelines) = try setUp()
        let added = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "http", "--source", "acme_idp",
                                 "--base-url", server.url.absoluteString, "--setting", "tenant=acme", "--secret-env", "S"],
                                environment: ["S": Self.secret])
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.contains("hooli: acme_idp connected (credentials sealed with key"))
        let test = try cli.run(["integrations", "test", "--org", "hooli", "--kind", "acme_idp", "--pipelines", pipelines.path])
        #expect(test.status == 0, "\(test.stderr)")
        #expect(test.stdout == "hooli: acme_idp works: users/list answered 200\n")

        let run = try cli.run(["run", "saas", "--org", "hooli", "--pipelines", pipelines.path, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try runJSON(run)["evidence_collected"] as? Int == 5 + 3 + 3)
        #expect(try runJSON(run)["not_collected"] as? Int == 0)
        let resources = try cli.sql("SELECT group_concat(operation || ' ' || resource, '|') FROM (SELECT operation, resource FROM evidence ORDER BY operation, resource)")
        #expect(resources == "devices/list SN-1|devices/list SN-2|devices/list SN-3|groups/list group group-1|groups/list group group-2|groups/list group group-3|"
                + (1...5).map { "users/list user\($0)@acme.example" }.joined(separator: "|"))
        // Each user's evidence holds the declared fields only.
        let id = try cli.sql("SELECT id FROM evidence WHERE resource = 'user2@acme.example'")
        let body = try Data(contentsOf: cli.dataDir.appendingPathComponent("objects/hooli/evidence/\(id)/original.json"))
        let fields = try JSONSerialization.jsonObject(with: body) as? [String: Any]
        #expect(fields?.keys.sorted() == ["id", "profile.mfa", "status"], "\(String(decoding: body, as: UTF8.self))")
        #expect(fields?["profile.mfa"] as? Bool == false)
        // Three pages of users (Link), two of devices (token), three of groups (the last empty).
        let paths = (try server.stats()["by_path"] as? [String: Int] ?? [:]).keys.filter { $0.contains("/saas/") }
        #expect(paths.filter { $0.contains("/users") }.count == 3)
        #expect(paths.filter { $0.contains("/devices") }.count == 2)
        #expect(paths.filter { $0.contains("/groups") }.count == 3)
        // Recorded for offline replay, without the secret; the replay gives the same evidence.
        let folder = try ExternalTool.temporaryDirectory()
        let record = try cli.run(["record", "--org", "hooli", "--kind", "acme_idp", "--out", folder.path, "--pipelines", pipelines.path])
        #expect(record.status == 0, "\(record.stderr)")
        let recording = folder.appendingPathComponent("acme_idp.jsonl")
        #expect(try !String(contentsOf: recording, encoding: .utf8).contains(Self.secret))
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "http", "--source", "acme_idp",
                             "--base-url", server.url.absoluteString, "--setting", "tenant=acme",
                             "--recording", recording.path]).status == 0)
        let offline = try cli.run(["run", "saas", "--org", "hooli", "--pipelines", pipelines.path, "--json"])
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(try runJSON(offline)["evidence_new"] as? Int == 0)
        #expect(try runJSON(offline)["evidence_collected"] as? Int == 11)
        #expect(try filesHolding(Self.secret, under: cli.dataDir).isEmpty)
        #expect(!run.stdout.contains(Self.secret) && !run.stderr.contains(Self.secret))
    }

    @Test func aWrongSecretFailsTheSourceNamingIt() throws {
        let (cli, server, pipelines) = try setUp(auth: ["type": "basic", "username": "svc", "secret": Self.secret])
        // The definition says SSWS; the server wants basic: refused, as a wrong key would be.
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "http", "--source", "acme_idp",
                             "--base-url", server.url.absoluteString, "--setting", "tenant=acme", "--secret-env", "S"],
                            environment: ["S": Self.secret]).status == 0)
        let run = try cli.run(["run", "saas", "--org", "hooli", "--pipelines", pipelines.path])
        #expect(run.status == 1)
        #expect(run.stderr.contains("hooli: the acme_idp integration failed: 127.0.0.1 refused the credentials (HTTP 401) for users/list"),
                "\(run.stderr)")
        let test = try cli.run(["integrations", "test", "--org", "hooli", "--kind", "acme_idp", "--pipelines", pipelines.path])
        #expect(test.status != 0)
    }

    @Test func aMissingSettingOrSourceIsAClearError() throws {
        let (cli, server, pipelines) = try setUp()
        let noSource = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "http", "--base-url", server.url.absoluteString])
        #expect(noSource.status == 2)
        #expect(noSource.stderr.contains("http needs --source NAME"))
        let builtIn = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "http", "--source", "github",
                                   "--base-url", server.url.absoluteString])
        #expect(builtIn.status == 2)
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "http", "--source", "acme_idp",
                             "--base-url", server.url.absoluteString, "--secret-env", "S"], environment: ["S": Self.secret]).status == 0)
        let run = try cli.run(["run", "saas", "--org", "hooli", "--pipelines", pipelines.path])
        #expect(run.status == 1)
        #expect(run.stderr.contains("needs the setting 'tenant' (integrations add --setting tenant=…)"), "\(run.stderr)")
    }

    /// Mistakes in a declaration are reported by lint at their file, line and column.
    @Test func lintPointsAtMistakesInADeclaration() throws {
        let cli = try CLI(demo: false)
        let folder = cli.dataDir.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try """
        name: bad
        description: Broken declarations.
        sources:
          - name: github
            type: http
            requests:
              - {operation: a, path: /x}
          - name: crm
            type: soap
            auth: {header: "X Key"}
            requests:
              - operation: contacts/list
                path: /contacts/{id
                pagination: {type: cursor}
              - operation: deals/list
                path: deals
                resource: "{id}"
        stages:
          - type: collect
            sources: [crm, erp]
        """.write(to: folder.appendingPathComponent("bad.yml"), atomically: true, encoding: .utf8)
        let lint = try cli.run(["lint", folder.path])
        #expect(lint.status == 1)
        for expected in [
            "bad.yml:4:11: error: source name 'github' is a built-in source's; choose another [duplicate-source]",
            "bad.yml:9:11: error: unknown source type 'soap'",
            "bad.yml:10:20: error: auth header 'X Key' is not an HTTP header name [invalid-header]",
            "bad.yml:13:15: error: path '/contacts/{id': a '{' without its '}' [invalid-template]",
            "bad.yml:14:28: error: unknown pagination 'cursor'",
            "bad.yml:16:15: error: path 'deals' must start with '/'",
            "bad.yml:17:9: error: 'resource' applies to each item: name the list with 'each' [missing-key]",
            "bad.yml:20:20: error: unknown source 'erp'",
        ] {
            #expect(lint.stdout.contains(expected) || lint.stderr.contains(expected), "missing: \(expected)\n\(lint.stdout)\(lint.stderr)")
        }
    }
}
