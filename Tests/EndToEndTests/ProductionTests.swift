import Foundation
import PipelineTesting
import Testing

/// The built binary against the production pair: PostgreSQL (as the ordinary role) and S3 on moto.
struct Production {
    let database: String
    let adminDatabaseURL: String
    let ownerURL: String
    let appURL: String
    let storage: String
    let openStorage: String?
    let environment: [String: String]
    let cli: CLI

    /// A fresh database (migrated through `pipeline db migrate` as the owner) and a fresh prefix.
    static func make() throws -> Production {
        let pg = try Peers.requirePostgres()
        let s3 = try Peers.requireS3()
        let name = "lightsail_e2e_" + UUID().uuidString.prefix(8).lowercased()
        let created = try ExternalTool.run("psql", [pg.adminURL, "-Xqc", "CREATE DATABASE \(name) OWNER lightsail_owner"])
        guard created.status == 0 else { throw NSError(domain: "psql", code: 1, userInfo: [NSLocalizedDescriptionKey: created.stderr]) }
        let prefix = "e2e-\(UUID().uuidString.prefix(8).lowercased())"
        let production = Production(
            database: name, adminDatabaseURL: Peers.url(pg.adminURL, database: name),
            ownerURL: Peers.url(pg.ownerURL, database: name), appURL: Peers.url(pg.appURL, database: name),
            storage: "s3://\(s3.bucket)/\(prefix)?endpoint=\(s3.endpoint)&region=us-east-1",
            openStorage: s3.openEndpoint.map { "s3://\(s3.bucket)/\(prefix)?endpoint=\($0)&region=us-east-1" },
            environment: ["AWS_ACCESS_KEY_ID": s3.accessKeyID, "AWS_SECRET_ACCESS_KEY": s3.secretAccessKey],
            cli: try CLI(demo: false))
        let migrated = try production.cli.run(["db", "migrate", "--database", production.ownerURL])
        guard migrated.status == 0 else { throw ToolFailure("db migrate", migrated) }
        let imported = try production.run(["orgs", "import"] + CLI.demo)
        guard imported.status == 0 else { throw ToolFailure("orgs import", imported) }
        return production
    }

    @discardableResult
    func run(_ arguments: [String], storage: String? = nil, database: String? = nil) throws -> ToolResult {
        try cli.run(arguments + ["--database", database ?? appURL, "--storage", storage ?? self.storage], environment: environment)
    }

