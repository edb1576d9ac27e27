import Foundation
import Pipeline
import PipelineTesting
import Testing

/// Counts how many bodies run at once.
actor ConcurrencyGauge {
    private(set) var current = 0
    private(set) var peak = 0
    private(set) var finished = 0

    func enter() {
        current += 1
        peak = max(peak, current)
    }

    func leave() {
        current -= 1
        finished += 1
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
    var count: Int { lock.withLock { value } }
}

struct Transient: Error {}
struct Permanent: Error {}

@Suite struct ConcurrencyTests {
    @Test(arguments: [1, 3, 8])
    func noMoreThanTheWidthRunAtOnce(_ width: Int) async throws {
        let gauge = ConcurrencyGauge()
        try await forEachConcurrently(0..<24, width: width) { _ in
            await gauge.enter()
            try await Task.sleep(for: .milliseconds(5))
            await gauge.leave()
        }
        #expect(await gauge.peak == width)
        #expect(await gauge.finished == 24)
    }

    @Test func mappedResultsKeepTheInputOrder() async throws {
        let out = try await mapConcurrently(Array(0..<50), width: 4) { n in
            try await Task.sleep(for: .microseconds(UInt64((50 - n) * 50)))
            return n * n
        }
        #expect(out == (0..<50).map { $0 * $0 })
    }

    @Test func theFirstErrorCancelsTheRestAndIsRethrown() async {
        let started = Counter()
        await #expect(throws: Permanent.self) {
            try await forEachConcurrently(0..<100, width: 2) { n in
                _ = started.next()
                if n == 3 { throw Permanent() }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(started.count < 100)
    }

    @Test func cancellingTheCallerStopsWorkInFlight() async throws {
        let gauge = ConcurrencyGauge()
        let task = Task {
            try await forEachConcurrently(0..<1000, width: 4) { _ in
                await gauge.enter()
                defer { Task { await gauge.leave() } }
                try await Task.sleep(for: .seconds(30))
            }
        }
        while await gauge.peak < 4 { try await Task.sleep(for: .milliseconds(1)) }
        task.cancel()
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: CancellationError.self) { try await task.value }
        // Well before the 30 s each element sleeps (generous, for a loaded machine).
        #expect(clock.now - start < .seconds(20))
        #expect(await gauge.peak == 4)
    }

    @Test func aTimeoutStopsAnOperationThatRunsTooLong() async {
        await #expect(throws: PipelineError.self) {
            try await withTimeout(.milliseconds(20), "slow call") {
                try await Task.sleep(for: .seconds(30))
                return 1
            }
        }
        do {
            _ = try await withTimeout(.milliseconds(20), "slow call") { try await Task.sleep(for: .seconds(30)) }
        } catch let error as PipelineError {
            #expect(error.code == .timeout)
            #expect(error.isTransient)
            #expect(error.description.contains("slow call timed out after 20ms"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aFastOperationIsNotTimedOut() async throws {
        #expect(try await withTimeout(.seconds(5), "fast") { 42 } == 42)
    }
}

@Suite struct RetryTests {
    let policy = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(100), maxBackoff: .milliseconds(300))

    @Test func backoffDoublesAndIsCapped() {
        #expect(policy.ceiling(afterAttempt: 1) == .milliseconds(100))
        #expect(policy.ceiling(afterAttempt: 2) == .milliseconds(200))
        #expect(policy.ceiling(afterAttempt: 3) == .milliseconds(300))
        #expect(policy.ceiling(afterAttempt: 9) == .milliseconds(300))
    }

    @Test func jitterSpreadsTheWaitBelowTheCeiling() {
        #expect(policy.delay(afterAttempt: 2, random: 0) == .zero)
        #expect(policy.delay(afterAttempt: 2, random: 0.5) == .milliseconds(100))
        #expect(policy.delay(afterAttempt: 2, random: 0.999) <= .milliseconds(200))
    }

    @Test func transientErrorsAreRetriedUntilSuccess() async throws {
        let calls = Counter()
        let sleeper = RecordingSleeper()
        let value = try await policy.run(sleeper: sleeper.sleeper, random: { 0.5 }, isTransient: { $0 is Transient }) {
            if calls.next() < 3 { throw Transient() }
            return "ok"
        }
        #expect(value == "ok")
        #expect(calls.count == 3)
        #expect(sleeper.waits == [.milliseconds(50), .milliseconds(100)])
    }

    @Test func permanentErrorsAreNotRetried() async {
        let calls = Counter()
        let sleeper = RecordingSleeper()
        await #expect(throws: Permanent.self) {
            try await policy.run(sleeper: sleeper.sleeper, isTransient: { $0 is Transient }) {
                _ = calls.next()
                throw Permanent()
            }
        }
        #expect(calls.count == 1)
        #expect(sleeper.waits.isEmpty)
    }

    @Test func attemptsRunOutAndTheLastErrorIsThrown() async {
        let calls = Counter()
        await #expect(throws: Transient.self) {
            try await policy.run(sleeper: RecordingSleeper().sleeper, isTransient: { $0 is Transient }) {
                _ = calls.next()
                throw Transient()
            }
        }
        #expect(calls.count == 4)
    }

    @Test func cancellationIsNeverRetried() async {
        let calls = Counter()
        let task = Task {
            try await policy.run(sleeper: .continuous, isTransient: { _ in true }) {
                _ = calls.next()
                try await Task.sleep(for: .seconds(30))
            }
        }
        try? await Task.sleep(for: .milliseconds(20))
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(calls.count == 1)
    }
}

