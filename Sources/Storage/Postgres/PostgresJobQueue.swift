import CPostgres
import Foundation
import Pipeline

/// The job queue in PostgreSQL: the `jobs` table (one row per organization, pipeline and period),
/// taken by workers with `FOR UPDATE SKIP LOCKED` under leases their heartbeats extend, the way
/// river, Oban and Solid Queue do. Taking jobs across organizations goes through `claim_jobs()`,
/// a function of the schema's owner; everything else on a job is a unit of work under the job's
/// organization, so row-level security confines it as it does the rest of the store.
public final class PostgresJobQueue: Sendable {
    public let store: PostgresEvidenceStore
    /// The channel `claim_jobs`' table announces available jobs on.
    public static let channel = "lightsail_jobs"

    public init(store: PostgresEvidenceStore) { self.store = store }

    static let time = "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"
    static func utc(_ column: String) -> String { "to_char(\(column) AT TIME ZONE 'UTC', \(time))" }
    static let columns = """
        id, organization_id, queue, pipeline, period, \(utc("as_of")), state, attempt, max_attempts, backoff_ms,
        \(utc("run_at")), locked_by, \(utc("lease_until")), \(utc("heartbeat_at")), run_id, last_error, errors::text,
        enqueued_by, \(utc("created_at")), \(utc("started_at")), \(utc("finished_at"))
        """

    static func job(_ row: [String?]) throws -> Job {
        func date(_ index: Int) -> Date? { row[index].flatMap(Timestamp.parse) }
        guard row.count >= 21, let id = row[0].flatMap(Int64.init), let org = row[1],
              let queue = row[2].flatMap(Job.Queue.init(rawValue:)), let state = row[6].flatMap(Job.State.init(rawValue:)) else {
            throw PipelineError(.database, "a job row could not be read")
        }
        let failures = (try? JSONDecoder().decode([Job.Failure].self, from: Data((row[16] ?? "[]").utf8))) ?? []
        return Job(id: id, organizationID: try OrganizationID(org), queue: queue, pipeline: row[3] ?? "", period: row[4] ?? "",
                   asOf: date(5) ?? .distantPast, state: state, attempt: Int(row[7] ?? "0") ?? 0,
                   maxAttempts: Int(row[8] ?? "0") ?? 0, backoff: .milliseconds(Int(row[9] ?? "0") ?? 0),
                   runAt: date(10) ?? .distantPast, lockedBy: row[11], leaseUntil: date(12), heartbeatAt: date(13),
                   runID: row[14], lastError: row[15], failures: failures, enqueuedBy: row[17] ?? "",
                   createdAt: date(18) ?? .distantPast, startedAt: date(19), finishedAt: date(20))
    }

    static func milliseconds(_ duration: Duration) -> String {
        String(Int64(duration / .milliseconds(1)))
    }

    /// Adds the job unless one exists for its organization, pipeline and period; returns the job
    /// and whether this call made it. Safe under concurrent enqueues (the unique key decides).
    public func enqueue(_ request: JobRequest) async throws -> (job: Job, created: Bool) {
        try await store.unit(request.organizationID, actor: request.enqueuedBy) { db in
            let inserted = try db.execute("""
                INSERT INTO jobs (organization_id, queue, pipeline, period, as_of, max_attempts, backoff_ms, enqueued_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (organization_id, pipeline, period) DO NOTHING
                RETURNING \(Self.columns)
                """, [request.organizationID.rawValue, request.queue.rawValue, request.pipeline, request.period,
                      Timestamp.iso8601(request.asOf), String(request.maxAttempts), Self.milliseconds(request.backoff),
                      request.enqueuedBy]).values.first
            if let inserted {
                let job = try Self.job(inserted)
                try PostgresEvidenceStore.audit(db, request.organizationID, actor: request.enqueuedBy, action: "job.enqueued",
                                                entityType: "job", entityID: String(job.id),
                                                detail: "\(request.pipeline) for \(request.period)")
                return (job, true)
            }
            guard let existing = try db.execute("""
                SELECT \(Self.columns) FROM jobs WHERE pipeline = $1 AND period = $2
                """, [request.pipeline, request.period]).values.first else {
                throw PipelineError(.database, "the job for \(request.pipeline) \(request.period) of \(request.organizationID) was neither added nor found")
            }
            return (try Self.job(existing), false)
        }
    }

    /// A job taken by a worker.
    public struct Claim: Sendable, Equatable {
        public var id: Int64
        public var organizationID: OrganizationID
        public var queue: Job.Queue
        public var pipeline: String
        public var period: String
        public var asOf: Date
        public var attempt: Int
        public var maxAttempts: Int
        /// Whom the job's runs act for (permissions, the audit log).
        public var enqueuedBy: String
        /// Since when the job had been waiting for a worker.
        public var waitingSince: Date
    }

