import ArgumentParser
import Foundation
import Logging
import Pipeline
import Storage

/// The job queue lives in PostgreSQL: the embedded default has none.
extension BackendOptions {
    func openJobQueue() async throws -> PostgresJobQueue {
        try requireJobQueue()
        return try jobQueue(on: try await openStore())
    }

    func requireJobQueue() throws {
        guard case .postgres = try databaseChoice() else {
            throw PipelineError(.configuration, "the job queue needs PostgreSQL (--database postgres://… or LIGHTSAIL_DATABASE_URL); on the embedded default run pipelines directly: pipeline run <pipeline> --all-orgs")
        }
    }

    func jobQueue(on store: any EvidenceStore) throws -> PostgresJobQueue {
        guard let store = store as? PostgresEvidenceStore else {
            throw PipelineError(.configuration, "the configured database is not PostgreSQL")
        }
        return PostgresJobQueue(store: store)
    }
}

/// The period a job is for, unless given: the slot of the definition's schedule at or before
/// now (so enqueueing a nightly twice on a day makes one job), or the UTC day for a pipeline with
/// no schedule; the job's run clock is the slot's time (or now).
enum JobPeriod {
    /// The slot is read in the organization's time zone: an organization in Berlin gets its
    /// nightly at 02:00 Berlin time.
    static func current(for definition: PipelineDefinition, now: Date, in timeZone: TimeZone = CronSchedule.utc)
        -> (period: String, asOf: Date) {
        let second = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        if let schedule = definition.schedule, let slot = schedule.previous(atOrBefore: now, in: timeZone) {
            return (Timestamp.iso8601(slot), slot)
        }
        return (String(Timestamp.iso8601(second).prefix(10)), second)
    }

    /// The queue a pipeline's jobs go to unless named: a pipeline that renders a PDF makes reports;
    /// any other refreshes evidence.
    static func queue(for definition: PipelineDefinition) -> Job.Queue {
        definition.render?.outputs.contains(.pdf) == true ? .report : .evidence
    }
}

