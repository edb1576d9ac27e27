import Foundation
import PipelineTesting
import Testing

/// A webhook receiver and an SMTP sink on loopback (`fixtures/tools/notify_sink.py`, aiosmtpd).
final class NotifySink {
    let process = Process()
    let folder: URL
    let webhookPort: Int
    let smtpPort: Int
    static let secret = "whsec-test-5e3c"

    init() throws {
        folder = try ExternalTool.temporaryDirectory()
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", CLI.projectRoot.appendingPathComponent("fixtures/tools/notify_sink.py").path, folder.path, Self.secret]
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let ports = Dictionary(uniqueKeysWithValues: line.split(whereSeparator: \.isWhitespace).compactMap { part -> (String, Int)? in
            let pair = part.split(separator: "=")
            return pair.count == 2 ? (String(pair[0]), Int(pair[1]) ?? 0) : nil
        })
        guard let webhook = ports["webhook"], let smtp = ports["smtp"] else {
            process.terminate()
            throw NSError(domain: "notify_sink", code: 1, userInfo: [NSLocalizedDescriptionKey: "the sink did not start: \(line)"])
        }
        webhookPort = webhook
        smtpPort = smtp
    }

    deinit { process.terminate() }

    func records(_ name: String) throws -> [[String: Any]] {
        guard let text = try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
    }
}

@Suite(.serialized) struct NotifyTests {
    /// A definition like `light` with a notify stage, in a folder beside the shipped catalog.
    func pipelines(on events: String = "[run_failed, regression, stale_evidence]") throws -> URL {
        try CLI.pipelinesFolder(["watched.yml": """
            name: watched
            description: GitHub evidence checked against SOC 2, with notices.
            stages:
              - type: collect
                sources: [github]
              - type: validate
                frameworks: [soc2]
              - type: store
              - type: score
                frameworks: [soc2]
              - type: notify
                on: \(events)
                webhook: { url_env: TEST_WEBHOOK_URL, secret_env: TEST_WEBHOOK_SECRET }
                email: { server_env: TEST_SMTP_URL, from: compliance@lightsail.example, to: [security@acme.example, ciso@acme.example] }
            """])
    }

    /// initech's revoked credentials make its run fail a source; globex has an answer that came
    /// back 500 (evidence not collected); acme has nothing to say. Each notice goes to the webhook,
    /// signed, and by email, to both recipients.
    @Test(.needs("python3")) func failuresAndStaleEvidenceAreNotifiedByWebhookAndEmail() throws {
        let sink = try NotifySink()
        let cli = try CLI()
        let folder = try pipelines()
        let result = try cli.run(["run", "watched", "--all-orgs", "--quiet", "--pipelines", folder.path],
                                 environment: ["TEST_WEBHOOK_URL": "http://127.0.0.1:\(sink.webhookPort)/hooks/lightsail",
                                               "TEST_WEBHOOK_SECRET": NotifySink.secret,
                                               "TEST_SMTP_URL": "smtp://127.0.0.1:\(sink.smtpPort)"])
        #expect(result.status == 1, "\(result.stderr)")  // initech's source failed
        let posts = try sink.records("webhook.jsonl")
        let notices = Dictionary(uniqueKeysWithValues: posts.compactMap { post -> (String, [String: Any])? in
            guard let notice = (post["body"] as? [String: Any])?["lightsail"] as? [String: Any],
                  let org = notice["organization_id"] as? String else { return nil }
            return (org, post)
        })
        #expect(Set(notices.keys) == ["globex", "initech"], "\(posts)")
        #expect(posts.allSatisfy { $0["signature_valid"] as? Bool == true })
        func kinds(_ org: String) -> [String] {
            (((notices[org]?["body"] as? [String: Any])?["lightsail"] as? [String: Any])?["events"] as? [[String: Any]] ?? [])
                .compactMap { $0["kind"] as? String }
        }
        #expect(kinds("initech").contains("run_failed"))
        #expect(kinds("globex") == ["stale_evidence"])
        let text = (notices["globex"]?["body"] as? [String: Any])?["text"] as? String ?? ""
        #expect(text.contains("globex") && text.contains("not collected") && text.contains("plans@main"), "\(text)")

        let mails = try sink.records("mail.jsonl")
        #expect(mails.count == 2, "\(mails)")
        for mail in mails {
            #expect(mail["mail_from"] as? String == "compliance@lightsail.example")
            #expect(mail["rcpt_tos"] as? [String] == ["security@acme.example", "ciso@acme.example"])
            #expect((mail["content_type"] as? String)?.contains("charset=utf-8") == true)
        }
        let subjects = mails.compactMap { $0["subject"] as? String }.sorted()
        #expect(subjects.first?.hasPrefix("Lightsail watched for globex: stale_evidence") == true, "\(subjects)")
        #expect(subjects.last?.hasPrefix("Lightsail watched for initech: run_failed") == true, "\(subjects)")
    }

    /// A receiver that answers 500 and an SMTP server that is down: the run's outcome is what it
    /// would have been, and the failure to notify is logged.
    @Test(.needs("python3")) func aNoticeThatCannotBeSentNeverFailsTheRun() throws {
        let sink = try NotifySink()
        let cli = try CLI()
        let folder = try pipelines()
        let result = try cli.run(["run", "watched", "--org", "globex", "--pipelines", folder.path],
                                 environment: ["TEST_WEBHOOK_URL": "http://127.0.0.1:\(sink.webhookPort)/hooks/fail",
                                               "TEST_WEBHOOK_SECRET": NotifySink.secret, "TEST_SMTP_URL": "smtp://127.0.0.1:1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("could not notify") && result.stderr.contains("the webhook answered 500")
                && result.stderr.contains("email:"), "\(result.stderr)")
        #expect(try sink.records("webhook.jsonl").count == 1)
        // A receiver that cannot be reached is named by its variable and host, never its path
        // (a webhook's path is its secret).
        let down = try cli.run(["run", "watched", "--org", "globex", "--pipelines", folder.path],
                               environment: ["TEST_WEBHOOK_URL": "http://127.0.0.1:1/services/T0SECRET/B0SECRET/xoxsecret",
                                             "TEST_WEBHOOK_SECRET": NotifySink.secret, "TEST_SMTP_URL": "smtp://127.0.0.1:1"])
        #expect(down.status == 0 && down.stderr.contains("the webhook (TEST_WEBHOOK_URL) could not be reached"), "\(down.stderr)")
        #expect(!down.stderr.contains("SECRET") && !down.stderr.contains("xoxsecret"), "\(down.stderr)")
        // An unset variable is named, not guessed.
        let unset = try cli.run(["run", "watched", "--org", "globex", "--pipelines", folder.path])
        #expect(unset.status == 0 && unset.stderr.contains("TEST_WEBHOOK_URL is not set"), "\(unset.stderr)")
    }

    @Test func lintRefusesANotifyStageThatNamesNowhereOrABadAddress() throws {
        let cli = try CLI()
        let folder = try pipelines()
        let file = folder.appendingPathComponent("watched.yml")
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: "to: [security@acme.example, ciso@acme.example]", with: "to: [\"security@acme.example\\r\\nBcc: x@y.z\"]")
            .replacingOccurrences(of: "url_env: TEST_WEBHOOK_URL", with: "url_env: http://hooks.example")
            .write(to: file, atomically: true, encoding: .utf8)
        let lint = try cli.run(["lint", "--pipelines", folder.path, file.path])
        #expect(lint.status == 1, "\(lint.stdout)")
        #expect(lint.stdout.contains("[invalid-variable]") && lint.stdout.contains("[invalid-address]"), "\(lint.stdout)")
    }
}
