import Foundation
import Logging
import Metrics
import Pipeline
import Storage

/// Wakes idle worker slots: when the listener hears of a job, or when the poll interval passes.
actor Wakeup {
    private var waiters: [UUID: CheckedContinuation<Void, Never>] = [:]

    /// Returns when `signal()` is called or `timeout` passes, whichever is first.
    func wait(timeout: Duration) async {
        let id = UUID()
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resume(id)
        }
        await withCheckedContinuation { continuation in waiters[id] = continuation }
        timer.cancel()
    }

    func signal() {
        let all = waiters.values
        waiters.removeAll()
        for waiter in all { waiter.resume() }
    }

    private func resume(_ id: UUID) {
        waiters.removeValue(forKey: id)?.resume()
    }
}

/// Whether the worker was asked to drain: finish what it holds and take nothing new.
final class DrainFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    var isSet: Bool { lock.withLock { set } }
    func raise() { lock.withLock { set = true } }
}

/// `pipeline worker`: takes jobs of its queues from PostgreSQL, `concurrency` at once, each under
/// a lease its heartbeats extend, and runs each job's pipeline for its organization with the job's
/// clock. A failed attempt waits out its backoff; after the last the job is dead. A job whose
/// earlier attempt already finished its run (the worker died before saying so) is marked done
/// without running again.
final class JobWorker: Sendable {
    struct Settings: Sendable {
        var queues: [Job.Queue]
        var concurrency: Int
        var lease: Duration
        var poll: Duration
        var exitWhenIdle: Bool
    }