extension Job.Queue: ExpressibleByArgument {}
extension Job.State: ExpressibleByArgument {}

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue a pipeline's run for one organization or for all of them (PostgreSQL).",
        discussion: """
        Example: pipeline enqueue nightly --all-orgs
        A job is unique per organization, pipeline and period: enqueueing the same one again adds \
        nothing. Workers (pipeline worker) take the jobs. Prints each job's id and whether it is new.
        """
    )

    @Argument(help: "Pipeline name (a file pipelines/<name>.yml).")
    var pipeline: String?

    @Option(name: .long, help: "Organization id.") var org: String?
    @Flag(name: .long, help: "Every organization.") var allOrgs = false
    @Flag(name: .long, help: "Every scheduled pipeline's latest slot, for --org or every organization (one cron entry every few minutes).")
    var due = false
    @Option(name: .long, help: "The period the job is for (default: the schedule's latest slot, or today in UTC).") var period: String?
    @Option(name: .long, help: ArgumentHelp("Run clock of the job, ISO-8601 UTC (default: the slot's time, or now).", valueName: "time"))
    var asOf: String?
    @Option(name: .long, help: "Queue: evidence, integration, report or notification (default: report for a pipeline rendering a PDF, else evidence).")
    var queue: Job.Queue?
    @Option(name: .long, help: "Attempts before the job is dead.") var maxAttempts = 3
    @Option(name: .long, help: ArgumentHelp("Wait before the second attempt, doubling after each failure.", valueName: "duration"))
    var backoff = "5s"
    @Flag(name: .long, help: "Print JSON on standard output.") var json = false

    @OptionGroup var backends: BackendOptions
    @OptionGroup var actorOption: ActorOption
    @OptionGroup var locations: LocationOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if (pipeline == nil) == !due { throw ValidationError("name a pipeline, or --due for every scheduled one") }
        if due {
            if allOrgs { throw ValidationError("--due queues every organization unless --org names one; --all-orgs is not needed") }
            if period != nil || asOf != nil { throw ValidationError("--due queues each schedule's latest slot; --period and --as-of do not apply") }
        } else if (org == nil) == !allOrgs {
            throw ValidationError("name exactly one of --org <id> or --all-orgs")
        }
        guard (1...100).contains(maxAttempts) else { throw ValidationError("--max-attempts must be between 1 and 100") }
        guard let delay = parseDuration(backoff), delay >= .zero, delay <= .seconds(86_400) else {
            throw ValidationError("--backoff '\(backoff)' must be a duration from 0s to 24h")
        }
        if let asOf, Timestamp.parse(asOf) == nil {
            throw ValidationError("--as-of '\(asOf)' is not an ISO-8601 time such as 2026-11-28T00:00:00Z")
        }
        if let period, period.isEmpty || period.count > 64 || period.contains(where: { $0.isNewline || $0 == "\0" }) {
            throw ValidationError("--period must be 1 to 64 characters on one line")
        }
        _ = try actorOption.resolve()
    }

    func run() async throws {
        try logging.bootstrap()
        do {
            // The pipeline named, or every scheduled one; each organization's job at its latest
            // slot (read in its time zone) unless a period is given.
            let now = Date()
            var definitions: [PipelineDefinition] = []
            if let pipeline {
                definitions = [try PipelineSession.Loaded.load(pipeline, folder: locations.pipelines).definition]
            } else {
                definitions = try Schedules.scheduled(in: locations.pipelines).map(\.definition)
            }
            let actor = try actorOption.resolve()
            let requested = try org.map { try OrganizationID($0) }
            let jobs = try await backends.openJobQueue()
            let store = jobs.store
            let organizations = try await OrganizationLookup.selected(requested, in: store)
            var results: [(job: Job, created: Bool)] = []
            for definition in definitions {
                results += try await mapConcurrently(organizations, width: 4) { organization in
                    try await Authorization.require(.runPipeline, actor: actor, organization: organization.id, what: "queue pipeline runs",
                                                    store: store)
                    let slot = JobPeriod.current(for: definition, now: now, in: organization.scheduleTimeZone)
                    return try await jobs.enqueue(JobRequest(organizationID: organization.id, queue: queue ?? JobPeriod.queue(for: definition),
                                                             pipeline: definition.name, period: period ?? slot.period,
                                                             asOf: asOf.flatMap(Timestamp.parse) ?? slot.asOf,
                                                             maxAttempts: maxAttempts, backoff: parseDuration(backoff)!, enqueuedBy: actor))
                }
            }
            if json {
                let list = results.map { result -> [String: Any] in
                    var object = JobOutput.object(result.job)
                    object["created"] = result.created
                    return object
                }
                try JobOutput.printJSON(["jobs": list])
            } else {
                for (job, created) in results {
                    print("\(job.organizationID)\tjob \(job.id)\t\(job.pipeline)\t\(job.period)\t\(created ? "queued" : "already queued (\(job.state.rawValue))")")
                }
            }
        } catch {
            throw report(error)
        }
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take queued jobs from PostgreSQL and run them, until stopped (SIGTERM drains).",
        discussion: """
        Several workers, on one machine or many, share the queue: each job is taken by one of them \
        (FOR UPDATE SKIP LOCKED) under a lease its heartbeats extend; a killed worker's jobs are \
        taken again once their lease runs out. SIGTERM or SIGINT: finish the jobs in hand, take no \
        more, exit 0. A second signal stops at once and gives the jobs in hand back untried.
        """
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Queues to take jobs from (default: all).")
    var queues: [Job.Queue] = Job.Queue.allCases
    @Option(name: .long, help: "Jobs run at once.") var concurrency = 2
    @Option(name: .long, help: ArgumentHelp("How long a job is held without a heartbeat before others may take it.", valueName: "duration"))
    var lease = "60s"
    @Option(name: .long, help: ArgumentHelp("Look for due jobs this often when no notification comes (retries, expired leases).", valueName: "duration"))
    var poll = "5s"
    @Flag(name: .long, help: "Exit once no job of these queues is waiting or running anywhere.")
    var exitWhenIdle = false
    @Option(name: .long, help: ArgumentHelp("How long a shared link to a bundle lasts, when the storage makes links (S3): 1s to 7d.", valueName: "duration"))
    var linkExpiry = "7d"

    @OptionGroup var backends: BackendOptions
    @OptionGroup var locations: LocationOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
        guard let lease = parseDuration(lease), lease >= .seconds(1), lease <= .seconds(3600) else {
            throw ValidationError("--lease '\(lease)' must be a duration from 1s to 1h")
        }
        guard let poll = parseDuration(poll), poll >= .milliseconds(10), poll <= .seconds(600) else {
            throw ValidationError("--poll '\(poll)' must be a duration from 10ms to 10m")
        }
        guard let expiry = parseDuration(linkExpiry), expiry >= .seconds(1), expiry <= .seconds(604_800) else {
            throw ValidationError("--link-expiry '\(linkExpiry)' must be a duration from 1s to 7d")
        }
        if queues.isEmpty { throw ValidationError("--queues names no queue") }
    }

    func run() async throws {
        try logging.bootstrap()
        do {
            let jobs = try await backends.openJobQueue()
            let objects = try await backends.openObjects()
            let logger = Logger(label: "lightsail.worker")
            let scratch = try await PipelineSession.openScratch(backends: backends, objects: objects, logger: logger)
            let (folder, backends, expiry) = (locations.pipelines, self.backends, parseDuration(linkExpiry)!)
            let sessions = SessionCache { pipeline in
                try PipelineSession.open(try PipelineSession.Loaded.load(pipeline, folder: folder), store: jobs.store, objects: objects,
                                         scratch: scratch, backends: backends, linkLifetime: expiry, logger: logger)
            }
            let worker = JobWorker(queue: jobs, settings: .init(queues: Array(Set(queues)).sorted { $0.rawValue < $1.rawValue },
                                                                 concurrency: concurrency, lease: parseDuration(lease)!,
                                                                 poll: parseDuration(poll)!, exitWhenIdle: exitWhenIdle),
                                   sessions: sessions, logger: logger, metrics: metrics.start())
            let work = Task { try await worker.run() }
            // The first signal drains; the second stops at once, giving the jobs in hand back.
            let signals = SignalCanceller(drain: { worker.drain.raise(); Task { await worker.wakeup.signal() } },
                                          cancel: { work.cancel() })
            defer { signals.stop() }
            try await work.value
            let tally = worker.tally.snapshot
            StandardError.write("pipeline: worker \(worker.name) stopped: " + (tally.isEmpty ? "no jobs"
                : tally.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")) + "\n")
        } catch {
            throw report(error)
        }
    }
}

struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "An organization's queued jobs: list, show, retry, cancel (PostgreSQL).",
        subcommands: [ListJobs.self, ShowJob.self, RetryJob.self, CancelJob.self]
    )

    struct ListJobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs, newest first.")
        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "Only jobs in this state: available, running, succeeded, dead, cancelled.") var state: Job.State?
        @Option(name: .long, help: "At most this many jobs.") var limit = 50
        @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        }

        func run() async throws {
            do {
                let (queue, organization, _) = try await JobOutput.open(org: org, backends: backends, actorOption: actorOption,
                                                                         permission: .readEvidence, what: "see jobs")
                let jobs = try await queue.jobs(of: organization, state: state, limit: limit)
                switch format {
                case .json: try JobOutput.printJSON(["jobs": jobs.map(JobOutput.object)])
                case .text:
                    for job in jobs {
                        print([String(job.id), job.state.rawValue, job.queue.rawValue, job.pipeline, job.period,
                               "\(job.attempt)/\(job.maxAttempts)", job.lastError.map { "error: \($0)" } ?? ""].joined(separator: "\t"))
                    }
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct ShowJob: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "One job in full, with every failed attempt (JSON).")
        @Argument(help: "Job id.") var id: Int64
        @Option(name: .long, help: "Organization id.") var org: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let (queue, organization, _) = try await JobOutput.open(org: org, backends: backends, actorOption: actorOption,
                                                                         permission: .readEvidence, what: "see jobs")
                guard let job = try await queue.job(id, of: organization) else { throw JobOutput.unknown(id, organization) }
                try JobOutput.printJSON(JobOutput.object(job))
            } catch {
                throw report(error)
            }
        }
    }

    struct RetryJob: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "retry",
                                                        abstract: "Queue a dead, cancelled or succeeded job again, its attempts reset (audited).")
        @Argument(help: "Job id.") var id: Int64
        @Option(name: .long, help: "Organization id.") var org: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let (queue, organization, actor) = try await JobOutput.open(org: org, backends: backends, actorOption: actorOption,
                                                                             permission: .runPipeline, what: "retry jobs")
                guard let job = try await queue.retry(id, of: organization, actor: actor) else { throw JobOutput.unknown(id, organization) }
                print("job \(job.id) queued again (\(job.pipeline) \(job.period))")
            } catch {
                throw report(error)
            }
        }
    }

    struct CancelJob: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel",
                                                        abstract: "Cancel a waiting or running job; a running one stops at its next heartbeat (audited).")
        @Argument(help: "Job id.") var id: Int64
        @Option(name: .long, help: "Organization id.") var org: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let (queue, organization, actor) = try await JobOutput.open(org: org, backends: backends, actorOption: actorOption,
                                                                             permission: .runPipeline, what: "cancel jobs")
                guard let job = try await queue.cancel(id, of: organization, actor: actor) else { throw JobOutput.unknown(id, organization) }
                print("job \(job.id) cancelled (\(job.pipeline) \(job.period))")
            } catch {
                throw report(error)
            }
        }
    }
}

