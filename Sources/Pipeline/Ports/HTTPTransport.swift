import Foundation

public struct HTTPRequest: Sendable, Hashable {
    public var method: String
    public var url: URL
    public var headers: [(String, String)]
    public var body: Data

    public init(method: String = "GET", url: URL, headers: [(String, String)] = [], body: Data = Data()) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// `GET /orgs/acme?per_page=100`: what the request asked, without host or credentials.
    public var summary: String {
        var target = url.path
        if let query = url.query, !query.isEmpty { target += "?" + query }
        return "\(method) \(target)"
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.method == rhs.method && lhs.url == rhs.url && lhs.body == rhs.body
            && lhs.headers.map { "\($0.0): \($0.1)" } == rhs.headers.map { "\($0.0): \($0.1)" }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(method)
        hasher.combine(url)
        hasher.combine(body)
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header pairs in the order received; names compare case-insensitively.
    public var headers: [(String, String)]
    public var body: Data

    public init(status: Int, headers: [(String, String)] = [], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }
}

/// Sends one HTTP request. The live transport (libcurl) and the replay transport (recorded
/// fixtures) both stand behind it; a source never knows which it has.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// Wraps a transport with the pipeline's retry policy and per-request timeout. Transient
/// failures (timeouts, 429, 5xx, errors marked transient) are retried; everything else is not.
public struct ResilientTransport: HTTPTransport {
    public let base: any HTTPTransport
    public let retry: RetryPolicy
    public let timeout: Duration
    let sleeper: Sleeper

    public init(base: any HTTPTransport, retry: RetryPolicy, timeout: Duration, sleeper: Sleeper = .continuous) {
        self.base = base
        self.retry = retry
        self.timeout = timeout
        self.sleeper = sleeper
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await retry.run(sleeper: sleeper, isTransient: { error in
            (error as? PipelineError)?.isTransient ?? false
        }) {
            let response = try await withTimeout(self.timeout, "\(request.summary)") {
                try await self.base.send(request)
            }
            if Self.isTransientStatus(response) {
                throw PipelineError(.transport, "answered \(response.status)", transient: true)
            }
            return response
        }
    }

    static func isTransientStatus(_ response: HTTPResponse) -> Bool {
        response.status == 429 || (500...599).contains(response.status) && response.status != 501
    }
}