@Suite struct ResilientTransportTests {
    let request = HTTPRequest(url: URL(string: "https://api.example.test/x")!)

    @Test func serverErrorsAndRateLimitsAreRetried() async throws {
        let base = ScriptedTransport(statuses: [503, 429, 500, 200])
        let transport = ResilientTransport(base: base, retry: RetryPolicy(maxAttempts: 5), timeout: .seconds(5),
                                           sleeper: RecordingSleeper().sleeper)
        #expect(try await transport.send(request).status == 200)
        #expect(base.requestCount == 4)
    }

    @Test func clientErrorsAreAnsweredAtOnce() async throws {
        let base = ScriptedTransport(statuses: [404, 200])
        let transport = ResilientTransport(base: base, retry: RetryPolicy(maxAttempts: 5), timeout: .seconds(5),
                                           sleeper: RecordingSleeper().sleeper)
        #expect(try await transport.send(request).status == 404)
        #expect(base.requestCount == 1)
    }

    @Test func aServerThatKeepsFailingGivesAClearError() async {
        let base = ScriptedTransport(statuses: [502])
        let transport = ResilientTransport(base: base, retry: RetryPolicy(maxAttempts: 3), timeout: .seconds(5),
                                           sleeper: RecordingSleeper().sleeper)
        do {
            _ = try await transport.send(request)
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "answered 502 [transport]")
        }
        #expect(base.requestCount == 3)
    }
}

@Suite struct RateLimitTests {
    let request = HTTPRequest(url: URL(string: "https://api.github.com/orgs/acme")!)
    let now = Date(timeIntervalSince1970: 1_658_208_900)