    /// SQL as the superuser, which row-level security does not confine (for counting across tenants).
    func sql(_ query: String) throws -> String {
        try ExternalTool.run("psql", [adminDatabaseURL, "-XAtqc", query]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

@Suite(.serialized) struct ProductionTests {
    @Test func migrateIsIdempotentAndHealthReportsBothChecks() throws {
        let p = try Production.make()
        let again = try p.cli.run(["db", "migrate", "--database", p.ownerURL])
        #expect(again.status == 0)
        #expect(again.stdout.contains("schema already at version"))
        let health = try p.run(["health"])
        #expect(health.status == 0, "\(health.stdout)\(health.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(health.stdout.utf8)) as? [String: Any]
        #expect(object?["status"] as? String == "healthy")
        let checks = object?["checks"] as? [String: [String: Any]]
        #expect(checks?["database"]?["status"] as? String == "ok")
        #expect(checks?["database"]?["backend"] as? String == "postgresql")
        #expect(checks?["storage"]?["status"] as? String == "ok")
        #expect(checks?["storage"]?["backend"] as? String == "s3")
        #expect(object?["timestamp"] is String)
    }

    @Test func theReportRunsEndToEndOnPostgresAndS3WithoutDuplicates() throws {
        let p = try Production.make()
        let first = try p.run(["run", "report", "--org", "acme", "--quiet", "--as-of", "2026-11-28T00:00:00Z"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("acme: score 83% (iso27001 82%, soc2 84%)"))
        let bundle = try #require(line(first.stdout, "bundle:")?.split(separator: " ").last.map(String.init))
        #expect(bundle.hasPrefix("s3://lightsail-test/e2e-"))
        #expect(line(first.stdout, "link:")?.contains("X-Amz-Signature=") == true)
        #expect(try p.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'") == "52")
        #expect(try p.sql("SELECT count(DISTINCT organization_id) FROM evidence WHERE source <> 'upload'") == "1")

        let second = try p.run(["run", "report", "--org", "acme", "--quiet"])
        #expect(second.status == 0)
        #expect(line(second.stdout, "evidence:") == "evidence: 49 collected, 0 new, 0 not collected")
        #expect(try p.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'") == "52")
        #expect(try p.sql("SELECT count(*) FROM runs WHERE status = 'succeeded' AND pipeline = 'report'") == "2")
        let audit = try p.sql("SELECT action || ':' || count(*) FROM audit_log GROUP BY action ORDER BY action")
        #expect(audit.contains("evidence.stored:5"))  // the report's, and each of the 4 imported documents (acme 3, globex 1)
        #expect(audit.contains("export.created:2"))
        #expect(audit.contains("export.shared:2"))
        #expect(audit.contains("run.started:6"))  // two report runs, four document uploads

        // The bundle in S3 is the one the report names, whole and verifiable.
        let zip = p.cli.dataDir.appendingPathComponent("bundle.zip")
        let key = String(bundle.dropFirst("s3://lightsail-test/".count))
        let fetch = try ExternalTool.run("python3", ["-c", """
            import boto3, sys, os
            s3 = boto3.session.Session(region_name="us-east-1").client("s3", endpoint_url=sys.argv[1])
            s3.download_file("lightsail-test", sys.argv[2], sys.argv[3])
            """, Peers.s3!.endpoint, key, zip.path], environment: p.environment)
        #expect(fetch.status == 0, "\(fetch.stderr)")
        #expect(try ExternalTool.run("unzip", ["-t", zip.path]).stdout.contains("No errors detected"))

        // The second export's manifest links to the first's (the store's latest export before its clock).
        let list = try p.run(["exports", "list", "--org", "acme", "--format", "json"])
        let exports = try #require((try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])?["exports"] as? [[String: Any]])
        #expect(exports.count == 2)
        func manifestHash(_ export: [String: Any]) -> String? {
            (export["artifacts"] as? [[String: Any]])?.first { $0["kind"] as? String == "manifest" }?["sha256"] as? String
        }
        let newest = try #require(exports.first)
        let secondZip = p.cli.dataDir.appendingPathComponent("second.zip")
        let secondKey = try #require((newest["artifacts"] as? [[String: Any]])?.first { $0["kind"] as? String == "bundle" }?["key"] as? String)
        let prefix = String(p.storage.dropFirst("s3://lightsail-test/".count).prefix { $0 != "?" })
        let link = try ExternalTool.run("python3", ["-c", """
            import boto3, json, sys, zipfile
            s3 = boto3.session.Session(region_name="us-east-1").client("s3", endpoint_url=sys.argv[1])
            s3.download_file("lightsail-test", sys.argv[2], sys.argv[3])
            print(json.loads(zipfile.ZipFile(sys.argv[3]).read("manifest.json"))["previous"]["manifest_sha256"])
            """, Peers.s3!.endpoint, "\(prefix)/\(secondKey)", secondZip.path], environment: p.environment)
        #expect(link.status == 0, "\(link.stderr)")
        #expect(link.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == manifestHash(exports[1]))
        let publicKey = p.cli.dataDir.appendingPathComponent("lightsail.pem")
        try p.run(["keys", "export-public"]).stdout.write(to: publicKey, atomically: true, encoding: .utf8)
        let verify = try ExternalTool.run(CLI.binary, ["bundle", "verify", secondZip.path, "--public-key", publicKey.path, "--previous", zip.path])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("chain:     follows \(exports[1]["id"] as? String ?? "?")"))
    }

    /// An admin shares an export: the auditor downloads it through the presigned link and checks
    /// it offline; the share is in the audit log and the export list; a member may not share.
    @Test func anExportIsSharedWithAnAuditorWhoDownloadsAndVerifiesIt() throws {
        let p = try Production.make()
        let run = try p.run(["run", "report", "--org", "acme", "--quiet", "--as-of", "2026-11-28T00:00:00Z"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let list = try p.run(["exports", "list", "--org", "acme", "--format", "json"])
        let exports = try #require((try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any])?["exports"] as? [[String: Any]])
        let id = try #require(exports.first?["id"] as? String)
        // moto answers a presigned GET with 500 while it checks signatures, so the bundle is copied
        // to the second server (the same bucket, without signature checking), which the link names.
        guard let open = p.openStorage, let openEndpoint = Peers.s3?.openEndpoint else {
            try Peers.missing("the second moto_server (without signature checking)")
        }
        let prefix = String(p.storage.dropFirst("s3://lightsail-test/".count).prefix { $0 != "?" })
        let copy = try ExternalTool.run("python3", ["-c", """
            import boto3, sys
            def client(url): return boto3.session.Session(region_name="us-east-1").client("s3", endpoint_url=url)
            body = client(sys.argv[1]).get_object(Bucket="lightsail-test", Key=sys.argv[3])["Body"].read()
            client(sys.argv[2]).put_object(Bucket="lightsail-test", Key=sys.argv[3], Body=body)
            """, Peers.s3!.endpoint, openEndpoint, "\(prefix)/acme/exports/\(id).zip"], environment: p.environment)
        #expect(copy.status == 0, "\(copy.stderr)")
        #expect((exports.first?["artifacts"] as? [[String: Any]])?.compactMap { $0["kind"] as? String }.sorted() == ["bundle", "manifest", "pdf"])
        let share = ["export", "share", "--org", "acme", "--export", id, "--expires", "2d", "--to", "auditor@firm.example"]
        let byMember = try p.run(share + ["--actor", "mel@acme.example"], storage: open)
        #expect(byMember.status == 1)
        #expect(byMember.stderr.contains("may not share exports (needs reports:manage)"), "\(byMember.stderr)")
        let shared = try p.run(share + ["--actor", "ada@acme.example"], storage: open)
        #expect(shared.status == 0, "\(shared.stderr)")
        let link = shared.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(link.contains("X-Amz-Expires=172800") && link.contains("X-Amz-Signature="))
        let zip = p.cli.dataDir.appendingPathComponent("downloaded.zip")
        #expect(try ExternalTool.run("curl", ["-sSf", "-o", zip.path, link]).status == 0)
        let key = p.cli.dataDir.appendingPathComponent("lightsail.pem")
        try p.run(["keys", "export-public"], storage: open).stdout.write(to: key, atomically: true, encoding: .utf8)
        let verify = try ExternalTool.run(CLI.binary, ["bundle", "verify", zip.path, "--public-key", key.path])
        #expect(verify.status == 0, "\(verify.stdout)")
        #expect(verify.stdout.contains("signature: valid"))
        #expect(try p.sql("SELECT actor || ' ' || entity_id || ' ' || detail FROM audit_log WHERE action = 'export.shared' AND actor <> 'system'")
                    .hasPrefix("ada@acme.example \(id) with auditor@firm.example until "))
        #expect(try p.run(["exports", "list", "--org", "acme"], storage: open).stdout.contains("shared by ada@acme.example: with auditor@firm.example until"))
        // An unknown export is named.
        let unknown = try p.run(["export", "share", "--org", "acme", "--export", "exp-000000", "--to", "auditor@firm.example"], storage: open)
        #expect(unknown.status == 2 && unknown.stderr.contains("acme has no export exp-000000"))
    }

    @Test func aViewerCannotRunAndTheRefusalIsAudited() throws {
        let p = try Production.make()
        let result = try p.run(["run", "report", "--org", "acme", "--actor", "vic@acme.example", "--quiet"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("refused: vic@acme.example is a viewer of acme and may not run pipelines"))
        #expect(try p.sql("SELECT count(*) FROM runs WHERE pipeline = 'report'") == "0")
        #expect(try p.sql("SELECT actor || ' ' || action || ' ' || entity_id FROM audit_log WHERE action = 'access.refused'")
                == "vic@acme.example access.refused evidence:create")
        let stranger = try p.run(["run", "report", "--org", "acme", "--actor", "eve@evil.example", "--quiet"])
        #expect(stranger.stderr.contains("eve@evil.example is not a member of acme"))
        let admin = try p.run(["run", "report", "--org", "acme", "--actor", "ada@acme.example", "--quiet"])
        #expect(admin.status == 0)
        #expect(try p.sql("SELECT DISTINCT actor FROM runs WHERE pipeline = 'report'") == "ada@acme.example")
    }

    @Test func membersAreManagedByThoseAllowedTo() throws {
        let p = try Production.make()
        let byMember = try p.run(["members", "add", "--org", "acme", "--user", "new@acme.example", "--role", "admin",
                                  "--actor", "mel@acme.example"])
        #expect(byMember.status == 1)
        #expect(byMember.stderr.contains("may not manage members (needs users:manage)"))
        let byOwner = try p.run(["members", "add", "--org", "acme", "--user", "new@acme.example", "--role", "viewer",
                                 "--actor", "olive@acme.example"])
        #expect(byOwner.status == 0)
        #expect(try p.run(["members", "list", "--org", "acme"]).stdout.contains("viewer\tnew@acme.example"))
        #expect(try p.sql("SELECT count(*) FROM audit_log WHERE action = 'member.added' AND entity_id = 'new@acme.example'") == "1")
    }

    @Test func evidenceIsUploadedThroughAPresignedPutAndRecordedOnce() throws {
        let p = try Production.make()
        guard let open = p.openStorage else { try Peers.missing("the second moto_server (without signature checking)") }
        let file = p.cli.dataDir.appendingPathComponent("access-review-q3.pdf")
        try Data("%PDF-1.4 quarterly access review".utf8).write(to: file)
        let args = ["evidence", "upload", "--org", "acme", "--file", file.path, "--controls", "CC6.1,A.5.17",
                    "--actor", "mel@acme.example"]
        // moto checks no signature of a presigned URL (it answers 500 without an Authorization
        // header), so the upload runs against the open server.
        let first = try p.run(args, storage: open)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("stored"))
        let id = try #require(first.stdout.split(separator: " ").dropFirst(2).first.map(String.init))
        #expect(try p.sql("SELECT source || ' ' || resource || ' ' || size FROM evidence WHERE id = '\(id)'")
                == "upload access-review-q3.pdf 32")
        #expect(try p.sql("SELECT string_agg(control, ',' ORDER BY control) FROM evidence_controls WHERE evidence_id = '\(id)'")
                == "A.5.17,CC6.1")
        let again = try p.run(args, storage: open)
        #expect(again.stdout.contains("already stored"))
        #expect(try p.sql("SELECT count(*) FROM evidence WHERE resource = 'access-review-q3.pdf'") == "1")
        let viewer = try p.run(args.dropLast(2) + ["--actor", "vic@acme.example"], storage: open)
        #expect(viewer.status == 1)
        let unknown = try p.run(["evidence", "upload", "--org", "acme", "--file", file.path, "--controls", "CC99.9"], storage: open)
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("unknown control 'CC99.9'"))
    }