    /// Takes up to `limit` jobs of `queues` that are due, or whose worker's lease ran out, for
    /// `worker`, under a lease of `lease`.
    public func claim(queues: [Job.Queue], worker: String, lease: Duration, limit: Int) async throws -> [Claim] {
        guard limit > 0, !queues.isEmpty else { return [] }
        let list = "{" + queues.map(\.rawValue).joined(separator: ",") + "}"
        return try await store.unit(nil) { db in
            try db.execute("""
                SELECT id, organization_id, queue, pipeline, period, \(Self.utc("as_of")), attempt, max_attempts, enqueued_by,
                       \(Self.utc("run_at"))
                FROM claim_jobs($1::text[], $2, $3, $4) ORDER BY id
                """, [list, worker, Self.milliseconds(lease), String(limit)]).values.map { row in
                guard let id = row[0].flatMap(Int64.init), let org = row[1], let queue = row[2].flatMap(Job.Queue.init(rawValue:)) else {
                    throw PipelineError(.database, "a claimed job could not be read")
                }
                return Claim(id: id, organizationID: try OrganizationID(org), queue: queue, pipeline: row[3] ?? "",
                             period: row[4] ?? "", asOf: row[5].flatMap(Timestamp.parse) ?? .distantPast,
                             attempt: Int(row[6] ?? "0") ?? 0, maxAttempts: Int(row[7] ?? "0") ?? 0, enqueuedBy: row[8] ?? "",
                             waitingSince: row[9].flatMap(Timestamp.parse) ?? Date())
            }
        }
    }

    /// Extends the lease of a job this worker holds. False when it no longer holds it (the job was
    /// cancelled, or its lease ran out and another worker took it): the worker must stop the run.
    public func heartbeat(_ claim: Claim, worker: String, lease: Duration) async throws -> Bool {
        try await store.unit(claim.organizationID) { db in
            try db.execute("""
                UPDATE jobs SET lease_until = now() + $3 * interval '1 millisecond', heartbeat_at = now()
                WHERE id = $1 AND locked_by = $2 AND state = 'running' AND attempt = $4
                """, [String(claim.id), worker, Self.milliseconds(lease), String(claim.attempt)]).affected > 0
        }
    }

    /// Marks the job done by `runID`. False when the worker no longer held it.
    @discardableResult
    public func complete(_ claim: Claim, worker: String, runID: String) async throws -> Bool {
        try await store.unit(claim.organizationID) { db in
            try db.execute("""
                UPDATE jobs SET state = 'succeeded', run_id = $3, finished_at = now(), lease_until = NULL, last_error = NULL
                WHERE id = $1 AND locked_by = $2 AND state = 'running' AND attempt = $4
                """, [String(claim.id), worker, runID, String(claim.attempt)]).affected > 0
        }
    }

    /// Records a failed attempt: the job waits out its backoff for the next attempt, or is dead
    /// after its last. Returns its new state (nil when the worker no longer held it).
    @discardableResult
    public func fail(_ claim: Claim, worker: String, error: String, runID: String?) async throws -> Job.State? {
        try await store.unit(claim.organizationID) { db in
            try db.execute("""
                UPDATE jobs SET
                    state = CASE WHEN attempt >= max_attempts THEN 'dead' ELSE 'available' END,
                    run_at = now() + backoff_ms * power(2, least(attempt - 1, 20)) * interval '1 millisecond',
                    finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
                    lease_until = NULL, last_error = $3, run_id = coalesce($5, run_id),
                    errors = errors || jsonb_build_array(jsonb_build_object('attempt', attempt,
                             'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'worker', $2::text, 'error', $3::text,
                             'run_id', $5::text))
                WHERE id = $1 AND locked_by = $2 AND state = 'running' AND attempt = $4
                RETURNING state
                """, [String(claim.id), worker, error, String(claim.attempt), runID]).scalar().flatMap(Job.State.init(rawValue:))
        }
    }

    /// Gives a job back untried (a worker stopping before it finished): available at once, the
    /// attempt not counted.
    public func release(_ claim: Claim, worker: String) async throws {
        try await store.unit(claim.organizationID) { db in
            try db.execute("""
                UPDATE jobs SET state = 'available', attempt = attempt - 1, run_at = now(), lease_until = NULL, locked_by = NULL
                WHERE id = $1 AND locked_by = $2 AND state = 'running' AND attempt = $3
                """, [String(claim.id), worker, String(claim.attempt)])
        }
    }

    /// The run an earlier attempt of the job finished, if any: a job taken again after a crash
    /// that came after its run was done is marked done, not run twice. A run whose attempt was
    /// recorded as failed (its sources failed) does not count.
    public func finishedRun(of claim: Claim) async throws -> String? {
        try await store.unit(claim.organizationID) { db in
            try db.execute("""
                SELECT r.id FROM runs r WHERE r.id LIKE $1 AND r.status = 'succeeded'
                   AND r.id NOT IN (SELECT f->>'run_id' FROM jobs j, jsonb_array_elements(j.errors) f
                                     WHERE j.id = $2 AND f ? 'run_id' AND f->>'run_id' IS NOT NULL)
                 ORDER BY r.started_at LIMIT 1
                """, ["job-\(claim.id)-%", String(claim.id)]).scalar()
        }
    }

