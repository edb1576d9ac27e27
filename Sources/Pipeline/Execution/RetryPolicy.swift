import Foundation

/// Exponential backoff with full jitter (the AWS architecture blog's "full jitter"): attempt n
/// waits a random time in [0, min(maxBackoff, initialBackoff * multiplier^(n-1))].
/// Only transient errors are retried.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts including the first; 1 means no retry.
    public var maxAttempts: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    public var multiplier: Double

    public init(maxAttempts: Int = 3, initialBackoff: Duration = .milliseconds(200),
                maxBackoff: Duration = .seconds(10), multiplier: Double = 2) {
        self.maxAttempts = max(1, maxAttempts)
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
    }

    public static let none = RetryPolicy(maxAttempts: 1)

    /// The cap on the wait after failed attempt `attempt` (1-based).
    public func ceiling(afterAttempt attempt: Int) -> Duration {
        let base = Double(initialBackoff.components.seconds) + Double(initialBackoff.components.attoseconds) / 1e18
        let cap = Double(maxBackoff.components.seconds) + Double(maxBackoff.components.attoseconds) / 1e18
        let raw = base * pow(multiplier, Double(max(0, attempt - 1)))
        return .milliseconds(Int64((min(raw, cap) * 1000).rounded()))
    }

    /// The wait after failed attempt `attempt`, given a uniform random number in [0, 1).
    public func delay(afterAttempt attempt: Int, random unit: Double) -> Duration {
        ceiling(afterAttempt: attempt) * min(max(unit, 0), 1)
    }

    /// Runs `operation`, retrying transient failures. Cancellation is never retried.
    public func run<T: Sendable>(
        sleeper: Sleeper = .continuous,
        random: @Sendable () -> Double = { Double.random(in: 0..<1) },
        isTransient: @Sendable (any Error) -> Bool,
        onRetry: @Sendable (Int, any Error, Duration) -> Void = { _, _, _ in },
        _ operation: @Sendable () async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            try Task.checkCancellation()
            do {
                return try await operation()
            } catch {
                if error is CancellationError || Task.isCancelled { throw error }
                guard attempt < maxAttempts, isTransient(error) else { throw error }
                var wait = delay(afterAttempt: attempt, random: random())
                if let asked = (error as? PipelineError)?.retryAfter, asked > wait { wait = asked }
                onRetry(attempt, error, wait)
                try await sleeper.sleep(wait)
                attempt += 1
            }
        }
    }
}

/// How the executor waits: the real clock in production, an instant recorder in tests.
public struct Sleeper: Sendable {
    public let sleep: @Sendable (Duration) async throws -> Void

    public init(_ sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.sleep = sleep
    }

    public static let continuous = Sleeper { duration in
        try await Task.sleep(for: duration, clock: .continuous)
    }
}