    /// What one worker did, for its summary.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [String: Int] = [:]
        func add(_ outcome: String) { lock.withLock { counts[outcome, default: 0] += 1 } }
        var snapshot: [String: Int] { lock.withLock { counts } }
    }

    let queue: PostgresJobQueue
    let settings: Settings
    let name: String
    let sessions: SessionCache
    let logger: Logger
    let wakeup = Wakeup()
    let drain = DrainFlag()
    let tally = Tally()

    let metrics: MetricsFile?

    init(queue: PostgresJobQueue, settings: Settings, sessions: SessionCache, logger: Logger, metrics: MetricsFile?) {
        self.queue = queue
        self.settings = settings
        self.sessions = sessions
        self.logger = logger
        self.metrics = metrics
        name = "\(Residue.host):\(getpid()):\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Runs until drained (or, with `exitWhenIdle`, until no job of its queues waits or runs
    /// anywhere). Cancelling the task stops jobs in flight and gives them back untried.
    func run() async throws {
        logger.info("worker started", metadata: ["worker": "\(name)", "queues": "\(settings.queues.map(\.rawValue).joined(separator: ","))",
                                                 "concurrency": "\(settings.concurrency)"])
        let listener = Task { await listen() }
        let reporter = Task { await reportMetrics() }
        defer {
            listener.cancel()
            reporter.cancel()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<settings.concurrency {
                group.addTask { try await self.slot() }
            }
            try await group.waitForAll()
        }
        await writeMetrics()
        logger.info("worker stopped", metadata: ["worker": "\(name)", "jobs": "\(tally.snapshot)"])
    }

    /// Every 15 seconds: the queue's depth into the gauges, and the metrics file rewritten.
    private func reportMetrics() async {
        guard metrics != nil else { return }
        while !Task.isCancelled {
            await writeMetrics()
            try? await Task.sleep(for: .seconds(15))
        }
    }

    private func writeMetrics() async {
        guard let metrics else { return }
        do {
            // Outside the worker's cancellation: a worker stopped at once still writes its last figures.
            let queue = self.queue
            let depths = try await Task { try await queue.depth() }.value
            RunMetrics.queue(depths, now: Date())
            try metrics.write()
        } catch {
            logger.warning("could not write the metrics", metadata: ["error": "\(error)"])
        }
    }

    /// One of the worker's `concurrency` lanes: take a job, run it, again.
    private func slot() async throws {
        while !drain.isSet {
            try Task.checkCancellation()
            let claims: [PostgresJobQueue.Claim]
            do {
                claims = try await queue.claim(queues: settings.queues, worker: name, lease: settings.lease, limit: 1)
            } catch let error as PipelineError {
                if Task.isCancelled { throw CancellationError() }
                logger.warning("could not take jobs; trying again", metadata: ["error": "\(error)"])
                await wakeup.wait(timeout: settings.poll)
                continue
            }
            guard let claim = claims.first else {
                if settings.exitWhenIdle, try await isIdle() { return }
                await wakeup.wait(timeout: settings.poll)
                continue
            }
            await execute(claim)
        }
    }

    /// No job of the worker's queues is waiting or running, on any worker.
    private func isIdle() async throws -> Bool {
        let depths = try await queue.depth().filter { settings.queues.contains($0.queue) }
        return depths.allSatisfy { $0.waiting == 0 && $0.running == 0 }
    }

    /// LISTENs for jobs becoming available and wakes the idle slots; falls back to polling alone
    /// while the database cannot be reached.
    private func listen() async {
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(queue.store.pool.settings)
                while !Task.isCancelled {
                    let heard = try await connection.run { db in
                        try db.waitForNotifications(channel: PostgresJobQueue.channel, timeout: .seconds(1))
                    }
                    if !heard.isEmpty { await wakeup.signal() }
                }
            } catch {
                if Task.isCancelled { return }
                logger.notice("not listening for new jobs (polling instead)", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: settings.poll)
            }
        }
    }

    /// Lost the job: it was cancelled, or its lease ran out and another worker took it.
    struct LostLease: Error {}

    private func execute(_ claim: PostgresJobQueue.Claim) async {
        var jobLogger = self.logger
        jobLogger[metadataKey: "job.id"] = "\(claim.id)"
        jobLogger[metadataKey: "org.id"] = "\(claim.organizationID)"
        jobLogger[metadataKey: "pipeline"] = "\(claim.pipeline)"
        jobLogger[metadataKey: "attempt"] = "\(claim.attempt)/\(claim.maxAttempts)"
        let logger = jobLogger
        let runID = Job.runID(job: claim.id, attempt: claim.attempt)
        let started = ContinuousClock.now
        Metrics.Timer(label: "lightsail_job_wait_seconds", dimensions: [("queue", claim.queue.rawValue)])
            .recordSeconds(max(0, Date().timeIntervalSince(claim.waitingSince)))
        do {
            if let finished = try await queue.finishedRun(of: claim) {
                try await queue.complete(claim, worker: name, runID: finished)
                logger.notice("an earlier attempt had finished the job's run; marked done", metadata: ["run.id": "\(finished)"])
                tally.add("already-done")
                RunMetrics.job(queue: claim.queue, outcome: "succeeded")
                return
            }
            let outcome = try await withThrowingTaskGroup(of: RunOutcome?.self) { group in
                group.addTask { try await self.runJob(claim, runID: runID, logger: logger) }
                group.addTask { try await self.heartbeat(claim, logger: logger) }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let outcome = first else { throw LostLease() }
                return outcome
            }
            let failures = outcome.sourceErrors.sorted { $0.key < $1.key }.map { "the \($0.key) integration failed: \($0.value)" }
            let elapsed = ContinuousClock.now - started
            if failures.isEmpty {
                let held = try await queue.complete(claim, worker: name, runID: runID)
                logger.info("job succeeded", metadata: ["run.id": "\(runID)", "duration_ms": "\(elapsed / .milliseconds(1))",
                                                        "held": "\(held)"])
                tally.add("succeeded")
                RunMetrics.job(queue: claim.queue, outcome: "succeeded")
            } else {
                try await recordFailure(claim, failures.joined(separator: "; "), runID: runID, logger: logger)
            }
        } catch is LostLease {
            logger.warning("the job was cancelled or taken by another worker (its lease ran out); its run was stopped")
            tally.add("lost")
            RunMetrics.job(queue: claim.queue, outcome: "lost")
        } catch {
            if Task.isCancelled {
                // The worker is stopping at once: give the job back untried, outside the cancellation.
                let queue = self.queue, name = self.name
                await Task { try? await queue.release(claim, worker: name) }.value
                logger.notice("job given back untried: the worker is stopping")
                tally.add("released")
                RunMetrics.job(queue: claim.queue, outcome: "released")
                return
            }
            let message = (error as? PipelineError)?.message ?? "\(error)"
            try? await recordFailure(claim, message, runID: runID, logger: logger)
        }
    }

    private func recordFailure(_ claim: PostgresJobQueue.Claim, _ message: String, runID: String, logger: Logger) async throws {
        let state = try await queue.fail(claim, worker: name, error: message, runID: runID)
        if state == .dead {
            logger.error("job failed on its last attempt; dead", metadata: ["error": "\(message)"])
            tally.add("dead")
            RunMetrics.job(queue: claim.queue, outcome: "dead")
        } else {
            logger.warning("job failed; it will be tried again", metadata: ["error": "\(message)", "state": "\(state?.rawValue ?? "lost")"])
            tally.add("failed")
            RunMetrics.job(queue: claim.queue, outcome: "retried")
        }
    }

    private func runJob(_ claim: PostgresJobQueue.Claim, runID: String, logger: Logger) async throws -> RunOutcome? {
        let session = try await sessions.session(claim.pipeline)
        guard let organization = try await session.store.organization(claim.organizationID) else {
            throw PipelineError(.unknownOrganization, "organization \(claim.organizationID) is not in the store")
        }
        return try await session.run(IntegrationTransports.withEnvironment(organization), id: runID, clock: claim.asOf,
                                     actor: claim.enqueuedBy, logger: logger)
    }

    /// Extends the job's lease every third of it; returns (ending the job's group) once the job
    /// is no longer this worker's. A heartbeat that cannot reach the database is tried again.
    private func heartbeat(_ claim: PostgresJobQueue.Claim, logger: Logger) async throws -> RunOutcome? {
        while true {
            try await Task.sleep(for: settings.lease / 3)
            do {
                if try await !queue.heartbeat(claim, worker: name, lease: settings.lease) { return nil }
            } catch let error as PipelineError {
                logger.warning("heartbeat failed; trying again", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Each pipeline a worker's jobs name, loaded once.
actor SessionCache {
    private var sessions: [String: Task<PipelineSession, any Error>] = [:]
    private let make: @Sendable (String) async throws -> PipelineSession

    init(make: @escaping @Sendable (String) async throws -> PipelineSession) { self.make = make }

    /// The pipeline's session, made by the first caller while the others wait for it. A pipeline
    /// that fails to load is tried again by the next job (its definition may have been mended).
    func session(_ pipeline: String) async throws -> PipelineSession {
        let task = sessions[pipeline] ?? Task { [make] in try await make(pipeline) }
        sessions[pipeline] = task
        do {
            return try await task.value
        } catch {
            if sessions[pipeline] == task { sessions[pipeline] = nil }
            throw error
        }
    }
}
