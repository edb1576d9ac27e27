import CCurl
import Cryptography
import Foundation
import Pipeline

/// Sends run notices: a webhook POST (Slack-compatible JSON with the notice's fields beside the
/// text, signed with HMAC-SHA256 over the timestamp and the body, as Slack and Stripe sign theirs)
/// and email over SMTP, both through libcurl. URLs, credentials and the signing key come from the
/// environment variables the definition names.
public struct CurlNotifier: Notifier {
    let http: any HTTPTransport
    let mailer: CurlMailer
    let environment: [String: String]
    /// The time a signature is made at (a parameter for tests).
    let now: @Sendable () -> Date

    public init(http: any HTTPTransport = CurlHTTPClient(), mailer: CurlMailer = CurlMailer(),
                environment: [String: String] = ProcessInfo.processInfo.environment,
                now: @escaping @Sendable () -> Date = Date.init) {
        self.http = http
        self.mailer = mailer
        self.environment = environment
        self.now = now
    }

    public static let signatureHeader = "X-Lightsail-Signature"
    public static let timestampHeader = "X-Lightsail-Timestamp"

    public func send(_ notice: RunNotice, options: NotifyOptions) async throws {
        var failures: [String] = []
        if let webhook = options.webhook {
            do { try await post(notice, webhook) } catch { failures.append("webhook: \((error as? PipelineError)?.message ?? "\(error)")") }
        }
        if let email = options.email {
            do { try await mail(notice, email) } catch { failures.append("email: \((error as? PipelineError)?.message ?? "\(error)")") }
        }
        if !failures.isEmpty { throw PipelineError(.transport, failures.joined(separator: "; ")) }
    }

    func variable(_ name: String) throws -> String {
        guard let value = environment[name], !value.isEmpty else {
            throw PipelineError(.configuration, "\(name) is not set")
        }
        return value
    }

    /// The text a person reads, in Slack's mrkdwn and plain alike.
    static func text(_ notice: RunNotice) -> String {
        var lines = ["Lightsail: \(notice.pipeline) for \(notice.organizationName) (\(notice.organizationID)), run \(notice.runID)"]
        for event in notice.events {
            lines.append("• \(event.summary)")
            lines += event.details.prefix(10).map { "    \($0)" }
            if event.details.count > 10 { lines.append("    and \(event.details.count - 10) more") }
        }
        return lines.joined(separator: "\n")
    }

    /// Slack reads `text`; a receiver of its own reads `lightsail`, the notice itself.
    struct WebhookBody: Encodable {
        let text: String
        let lightsail: RunNotice
    }

    static func body(_ notice: RunNotice) throws -> Data {
        try JSONValueEncoder.canonicalData(WebhookBody(text: text(notice), lightsail: notice))
    }

    func post(_ notice: RunNotice, _ webhook: NotifyOptions.Webhook) async throws {
        guard let url = URL(string: try variable(webhook.urlVariable)), let scheme = url.scheme?.lowercased(),
              ["https", "http"].contains(scheme), url.host != nil else {
            throw PipelineError(.configuration, "\(webhook.urlVariable) is not an http(s) URL")
        }
        let body = try Self.body(notice)
        var headers = [("Content-Type", "application/json")]
        if let secretName = webhook.secretVariable {
            let timestamp = String(Int(now().timeIntervalSince1970))
            let signed = Data(timestamp.utf8) + Data(".".utf8) + body
            let mac = try Digest.hmacSHA256(key: Data(try variable(secretName).utf8), data: signed)
            headers += [(Self.timestampHeader, timestamp), (Self.signatureHeader, "sha256=" + Digest.hex(mac))]
        }
        let response: HTTPResponse
        do {
            response = try await http.send(HTTPRequest(method: "POST", url: url, headers: headers, body: .data(body)))
        } catch let error as PipelineError {
            // A webhook's path is its secret (Slack's /services/T…/B…/…): name the host only.
            let message = error.message.replacingOccurrences(of: CurlHTTPClient.safeTarget(url), with: "\(url.scheme ?? "https")://\(url.host ?? "?")/…")
            throw PipelineError(error.code, "the webhook (\(webhook.urlVariable)) could not be reached: \(message)", fields: error.fields)
        }
        guard (200..<300).contains(response.status) else {
            throw PipelineError(.transport, "the webhook answered \(response.status)", fields: [.httpStatus: String(response.status)])
        }
    }

    func mail(_ notice: RunNotice, _ email: NotifyOptions.Email) async throws {
        guard let server = URL(string: try variable(email.serverVariable)), let scheme = server.scheme?.lowercased(),
              ["smtp", "smtps"].contains(scheme), server.host != nil else {
            throw PipelineError(.configuration, "\(email.serverVariable) is not an smtp:// or smtps:// URL")
        }
        let kinds = notice.events.map(\.kind.rawValue).joined(separator: ", ")
        let message = MailMessage(from: email.from, to: email.to,
                                  subject: "Lightsail \(notice.pipeline) for \(notice.organizationID): \(kinds)",
                                  text: Self.text(notice) + "\n", date: now())
        try await mailer.send(message, server: server)
    }
}

