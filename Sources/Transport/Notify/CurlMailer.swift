import CCurl
import Foundation
import Pipeline

/// A plain-text email.
public struct MailMessage: Sendable {
    public var from: String
    public var to: [String]
    public var subject: String
    public var text: String
    public var date: Date

    public init(from: String, to: [String], subject: String, text: String, date: Date) {
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.date = date
    }

    /// The message as RFC 5322 text with CRLF line ends; header values stripped of line breaks
    /// (no header can be injected), the subject encoded when it is not ASCII.
    public func rendered(messageID: String) -> Data {
        func clean(_ value: String) -> String { value.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") }
        let subjectLine = subject.allSatisfy(\.isASCII) ? clean(subject)
            : "=?UTF-8?B?" + Data(clean(subject).utf8).base64EncodedString() + "?="
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let headers = [
            "From: \(clean(from))", "To: \(to.map(clean).joined(separator: ", "))", "Subject: \(subjectLine)",
            "Date: \(formatter.string(from: date))", "Message-ID: <\(clean(messageID))>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
        ]
        let body = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n")
        return Data((headers.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }
}

/// Sends email over SMTP with libcurl: `smtp://` (STARTTLS when the server offers it, the
/// certificate checked), `smtps://` (TLS from the start); credentials from the URL's user info.
public final class CurlMailer: Sendable {
    let executor: BlockingExecutor
    let timeout: Duration

    public init(executor: BlockingExecutor = .shared, timeout: Duration = .seconds(30)) {
        self.executor = executor
        self.timeout = timeout
    }

    public func send(_ message: MailMessage, server: URL) async throws {
        let domain = message.from.split(separator: "@").last.map(String.init) ?? "lightsail.invalid"
        let data = message.rendered(messageID: "\(UUID().uuidString.lowercased())@\(domain)")
        let timeout = self.timeout
        try await executor.run { try Self.perform(data, from: message.from, to: message.to, server: server, timeout: timeout) }
    }

    final class Upload {
        let data: [UInt8]
        var offset = 0
        init(_ data: Data) { self.data = Array(data) }
    }

    static func perform(_ data: Data, from: String, to: [String], server: URL, timeout: Duration) throws {
        guard let handle = curl_easy_init() else { throw PipelineError(.transport, "libcurl could not start a transfer") }
        var recipients: UnsafeMutablePointer<curl_slist>?
        defer {
            curl_slist_free_all(recipients)
            curl_easy_cleanup(handle)
        }
        func set(_ code: CURLcode) throws {
            guard code == CURLE_OK else {
                throw PipelineError(.transport, "libcurl option refused: \(String(cString: curl_easy_strerror(code)))")
            }
        }
        let upload = Upload(data)
        let context = Unmanaged.passUnretained(upload).toOpaque()
        var target = URLComponents(url: server, resolvingAgainstBaseURL: false)
        let user = target?.percentEncodedUser.flatMap { $0.removingPercentEncoding }
        let password = target?.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        target?.user = nil
        target?.password = nil
        let safe = target?.string ?? "smtp server"
        try set(lightsail_curl_setopt_string(handle, CURLOPT_URL, safe))
        if let user { try set(lightsail_curl_setopt_string(handle, CURLOPT_USERNAME, user)) }
        if let password { try set(lightsail_curl_setopt_string(handle, CURLOPT_PASSWORD, password)) }
        try set(lightsail_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout / .milliseconds(1))))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
        if server.scheme?.lowercased() == "smtp" {
            try set(lightsail_curl_setopt_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_TRY.rawValue)))
        }
        try set(lightsail_curl_setopt_string(handle, CURLOPT_MAIL_FROM, "<\(from)>"))
        for recipient in to { recipients = curl_slist_append(recipients, "<\(recipient)>") }
        try set(lightsail_curl_setopt_slist(handle, CURLOPT_MAIL_RCPT, recipients))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_UPLOAD, 1))
        try set(lightsail_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(data.count)))
        try set(lightsail_curl_setopt_read_callback(handle) { buffer, size, count, context in
            let upload = Unmanaged<Upload>.fromOpaque(context!).takeUnretainedValue()
            let length = min(size * count, upload.data.count - upload.offset)
            guard length > 0, let buffer else { return 0 }
            upload.data.withUnsafeBufferPointer { source in
                UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + upload.offset, byteCount: length)
            }
            upload.offset += length
            return length
        })
        try set(lightsail_curl_setopt_pointer(handle, CURLOPT_READDATA, context))
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            var status = 0
            _ = lightsail_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            throw PipelineError(code == CURLE_OPERATION_TIMEDOUT ? .timeout : .transport,
                                "sending mail through \(safe): \(String(cString: curl_easy_strerror(code)))"
                                    + (status > 0 ? " (the server answered \(status))" : ""),
                                fields: [.curlCode: String(code.rawValue)])
        }
        withExtendedLifetime(upload) {}
    }
}
