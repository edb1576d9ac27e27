import Foundation

/// A queued run of one pipeline for one organization and one period (a schedule's slot, or the day
/// it was asked for). At most one job exists per organization, pipeline and period.
public struct Job: Sendable, Equatable {
    /// The product's queues (its job design); a worker takes jobs of the queues it is given.
    public enum Queue: String, CaseIterable, Sendable, Codable {
        case evidence, integration, report, notification
    }

    public enum State: String, CaseIterable, Sendable, Codable {
        /// Waiting for a worker, from `runAt` on (a retry waits out its backoff).
        case available
        /// Taken by `lockedBy` until `leaseUntil`, which its heartbeats extend.
        case running
        case succeeded
        /// Failed on its last attempt; `pipeline jobs retry` makes it available again.
        case dead
        case cancelled
    }

    /// One failed attempt, as the job keeps it.
    public struct Failure: Sendable, Equatable, Codable {
        public var attempt: Int
        public var at: String
        public var worker: String?
        public var error: String
    }

    public var id: Int64
    public var organizationID: OrganizationID
    public var queue: Queue
    public var pipeline: String
    public var period: String
    /// The run clock of every attempt: a job run again gives the same evidence, results and export.
    public var asOf: Date
    public var state: State
    public var attempt: Int
    public var maxAttempts: Int
    public var backoff: Duration
    public var runAt: Date
    public var lockedBy: String?
    public var leaseUntil: Date?
    public var heartbeatAt: Date?
    public var runID: String?
    public var lastError: String?
    public var failures: [Failure]
    public var enqueuedBy: String
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?

    public init(id: Int64, organizationID: OrganizationID, queue: Queue, pipeline: String, period: String, asOf: Date,
                state: State, attempt: Int, maxAttempts: Int, backoff: Duration, runAt: Date, lockedBy: String? = nil,
                leaseUntil: Date? = nil, heartbeatAt: Date? = nil, runID: String? = nil, lastError: String? = nil,
                failures: [Failure] = [], enqueuedBy: String, createdAt: Date, startedAt: Date? = nil, finishedAt: Date? = nil) {
        self.id = id
        self.organizationID = organizationID
        self.queue = queue
        self.pipeline = pipeline
        self.period = period
        self.asOf = asOf
        self.state = state
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.runAt = runAt
        self.lockedBy = lockedBy
        self.leaseUntil = leaseUntil
        self.heartbeatAt = heartbeatAt
        self.runID = runID
        self.lastError = lastError
        self.failures = failures
        self.enqueuedBy = enqueuedBy
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// The id of the run an attempt makes: a job's runs can be found from the job, so an attempt
    /// after a crash sees that an earlier one already finished.
    public static func runID(job: Int64, attempt: Int) -> String { "job-\(job)-\(attempt)" }

    /// How long a failed attempt waits before the next: exponential from `backoff`.
    public static func delay(after attempt: Int, backoff: Duration) -> Duration {
        backoff * (1 << min(max(attempt - 1, 0), 20))
    }
}

/// What `pipeline enqueue` asks for.
public struct JobRequest: Sendable {
    public var organizationID: OrganizationID
    public var queue: Job.Queue
    public var pipeline: String
    public var period: String
    public var asOf: Date
    public var maxAttempts: Int
    public var backoff: Duration
    public var enqueuedBy: String

    public init(organizationID: OrganizationID, queue: Job.Queue, pipeline: String, period: String, asOf: Date,
                maxAttempts: Int = 3, backoff: Duration = .seconds(5), enqueuedBy: String) {
        self.organizationID = organizationID
        self.queue = queue
        self.pipeline = pipeline
        self.period = period
        self.asOf = asOf
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.enqueuedBy = enqueuedBy
    }
}

/// A queue's depth for health and metrics: counts and ages only, no organization.
public struct QueueDepth: Sendable, Equatable {
    public var queue: Job.Queue
    public var waiting: Int
    public var running: Int
    public var dead: Int
    /// When the longest-waiting job became available (nil when none waits).
    public var oldestWaiting: Date?

    public init(queue: Job.Queue, waiting: Int = 0, running: Int = 0, dead: Int = 0, oldestWaiting: Date? = nil) {
        self.queue = queue
        self.waiting = waiting
        self.running = running
        self.dead = dead
        self.oldestWaiting = oldestWaiting
    }
}
