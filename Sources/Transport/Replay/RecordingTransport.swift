import Foundation
import Pipeline

/// Passes requests on and writes each exchange to a recording that `ReplayTransport` answers
/// from, with secrets scrubbed: no request header is kept (Authorization, signatures, session
/// tokens live there), query parameters that carry credentials are masked, response headers that
/// set or carry credentials are dropped, and every value of `secrets` is replaced wherever it
/// appears. The live API's own root (a test server, GitHub Enterprise) is written as the public
/// one, so that links in the recording lead where a replay looks. The recording reproduces a
/// run offline and holds nothing that authenticates.
public final class RecordingTransport: HTTPTransport, @unchecked Sendable {
    let base: any HTTPTransport
    let secrets: [String]
    let rewrites: [(from: String, to: String)]
    private let lock = NSLock()
    private let handle: FileHandle
    public let file: URL
    public private(set) var exchanges = 0

    static let secretQueryNames: Set<String> = ["x-amz-signature", "x-amz-credential", "x-amz-security-token",
                                                "access_token", "token", "key", "client_secret", "signature"]
    static let droppedResponseHeaders: Set<String> = ["set-cookie", "authorization", "x-amz-security-token",
                                                      "www-authenticate", "proxy-authenticate"]

    public init(base: any HTTPTransport, file: URL, secrets: [String], rewrites: [(from: String, to: String)] = []) throws {
        self.base = base
        self.file = file
        self.rewrites = rewrites.filter { !$0.from.isEmpty && $0.from != $0.to }
        self.secrets = secrets.filter { $0.count >= 4 }.sorted { $0.count > $1.count }
        guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]),
              let handle = FileHandle(forWritingAtPath: file.path) else {
            throw PipelineError(.storage, "cannot write the recording \(file.path)")
        }
        self.handle = handle
    }

    deinit { try? handle.close() }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let response = try await base.send(request)
        var body = response.body
        if let file = request.responseFile, body.isEmpty { body = (try? Data(contentsOf: file)) ?? Data() }
        var requestObject: [String: Any] = ["method": request.method, "path": scrub(Self.pathAndQuery(request.url))]
        if !request.attributes.isEmpty { requestObject["attributes"] = request.attributes }
        if case .data(let data) = request.body { requestObject["body"] = scrub(String(decoding: data, as: UTF8.self)) }
        let headers = response.headers.filter { !Self.droppedResponseHeaders.contains($0.0.lowercased()) }
            .map { [$0.0, scrub($0.1)] }
        let exchange: [String: Any] = [
            "request": requestObject,
            "response": ["status": response.status, "headers": headers,
                         "body": body.isEmpty ? NSNull() : scrub(String(decoding: body, as: UTF8.self)) as Any],
        ]
        var line = try JSONSerialization.data(withJSONObject: exchange, options: [.sortedKeys, .withoutEscapingSlashes])
        line.append(0x0A)
        try lock.withLock {
            try handle.write(contentsOf: line)
            exchanges += 1
        }
        return response
    }

    public func close() throws {
        try lock.withLock { try handle.synchronize() }
    }

    static func pathAndQuery(_ url: URL) -> String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: true) else { return url.path }
        components.percentEncodedQueryItems = components.percentEncodedQueryItems?.map {
            secretQueryNames.contains($0.name.lowercased()) ? URLQueryItem(name: $0.name, value: "REDACTED") : $0
        }
        let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
        return (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath) + query
    }

    func scrub(_ text: String) -> String {
        var text = text
        for (from, to) in rewrites where text.contains(from) {
            text = text.replacingOccurrences(of: from, with: to)
        }
        for secret in secrets where text.contains(secret) {
            text = text.replacingOccurrences(of: secret, with: "REDACTED")
        }
        return text
    }
}