    public func jobs(of organization: OrganizationID, state: Job.State?, limit: Int) async throws -> [Job] {
        try await store.unit(organization) { db in
            try db.execute("""
                SELECT \(Self.columns) FROM jobs WHERE ($1::text IS NULL OR state = $1) ORDER BY id DESC LIMIT $2
                """, [state?.rawValue, String(limit)]).values.map(Self.job)
        }
    }

    public func job(_ id: Int64, of organization: OrganizationID) async throws -> Job? {
        try await store.unit(organization) { db in
            try db.execute("SELECT \(Self.columns) FROM jobs WHERE id = $1", [String(id)]).values.first.map(Self.job)
        }
    }

    /// Makes a dead, cancelled or succeeded job available again with its attempts reset; audited.
    /// Nil when the organization has no such job; throws when it is waiting or running.
    public func retry(_ id: Int64, of organization: OrganizationID, actor: String) async throws -> Job? {
        try await transition(id, of: organization, actor: actor, from: [.dead, .cancelled, .succeeded], action: "job.retried",
                             refusal: "only a dead, cancelled or succeeded job can be retried", set: """
                                 state = 'available', attempt = 0, run_at = now(), finished_at = NULL, locked_by = NULL, lease_until = NULL
                                 """)
    }

    /// Cancels a waiting or running job (a running one's worker stops at its next heartbeat); audited.
    public func cancel(_ id: Int64, of organization: OrganizationID, actor: String) async throws -> Job? {
        try await transition(id, of: organization, actor: actor, from: [.available, .running], action: "job.cancelled",
                             refusal: "only a waiting or running job can be cancelled",
                             set: "state = 'cancelled', finished_at = now(), lease_until = NULL")
    }

    /// A job moved by a person: locked, its state checked, changed and audited in one unit.
    private func transition(_ id: Int64, of organization: OrganizationID, actor: String, from allowed: Set<Job.State>,
                            action: String, refusal: String, set assignments: String) async throws -> Job? {
        try await store.unit(organization, actor: actor) { db in
            guard let row = try db.execute("SELECT \(Self.columns) FROM jobs WHERE id = $1 FOR UPDATE", [String(id)]).values.first else {
                return nil
            }
            let job = try Self.job(row)
            guard allowed.contains(job.state) else {
                throw PipelineError(.invalidInput, "job \(id) is \(job.state.rawValue); \(refusal)")
            }
            let updated = try db.execute("UPDATE jobs SET \(assignments) WHERE id = $1 RETURNING \(Self.columns)", [String(id)]).values.first
            try PostgresEvidenceStore.audit(db, organization, actor: actor, action: action, entityType: "job",
                                            entityID: String(id), detail: "was \(job.state.rawValue)")
            return try updated.map(Self.job)
        }
    }

    /// Every queue's depth, over all organizations (counts only).
    public func depth() async throws -> [QueueDepth] {
        let rows = try await store.unit(nil) { db in
            try db.execute("SELECT queue, state, jobs, \(Self.utc("oldest")) FROM job_queue_stats()").values
        }
        var depths = Dictionary(uniqueKeysWithValues: Job.Queue.allCases.map { ($0, QueueDepth(queue: $0)) })
        for row in rows {
            guard let queue = row[0].flatMap(Job.Queue.init(rawValue:)), let count = row[2].flatMap(Int.init) else { continue }
            switch row[1] {
            case "available":
                depths[queue]?.waiting = count
                depths[queue]?.oldestWaiting = row[3].flatMap(Timestamp.parse)
            case "running": depths[queue]?.running = count
            case "dead": depths[queue]?.dead = count
            default: break
            }
        }
        return Job.Queue.allCases.compactMap { depths[$0] }
    }
}

extension PostgresConnection {
    /// LISTENs on `channel` (once per connection) and waits up to `timeout` for notifications;
    /// returns their payloads (empty on timeout). Blocks: call inside `run`.
    public func waitForNotifications(channel: String, timeout: Duration) throws -> [String] {
        if !listening.contains(channel) {
            try execute("LISTEN \(channel)")
            listening.insert(channel)
        }
        var payloads = drainNotifications()
        guard payloads.isEmpty else { return payloads }
        var readable = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        let ready = poll(&readable, 1, Int32(max(0, min(Int64(Int32.max), Int64(timeout / .milliseconds(1))))))
        guard ready > 0 else { return [] }
        guard PQconsumeInput(conn) == 1 else {
            throw PipelineError(.database, "the connection waiting for jobs was lost: \(String(cString: PQerrorMessage(conn)))")
        }
        payloads = drainNotifications()
        return payloads
    }

    private func drainNotifications() -> [String] {
        var payloads: [String] = []
        while let notification = PQnotifies(conn) {
            payloads.append(String(cString: notification.pointee.extra))
            PQfreemem(notification)
        }
        return payloads
    }
}