    func transport(_ responses: [HTTPResponse], sleeper: RecordingSleeper) -> (ResilientTransport, ScriptedTransport) {
        let script = ScriptedTransport(responses.map { .answer($0) })
        let now = self.now
        return (ResilientTransport(base: script, retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)),
                                   timeout: .seconds(5), sleeper: sleeper.sleeper, now: { now }), script)
    }

    @Test func aPrimaryRateLimitWaitsUntilTheReset() async throws {
        // GitHub: 403 with x-ratelimit-remaining 0 means wait until x-ratelimit-reset.
        let limited = HTTPResponse(status: 403, headers: [("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1658208999")],
                                   body: Data(#"{"message":"API rate limit exceeded"}"#.utf8))
        let sleeper = RecordingSleeper()
        let (client, script) = transport([limited, HTTPResponse(status: 200)], sleeper: sleeper)
        #expect(try await client.send(request).status == 200)
        #expect(script.requestCount == 2)
        #expect(sleeper.waits == [.seconds(99)])
    }

    @Test func retryAfterIsHonored() async throws {
        let sleeper = RecordingSleeper()
        let (client, _) = transport([HTTPResponse(status: 429, headers: [("Retry-After", "7")]), HTTPResponse(status: 200)],
                                    sleeper: sleeper)
        #expect(try await client.send(request).status == 200)
        #expect(sleeper.waits == [.seconds(7)])
    }

    @Test func aSecondaryRateLimitMessageWaitsAMinute() async throws {
        // The body GitHub sends for a secondary rate limit (as quoted in public issue threads).
        let body = #"{"documentation_url":"https://docs.github.com/en/free-pro-team@latest/rest/overview/resources-in-the-rest-api#secondary-rate-limits","message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#
        let sleeper = RecordingSleeper()
        let (client, _) = transport([HTTPResponse(status: 403, body: Data(body.utf8)), HTTPResponse(status: 200)], sleeper: sleeper)
        #expect(try await client.send(request).status == 200)
        #expect(sleeper.waits == [.seconds(60)])
    }

    @Test func aForbiddenAnswerThatIsNotARateLimitIsNotRetried() async throws {
        let sleeper = RecordingSleeper()
        let (client, script) = transport([HTTPResponse(status: 403, body: Data(#"{"message":"Resource not accessible by integration"}"#.utf8))],
                                         sleeper: sleeper)
        #expect(try await client.send(request).status == 403)
        #expect(script.requestCount == 1)
    }

    @Test func aResetTooFarAwayFailsAtOnceSayingUntilWhen() async {
        let limited = HTTPResponse(status: 403, headers: [("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "1658212500")])
        let sleeper = RecordingSleeper()
        let (client, script) = transport([limited], sleeper: sleeper)
        do {
            _ = try await client.send(request)
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "answered 403: rate limited until 2022-07-19T06:35:00Z [transport]")
        }
        #expect(script.requestCount == 1)
        #expect(sleeper.waits.isEmpty)
    }
}

@Suite struct StructuredErrorTests {
    @Test func aServerErrorCarriesItsStatusAsAField() async throws {
        let transport = ResilientTransport(base: ScriptedTransport(statuses: [503]), retry: .none, timeout: .seconds(5))
        do {
            _ = try await transport.send(HTTPRequest(url: URL(string: "https://api.github.com/orgs/acme")!))
            Issue.record("no error")
        } catch let error as PipelineError {
            #expect(error[.httpStatus] == "503")
            #expect(error.isTransient)
            #expect(error.debugDescription.contains("http.status=503"))
        }
    }
}

@Suite struct JSONValueEncoderTests {
    struct Sample: Encodable {
        let name: String
        let count: Int32
        let big: UInt64
        let ratio: Double
        let at: Date
        let tags: [String]
        let nested: [String: Bool]
        let missing: String?
    }

    @Test func valuesEncodeWithTheirKeysSortedAndDatesInUTC() throws {
        let sample = Sample(name: "a\"b\n", count: 7, big: 12, ratio: 0.5, at: Date(timeIntervalSince1970: 1_795_824_000),
                            tags: ["x", "y"], nested: ["ok": true], missing: nil)
        let text = String(decoding: try JSONValueEncoder.canonicalData(sample), as: UTF8.self)
        #expect(text == """
        {
          "at" : "2026-11-28T00:00:00Z",
          "big" : 12,
          "count" : 7,
          "name" : "a\\"b\\n",
          "nested" : {
            "ok" : true
          },
          "ratio" : 0.5,
          "tags" : [
            "x",
            "y"
          ]
        }

        """)
        // What Foundation's decoder reads back is what went in.
        let back = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect(back?["name"] as? String == "a\"b\n")
    }

    @Test func theProjectingParserReadsWhatTheCanonicalWriterWrites() throws {
        let value = JSONValue.object(["a": .array([.number(1), .string("é\u{1}"), .null]), "b": .bool(false)])
        #expect(try JSONProjection(["a", "b"]).apply(value.canonicalData()) == value)
    }
}