enum JobOutput {
    static func open(org: String, backends: BackendOptions, actorOption: ActorOption, permission: Permission,
                     what: String) async throws -> (PostgresJobQueue, OrganizationID, String) {
        try backends.requireJobQueue()
        let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption, permission: permission, what: what)
        return (try backends.jobQueue(on: context.store), context.organization, context.actor)
    }

    static func unknown(_ id: Int64, _ organization: OrganizationID) -> PipelineError {
        PipelineError(.invalidInput, "organization \(organization) has no job \(id) (pipeline jobs list --org \(organization))")
    }

    static func object(_ job: Job) -> [String: Any] {
        func time(_ date: Date?) -> Any { date.map(Timestamp.iso8601) ?? NSNull() }
        return [
            "id": job.id, "organization_id": job.organizationID.rawValue, "queue": job.queue.rawValue, "pipeline": job.pipeline,
            "period": job.period, "as_of": Timestamp.iso8601(job.asOf), "state": job.state.rawValue, "attempt": job.attempt,
            "max_attempts": job.maxAttempts, "backoff_ms": Int(job.backoff / .milliseconds(1)), "run_at": Timestamp.iso8601(job.runAt),
            "locked_by": job.lockedBy ?? NSNull(), "lease_until": time(job.leaseUntil), "heartbeat_at": time(job.heartbeatAt),
            "run_id": job.runID ?? NSNull(), "last_error": job.lastError ?? NSNull(),
            "errors": job.failures.map { ["attempt": $0.attempt, "at": $0.at, "worker": $0.worker ?? NSNull(), "error": $0.error] as [String: Any] },
            "enqueued_by": job.enqueuedBy, "created_at": Timestamp.iso8601(job.createdAt), "started_at": time(job.startedAt),
            "finished_at": time(job.finishedAt),
        ]
    }

    static func printJSON(_ value: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }
}