    @Test func aDatabaseThatIsDownIsAClearErrorAtStart() throws {
        let p = try Production.make()
        let result = try p.run(["run", "report", "--org", "acme"], database: "postgres://lightsail_pipeline:pipeline-secret@127.0.0.1:1/nothing")
        #expect(result.status == 3)
        #expect(result.stderr.contains("cannot connect to PostgreSQL at postgres://lightsail_pipeline:***@127.0.0.1:1/nothing"))
        #expect(!result.stderr.contains("pipeline-secret"))
        let health = try p.run(["health"], database: "postgres://x:y@127.0.0.1:1/nothing")
        #expect(health.status == 1)
        #expect(health.stdout.contains("\"status\" : \"unhealthy\""))
    }

    /// Objects go up before rows, so a refused storage leaves no row pointing at a missing object.
    @Test func wrongStorageCredentialsFailTheRunClearlyAndStoreNoRowWithoutItsObject() throws {
        let p = try Production.make()
        var environment = p.environment
        environment["AWS_SECRET_ACCESS_KEY"] = "wrong"
        let result = try p.cli.run(["run", "report", "--org", "acme", "--quiet", "--database", p.appURL, "--storage", p.storage],
                                   environment: environment)
        #expect(result.status == 1)
        #expect(result.stderr.contains("acme: the storage refused the credentials (SignatureDoesNotMatch, HTTP 403)"))
        #expect(result.stderr.contains("check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"))
        #expect(!result.stderr.contains("wrong"))
        #expect(try p.sql("SELECT status FROM runs WHERE pipeline <> 'evidence-upload'") == "failed")
        #expect(try p.sql("SELECT count(*) FROM evidence WHERE source <> 'upload'") == "0")
    }

