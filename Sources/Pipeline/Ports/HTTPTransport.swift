import Foundation

public struct HTTPRequest: Sendable {
    /// What a request sends: nothing, bytes in memory, or a range of a file streamed from disk
    /// (read again from its start on every attempt).
    public enum Body: Sendable, Equatable {
        case none
        case data(Data)
        case file(URL, offset: UInt64, length: UInt64)

        public var length: UInt64 {
            switch self {
            case .none: return 0
            case .data(let data): return UInt64(data.count)
            case .file(_, _, let length): return length
            }
        }
    }

    public var method: String
    public var url: URL
    public var headers: [(String, String)]
    public var body: Body
    /// Where the answer's body goes: nil keeps it in memory (`HTTPResponse.body`); a file receives
    /// it as it arrives (created or truncated on every attempt), and `HTTPResponse.body` is empty.
    public var responseFile: URL?
    /// Facts for the transports beneath, never sent: the AWS signing scope (`aws.service`,
    /// `aws.region`), say. A recording keeps them, and a replay matches on them.
    public var attributes: [String: String] = [:]

    public init(method: String = "GET", url: URL, headers: [(String, String)] = [], body: Body = .none,
                responseFile: URL? = nil, attributes: [String: String] = [:]) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.responseFile = responseFile
        self.attributes = attributes
    }

    public init(method: String = "GET", url: URL, headers: [(String, String)] = [], data: Data) {
        self.init(method: method, url: url, headers: headers, body: data.isEmpty ? .none : .data(data))
    }

    /// `GET /orgs/acme?per_page=100`: what the request asked, without host or credentials.
    public var summary: String {
        var target = url.path
        if let query = url.query, !query.isEmpty { target += "?" + query }
        return "\(method) \(target)"
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
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
/// fixtures) both stand behind it; a source never knows which it has. Bodies may stream from and
/// to files (`HTTPRequest.Body.file`, `HTTPRequest.responseFile`), so large objects never sit in
/// memory.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// Wraps a transport with the pipeline's retry policy and per-request timeout. Transient
/// failures are retried: timeouts, 429, 5xx but 501, and rate limits (403 or 429 with
/// `x-ratelimit-remaining: 0`, a `retry-after`, or a "secondary rate limit" message), waiting at
/// least as long as the server asks. A wait longer than `maxRateLimitWait` fails at once, saying
/// until when. Everything else is answered as it came.
public struct ResilientTransport: HTTPTransport {
    public let base: any HTTPTransport
    public let retry: RetryPolicy
    /// Limit for one attempt; nil for none (large transfers rely on the transport's own stall limit).
    public let timeout: Duration?
    public let maxRateLimitWait: Duration
    let sleeper: Sleeper
    let now: @Sendable () -> Date

    public init(base: any HTTPTransport, retry: RetryPolicy, timeout: Duration?,
                maxRateLimitWait: Duration = .seconds(300), sleeper: Sleeper = .continuous,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.base = base
        self.retry = retry
        self.timeout = timeout
        self.maxRateLimitWait = maxRateLimitWait
        self.sleeper = sleeper
        self.now = now
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await retry.run(sleeper: sleeper, isTransient: { error in
            (error as? PipelineError)?.isTransient ?? false
        }) {
            let response: HTTPResponse
            if let timeout = self.timeout {
                response = try await withTimeout(timeout, "\(request.summary)") { try await self.base.send(request) }
            } else {
                response = try await self.base.send(request)
            }
            if let error = self.classify(response) { throw error }
            return response
        }
    }

    /// The error to retry (or give up on) for a response that is not an answer yet.
    func classify(_ response: HTTPResponse) -> PipelineError? {
        let status = response.status
        let fields: [PipelineError.Field: String] = [.httpStatus: String(status)]
        if let wait = Self.rateLimitWait(response, now: now()) {
            if wait > maxRateLimitWait {
                let until = Timestamp.iso8601(now().addingTimeInterval(Double(wait.components.seconds)))
                return PipelineError(.transport, "answered \(status): rate limited until \(until)", fields: fields)
            }
            return PipelineError(.transport, "answered \(status): rate limited", fields: fields, transient: true, retryAfter: wait)
        }
        if status == 429 || ((500...599).contains(status) && status != 501) {
            return PipelineError(.transport, "answered \(status)", fields: fields, transient: true)
        }
        if status == 400, Self.isAWSThrottling(response) {
            return PipelineError(.transport, "answered \(status): throttled", fields: fields, transient: true)
        }
        return nil
    }

    /// AWS says "slow down" with a 400 and an error code (Throttling, ThrottlingException,
    /// RequestLimitExceeded, TooManyRequestsException) in an XML or JSON body.
    static func isAWSThrottling(_ response: HTTPResponse) -> Bool {
        let head = String(decoding: response.body.prefix(4096), as: UTF8.self)
        return ["Throttling", "RequestLimitExceeded", "TooManyRequestsException", "ThrottledException"].contains { head.contains($0) }
    }

    /// How long a rate-limited answer asks to wait, or nil if it is not rate limited.
    static func rateLimitWait(_ response: HTTPResponse, now: Date) -> Duration? {
        guard response.status == 403 || response.status == 429 else { return nil }
        if let retryAfter = response.header("Retry-After")?.trimmingCharacters(in: .whitespaces) {
            if let seconds = Int(retryAfter), seconds >= 0 { return .seconds(seconds) }
            if let date = httpDate(retryAfter) { return .seconds(max(0, Int(date.timeIntervalSince(now).rounded(.up)))) }
        }
        if response.header("X-RateLimit-Remaining")?.trimmingCharacters(in: .whitespaces) == "0" {
            if let reset = response.header("X-RateLimit-Reset").flatMap({ Double($0.trimmingCharacters(in: .whitespaces)) }) {
                return .seconds(max(1, Int((reset - now.timeIntervalSince1970).rounded(.up))))
            }
            return .seconds(60)
        }
        if String(decoding: response.body.prefix(4096), as: UTF8.self).lowercased().contains("secondary rate limit") {
            return .seconds(60)
        }
        return response.status == 429 ? .zero : nil
    }

    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}

/// An answer kept for a conditional request: what came with the ETag.
public struct CachedAnswer: Sendable, Codable, Equatable {
    public let etag: String
    public let status: Int
    public let headers: [[String]]
    public let body: Data

    public init(etag: String, status: Int, headers: [[String]], body: Data) {
        self.etag = etag
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Where answers for conditional requests are kept, per organization and source.
public protocol HTTPAnswerCache: Sendable {
    func answer(for url: URL) async -> CachedAnswer?
    func keep(_ answer: CachedAnswer, for url: URL) async
}

/// Conditional GETs: a request whose URL answered before with an ETag goes with
/// `If-None-Match`; a 304 is answered with what was kept, so the source sees the same answer at
/// a fraction of the rate limit (GitHub charges nothing for a 304). Answers over `maxBody` bytes,
/// or streamed to a file, are not kept. A cache that cannot be read or written only costs the
/// saving.
public struct ConditionalTransport: HTTPTransport {
    public let base: any HTTPTransport
    public let cache: any HTTPAnswerCache
    public let maxBody: Int

    public init(base: any HTTPTransport, cache: any HTTPAnswerCache, maxBody: Int = 1 << 20) {
        self.base = base
        self.cache = cache
        self.maxBody = maxBody
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard request.method == "GET", request.responseFile == nil, request.header("If-None-Match") == nil else {
            return try await base.send(request)
        }
        let cached = await cache.answer(for: request.url)
        var conditional = request
        if let cached { conditional.headers.append(("If-None-Match", cached.etag)) }
        let response = try await base.send(conditional)
        if response.status == 304, let cached {
            // The kept answer, with the fresh rate-limit and date headers of the 304.
            var headers = cached.headers.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
            for (name, value) in response.headers where name.lowercased().hasPrefix("x-ratelimit") || name.lowercased() == "date" {
                headers.removeAll { $0.0.caseInsensitiveCompare(name) == .orderedSame }
                headers.append((name, value))
            }
            return HTTPResponse(status: cached.status, headers: headers, body: cached.body)
        }
        if response.status == 200, let etag = response.header("ETag"), !etag.isEmpty, response.body.count <= maxBody {
            await cache.keep(CachedAnswer(etag: etag, status: 200, headers: response.headers.map { [$0.0, $0.1] }, body: response.body),
                             for: request.url)
        }
        return response
    }
}

/// At most `permits` requests of one source in flight at once: a collect stage's `concurrency`.
/// A collector may start as much work as it likes; this is what the API sees.
public struct LimitedTransport: HTTPTransport {
    public let base: any HTTPTransport
    let permits: AsyncSemaphore

    public init(base: any HTTPTransport, permits: Int) {
        self.base = base
        self.permits = AsyncSemaphore(permits: max(1, permits))
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await permits.withPermit { try await base.send(request) }
    }
}