    /// The server ends the pipeline's sessions while a run waits on a slow API: the pool drops the
    /// ended sessions instead of lending them out, and the run completes with nothing duplicated.
    @Test func sessionsEndedMidRunAreReplacedAndTheRunCompletes() throws {
        let p = try Production.make()
        let slow = try slowRecording(org: "acme", path: "/repos/acme-corp/web/vulnerability-alerts", delayMS: 1500)
        #expect(try p.run(["integrations", "add", "--org", "acme", "--kind", "github", "--account", "acme-corp",
                           "--recording", slow.path]).status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["run", "report", "--org", "acme", "--quiet", "--database", p.appURL, "--storage", p.storage]
        process.environment = ProcessInfo.processInfo.environment.merging(p.environment) { _, b in b }
        process.currentDirectoryURL = CLI.projectRoot
        let stderr = Pipe()
        process.standardOutput = Pipe()
        process.standardError = stderr
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, try p.sql("SELECT count(*) FROM runs WHERE status = 'running'") != "1" {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let ended = try p.sql("""
            SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = '\(p.database)' AND usename = 'lightsail_pipeline') t
            """)
        process.waitUntilExit()
        let message = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(Int(ended) ?? 0 >= 1)
        #expect(process.terminationStatus == 0, "\(message)")
        #expect(try p.sql("SELECT status FROM runs WHERE pipeline <> 'evidence-upload'") == "succeeded")
        #expect(try p.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'") == "52")
        let rerun = try p.run(["run", "report", "--org", "acme", "--quiet"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(try p.sql("SELECT count(*) FROM evidence WHERE organization_id = 'acme'") == "52")
    }

    /// An organization added by hand, with live GitHub (the fixture server), AWS (moto, through
    /// the customer's role) and Google Workspace (the fixture server), runs end to end on
    /// PostgreSQL and S3; its credentials are sealed under LIGHTSAIL_ENCRYPTION_KEY and appear
    /// in no table, log or bundle.
    @Test func liveIntegrationsRunEndToEndWithCredentialsSealedInPostgres() throws {
        let p = try Production.make()
        let s3 = try Peers.requireS3()
        let token = "ghp_FixtureToken0123456789abcdefABCDEF"
        let keys = try FixtureAPIServer.rsaKeyPair()
        var world = hooliWorld(token: token)
        world["google"] = directoryWorld(publicKey: keys.publicPEM)["google"]
        let server = try FixtureAPIServer(world: world)
        let key = Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
        let environment = ["LIGHTSAIL_ENCRYPTION_KEY": key, "GH": token, "AK": s3.accessKeyID, "SK": s3.secretAccessKey]
        func run(_ arguments: [String]) throws -> ToolResult {
            try p.cli.run(arguments + ["--database", p.appURL, "--storage", p.storage], environment: p.environment.merging(environment) { _, b in b })
        }
        // Without a key, production refuses to store a credential.
        let keyless = try p.run(["orgs", "add", "hooli", "--name", "Hooli XYZ", "--owner", "gavin@hooli.example"])
        #expect(keyless.status == 0, "\(keyless.stderr)")
        let refused = try p.cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli", "--token-env", "GH",
                                     "--api-url", server.url.absoluteString, "--database", p.appURL, "--storage", p.storage],
                                    environment: p.environment.merging(["GH": token]) { _, b in b })
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("no encryption key for integration credentials: set LIGHTSAIL_ENCRYPTION_KEY"))

        #expect(try run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "hooli", "--token-env", "GH",
                         "--api-url", server.url.absoluteString]).status == 0)
        #expect(try run(["integrations", "add", "--org", "hooli", "--kind", "aws", "--access-key-id-env", "AK",
                         "--secret-access-key-env", "SK", "--role-arn", AWSAccount.role(AWSAccount.poor),
                         "--external-id", AWSAccount.externalID, "--endpoint", s3.endpoint]).status == 0)
        let account = p.cli.dataDir.appendingPathComponent("sa.json")
        try JSONSerialization.data(withJSONObject: ["type": "service_account", "private_key": keys.privatePEM, "private_key_id": "k1",
                                                    "client_email": "lightsail@hooli-audit.iam.gserviceaccount.com",
                                                    "token_uri": server.url.appendingPathComponent("token").absoluteString]).write(to: account)
        #expect(try run(["integrations", "add", "--org", "hooli", "--kind", "google_workspace", "--service-account-file", account.path,
                         "--subject", "admin@hooli.example", "--customer", "C01hooli", "--api-url", server.url.absoluteString]).status == 0)
        try FileManager.default.removeItem(at: account)

        let report = try run(["run", "report", "--org", "hooli", "--json"])
        #expect(report.status == 0, "\(report.stderr)")
        let outcome = try runJSON(report)
        #expect((outcome["source_errors"] as? [String: String])?.isEmpty == true)
        #expect(try p.sql("SELECT string_agg(source, ',' ORDER BY source) FROM (SELECT DISTINCT source FROM evidence WHERE organization_id = 'hooli') s") == "aws,github,google_workspace")
        #expect(try p.sql("SELECT count(*) FROM integrations WHERE secret IS NOT NULL AND key_id LIKE 'k-%'") == "3")
        let audit = try p.sql("SELECT string_agg(action, ',' ORDER BY seq) FROM audit_log WHERE organization_id = 'hooli' AND (action LIKE 'integration.%' OR action LIKE 'organization.%')")
        #expect(audit == "organization.created,integration.added,integration.added,integration.added")
        // No secret in any table (as text or bytes), in the output, or in the bundle in S3.
        let dump = try ExternalTool.run("pg_dump", ["--data-only", p.adminDatabaseURL])
        #expect(dump.status == 0, "\(dump.stderr)")
        for secret in [token, s3.secretAccessKey, "PRIVATE KEY"] {
            #expect(!dump.stdout.contains(secret), "the database holds \(secret.prefix(8))…")
            #expect(!report.stdout.contains(secret) && !report.stderr.contains(secret))
        }
        let bundle = try #require((outcome["artifacts"] as? [[String: Any]])?.first { $0["kind"] as? String == "bundle" }?["key"] as? String)
        #expect(bundle.hasPrefix("hooli/exports/"))
    }
}
