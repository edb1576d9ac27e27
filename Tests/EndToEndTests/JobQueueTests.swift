import Foundation
import PipelineTesting
import Pipeline
import Testing

/// The job queue on a real PostgreSQL: a fresh database migrated as the owner, the pipeline
/// connecting as the ordinary role, objects in the data directory. Jobs run `light` (GitHub
/// evidence checked against SOC 2), a definition beside the shipped catalog.
struct QueueBench {
    let database: String
    let adminDatabaseURL: String
    let appURL: String
    let pipelines: URL
    let cli: CLI

    /// Organizations whose GitHub evidence collects (acme-two is acme under another id).
    static let organizations = ["acme", "acme-two", "globex", "umbrella"]

    static func make() throws -> QueueBench {
        let pg = try Peers.requirePostgres()
        let name = "lightsail_jobs_" + UUID().uuidString.prefix(8).lowercased()
        let created = try ExternalTool.run("psql", [pg.adminURL, "-Xqc", "CREATE DATABASE \(name) OWNER lightsail_owner"])
        guard created.status == 0 else { throw NSError(domain: "psql", code: 1, userInfo: [NSLocalizedDescriptionKey: created.stderr]) }
        let pipelines = try CLI.pipelinesFolder(["light.yml": """
            name: light
            description: GitHub evidence checked against SOC 2.
            stages:
              - type: collect
                sources: [github]
              - type: validate
                frameworks: [soc2]
              - type: store
              - type: score
                frameworks: [soc2]
            """])
        let bench = QueueBench(database: name, adminDatabaseURL: Peers.url(pg.adminURL, database: name),
                               appURL: Peers.url(pg.appURL, database: name), pipelines: pipelines, cli: try CLI(demo: false))
        let migrated = try bench.cli.run(["db", "migrate", "--database", Peers.url(pg.ownerURL, database: name)])
        guard migrated.status == 0 else { throw ToolFailure("db migrate", migrated) }
        let copy = try ExternalTool.temporaryDirectory().appendingPathComponent("acme-two")
        try FileManager.default.copyItem(at: CLI.projectRoot.appendingPathComponent("fixtures/orgs/acme"), to: copy)
        let imported = try bench.run(["orgs", "import", "fixtures/orgs/acme", copy.path, "fixtures/orgs/globex", "fixtures/orgs/umbrella"])
        guard imported.status == 0 else { throw ToolFailure("orgs import", imported) }
        return bench
    }

    var arguments: [String] { ["--database", appURL] }
    var environment: [String: String] { ["LIGHTSAIL_DATA_DIR": cli.dataDir.path, "LIGHTSAIL_PIPELINES": pipelines.path] }

    @discardableResult
    func run(_ arguments: [String]) throws -> ToolResult {
        try cli.run(arguments + self.arguments, environment: environment)
    }

    /// SQL as the superuser (row-level security does not confine it), for counting across tenants.
    func sql(_ query: String) throws -> String {
        try ExternalTool.run("psql", [adminDatabaseURL, "-XAtqc", query]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A worker process in the background; its output goes to files read after it ends.
    func startWorker(_ extra: [String]) throws -> (Process, URL) {
        let log = cli.dataDir.appendingPathComponent("worker-\(UUID().uuidString.prefix(6)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["worker", "--poll", "200ms", "--log-format", "json"] + extra + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b }
        process.currentDirectoryURL = CLI.projectRoot
        process.standardOutput = FileHandle(forWritingAtPath: log.path)
        process.standardError = FileHandle(forWritingAtPath: log.path)
        try process.run()
        return (process, log)
    }

    func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    /// Enqueues `light` for every organization once per period `p1`…`pN`.
    func enqueue(periods: Int, extra: [String] = []) throws {
        for n in 1...periods {
            let result = try run(["enqueue", "light", "--all-orgs", "--period", "p\(n)"] + extra)
            guard result.status == 0 else { throw ToolFailure("enqueue", result) }
        }
    }
}

@Suite(.serialized) struct JobQueueTests {
    /// Three workers over 200 jobs, one killed with SIGKILL midway: every job completes, each by
    /// exactly one successful run; the killed worker's jobs are taken again once their lease ends.
    @Test(.needsPostgres) func threeWorkersOneKilledFinishEveryJobOnceInEffect() throws {
        let bench = try QueueBench.make()
        try bench.enqueue(periods: 50)
        #expect(try bench.sql("SELECT count(*) FROM jobs WHERE state = 'available'") == "200")
        let common = ["--concurrency", "2", "--lease", "3s", "--exit-when-idle"]
        let workers = try (0..<3).map { _ in try bench.startWorker(common) }
        let (victim, _) = workers[0]
        // Kill the first worker once it has finished some jobs and holds others.
        let holding = try bench.waitUntil(60) {
            let held = try bench.sql("SELECT count(*) FROM jobs WHERE state = 'running' AND locked_by LIKE '%:\(victim.processIdentifier):%'")
            return try Int(bench.sql("SELECT count(*) FROM jobs WHERE state = 'succeeded'")) ?? 0 >= 20 && held != "0"
        }
        #expect(holding, "the first worker never held a job")
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        for (worker, log) in workers.dropFirst() {
            worker.waitUntilExit()
            #expect(worker.terminationStatus == 0, "\((try? String(contentsOf: log, encoding: .utf8))?.suffix(2000) ?? "")")
        }
        #expect(try bench.sql("SELECT state, count(*) FROM jobs GROUP BY state") == "succeeded|200")
        // None twice in effect: one successful run per job, the one the job names.
        #expect(try bench.sql("""
            SELECT count(*) FROM jobs j WHERE (SELECT count(*) FROM runs r WHERE r.organization_id = j.organization_id
                AND r.id LIKE 'job-' || j.id || '-%' AND r.status = 'succeeded') <> 1
               OR NOT EXISTS (SELECT FROM runs r WHERE r.organization_id = j.organization_id AND r.id = j.run_id AND r.status = 'succeeded')
            """) == "0")
        // The killed worker's jobs were taken again: their failures name the lease that ran out.
        #expect(try Int(bench.sql("SELECT count(*) FROM jobs WHERE attempt > 1 AND errors::text LIKE '%lease expired%'")) ?? 0 >= 1)
        // Evidence is content-addressed: 200 runs of four organizations store each item once.
        #expect(try bench.sql("SELECT count(*) - count(DISTINCT (organization_id, id)) FROM evidence") == "0")
    }

    @Test(.needsPostgres) func sigtermDrainsAWorkerThatFinishesTheJobInHand() throws {
        let bench = try QueueBench.make()
        try bench.enqueue(periods: 10)
        let (worker, log) = try bench.startWorker(["--concurrency", "1"])
        #expect(try bench.waitUntil(60) { try bench.sql("SELECT count(*) FROM jobs WHERE state = 'succeeded'") != "0" })
        worker.terminate()
        worker.waitUntilExit()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(worker.terminationStatus == 0, "\(output.suffix(2000))")
        #expect(output.contains("draining"))
        // Nothing left held; what was not taken still waits.
        #expect(try bench.sql("SELECT count(*) FROM jobs WHERE state = 'running'") == "0")
        #expect(try Int(bench.sql("SELECT count(*) FROM jobs WHERE state = 'available'")) ?? 0 > 0)
        #expect(try bench.sql("SELECT count(*) FROM jobs WHERE state NOT IN ('available', 'succeeded')") == "0")
    }

    /// A job that always fails (initech's GitHub token is revoked) is dead after three attempts,
    /// with each attempt's error; `jobs retry` queues it again with its attempts reset; a finished
    /// job cannot be cancelled, a waiting one can; each change is audited.
    @Test(.needsPostgres) func aJobThatAlwaysFailsIsDeadAfterThreeAttemptsWithItsError() throws {
        let bench = try QueueBench.make()
        #expect(try bench.run(["orgs", "import", "fixtures/orgs/initech"]).status == 0)
        let queued = try bench.run(["enqueue", "light", "--org", "initech", "--backoff", "100ms", "--json"])
        #expect(queued.status == 0, "\(queued.stderr)")
        let id = try #require(((try JSONSerialization.jsonObject(with: Data(queued.stdout.utf8)) as? [String: Any])?["jobs"]
                                  as? [[String: Any]])?.first?["id"] as? Int)
        let metrics = bench.cli.dataDir.appendingPathComponent("worker.prom")
        let (worker, log) = try bench.startWorker(["--exit-when-idle", "--metrics-file", metrics.path])
        worker.waitUntilExit()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(worker.terminationStatus == 0, "\(output.suffix(2000))")
        // The worker's JSON log lines carry the job and the organization.
        #expect(output.contains("\"job.id\":\"\(id)\"") && output.contains("\"org.id\":\"initech\""), "\(output.suffix(2000))")
        let shown = try bench.run(["jobs", "show", "\(id)", "--org", "initech"])
        #expect(shown.status == 0, "\(shown.stderr)")
        let job = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])
        #expect(job["state"] as? String == "dead")
        #expect(job["attempt"] as? Int == 3)
        #expect((job["errors"] as? [[String: Any]])?.map { $0["attempt"] as? Int } == [1, 2, 3])
        #expect((job["last_error"] as? String)?.contains("GitHub refused the credentials") == true, "\(job)")
        let listed = try bench.run(["jobs", "list", "--org", "initech", "--state", "dead", "--format", "json"])
        #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any]).flatMap { $0["jobs"] as? [Any] }?.count == 1)
        // The worker's metrics, read by Prometheus' own parser: two retries, one dead job, the
        // failed sources, the queue's depth.
        let samples = try PrometheusText.samples(metrics)
        #expect(samples["lightsail_jobs_total{outcome=dead,queue=evidence}"] == 1, "\(samples)")
        #expect(samples["lightsail_jobs_total{outcome=retried,queue=evidence}"] == 2)
        #expect(samples["lightsail_job_retries_total{queue=evidence}"] == 2)
        #expect(samples["lightsail_runs_total{pipeline=light,status=sources_failed}"] == 3)
        #expect(samples["lightsail_failures_total{kind=source:github,pipeline=light}"] == 3)
        #expect(samples["lightsail_queue_depth{queue=evidence,state=dead}"] == 1)
        #expect(samples["lightsail_queue_depth{queue=evidence,state=waiting}"] == 0)
        #expect(samples["lightsail_job_wait_seconds_count{queue=evidence}"] == 3)
        // The integration's status on PostgreSQL: its last error, from the last attempt's run.
        let status = try bench.run(["integrations", "status", "--org", "initech", "--format", "json"])
        let github = ((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["integrations"]
                      as? [[String: Any]])?.first { $0["kind"] as? String == "github" }
        #expect((github?["last_error"] as? String)?.contains("GitHub refused the credentials") == true, "\(status.stdout)\(status.stderr)")
        #expect(github?["last_run_id"] as? String == "job-\(id)-3" && github?["last_success"] is NSNull)
        // Each failed attempt was a run of its own, recorded as such.
        #expect(try bench.sql("SELECT count(*) FROM runs WHERE id LIKE 'job-\(id)-%'") == "3")

        #expect(try bench.run(["jobs", "retry", "\(id)", "--org", "initech"]).status == 0)
        #expect(try bench.sql("SELECT state, attempt FROM jobs WHERE id = \(id)") == "available|0")
        #expect(try bench.run(["jobs", "cancel", "\(id)", "--org", "initech"]).status == 0)
        let refused = try bench.run(["jobs", "cancel", "\(id)", "--org", "initech"])
        #expect(refused.status == 2 && refused.stderr.contains("only a waiting or running job"), "\(refused.stderr)")
        #expect(try bench.sql("SELECT action FROM audit_log WHERE entity_type = 'job' ORDER BY seq")
            .split(separator: "\n") == ["job.enqueued", "job.retried", "job.cancelled"])
    }

    /// Five processes enqueue the same nightly for every organization at once: one job each.
    @Test(.needsPostgres) func concurrentEnqueuesMakeOneJobPerOrganizationAndPeriod() throws {
        let bench = try QueueBench.make()
        let results = try (0..<5).map { _ -> (Process, Pipe) in
            let process = Process()
            let out = Pipe()
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = ["enqueue", "light", "--all-orgs", "--period", "2026-11-28"] + bench.arguments
            process.environment = ProcessInfo.processInfo.environment.merging(bench.environment) { _, b in b }
            process.currentDirectoryURL = CLI.projectRoot
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, out)
        }.map { process, out -> (Int32, String) in
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        #expect(results.allSatisfy { $0.0 == 0 })
        #expect(try bench.sql("SELECT count(*) FROM jobs") == "4")
        // Each organization's job was made by exactly one of the five.
        let made = results.flatMap { $0.1.split(separator: "\n") }.filter { $0.hasSuffix("\tqueued") }
        #expect(made.count == 4, "\(made)")
        // Health reports the queue's depth and the age of its oldest waiting job.
        let health = try bench.run(["health"])
        #expect(health.status == 0, "\(health.stdout)\(health.stderr)")
        let queue = ((try JSONSerialization.jsonObject(with: Data(health.stdout.utf8)) as? [String: Any])?["checks"]
                     as? [String: Any])?["queue"] as? [String: Any]
        #expect(queue?["status"] as? String == "ok")
        #expect(queue?["waiting"] as? Int == 4)
        #expect((queue?["oldest_waiting_seconds"] as? Int).map { $0 >= 0 && $0 < 600 } == true)
        #expect(((queue?["queues"] as? [String: Any])?["evidence"] as? [String: Any])?["waiting"] as? Int == 4)
    }

    /// The pipeline's role sees only the organization its unit of work names, on the job table as
    /// on every other; the commands find no other organization's job.
    @Test(.needsPostgres) func thePipelinesRoleCannotSeeAnotherOrganizationsJobs() throws {
        let bench = try QueueBench.make()
        try bench.enqueue(periods: 2)
        let asApp = { (sql: String) throws -> String in
            try ExternalTool.run("psql", [bench.appURL, "-XAtqc", sql]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try asApp("SELECT count(*) FROM jobs") == "0")
        #expect(try asApp("BEGIN; SELECT set_config('app.org_id', 'acme', true); SELECT DISTINCT organization_id FROM jobs; COMMIT")
            .split(separator: "\n").last == "acme")
        let updated = try ExternalTool.run("psql", [bench.appURL, "-XAtqc",
            "BEGIN; SELECT set_config('app.org_id', 'acme', true); UPDATE jobs SET state = 'cancelled' WHERE organization_id = 'globex'; COMMIT"])
        #expect(updated.stdout.contains("UPDATE 0") || !updated.stdout.contains("UPDATE"), "\(updated.stdout)")
        #expect(try bench.sql("SELECT count(*) FROM jobs WHERE state = 'cancelled'") == "0")
        let globexJob = try bench.sql("SELECT min(id) FROM jobs WHERE organization_id = 'globex'")
        let shown = try bench.run(["jobs", "show", globexJob, "--org", "acme"])
        #expect(shown.status == 2 && shown.stderr.contains("has no job \(globexJob)"), "\(shown.stderr)")
        let listed = try bench.run(["jobs", "list", "--org", "acme"])
        #expect(listed.stdout.split(separator: "\n").count == 2)
    }

    @Test func theEmbeddedDefaultHasNoQueueAndSaysSo() throws {
        let cli = try CLI()
        let result = try cli.run(["enqueue", "nightly", "--all-orgs"])
        #expect(result.status == 3)
        #expect(result.stderr.contains("the job queue needs PostgreSQL"), "\(result.stderr)")
    }
}

@Suite struct ScheduleCommandTests {
    /// On the embedded default: the nightly is due for every organization until it has run;
    /// `run --due` runs it once each; days later the missed slots are reported and run once.
    @Test func runDueRunsWhatIsDueOnceAndThenNothing() throws {
        let cli = try CLI()
        let before = try cli.run(["schedule", "--format", "json"])
        #expect(before.status == 0, "\(before.stderr)")
        let pipelines = (try JSONSerialization.jsonObject(with: Data(before.stdout.utf8)) as? [String: Any])?["pipelines"] as? [[String: Any]]
        #expect(pipelines?.map { $0["pipeline"] as? String } == ["nightly"])
        let organizations = pipelines?.first?["organizations"] as? [[String: Any]]
        #expect(organizations?.count == 3 && organizations?.allSatisfy { $0["due"] as? Bool == true } == true, "\(before.stdout)")

        let ran = try cli.run(["run", "--due", "--json", "--quiet"])
        let runs = (try JSONSerialization.jsonObject(with: Data(ran.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]]
        #expect(runs?.compactMap { $0["organization_id"] as? String }.sorted() == ["acme", "globex", "initech"], "\(ran.stdout)")
        #expect(runs?.allSatisfy { $0["pipeline"] as? String == "nightly" && ($0["duration_ms"] as? Int ?? -1) > 0 } == true)
        // initech's credentials are revoked: its run completed without GitHub, so the exit is 1.
        #expect(ran.status == 1)

        let again = try cli.run(["run", "--due"])
        #expect(again.status == 0 && again.stdout.contains("nothing is due"), "\(again.stdout)\(again.stderr)")
        #expect(try cli.sql("SELECT count(*) FROM runs WHERE pipeline = 'nightly'") == "3")

        let later = try cli.run(["schedule", "--org", "acme", "--at", Timestamp.iso8601(Date().addingTimeInterval(4 * 86_400))])
        #expect(later.stdout.contains("acme  DUE for") && later.stdout.contains("earlier slots missed: run once"), "\(later.stdout)")
        let bad = try cli.run(["run", "nightly", "--due"])
        #expect(bad.status == 2)
    }

    /// An organization whose schedules are read in Berlin: its nightly slot is 02:00 there.
    @Test func anOrganizationsSchedulesAreReadInItsTimeZone() throws {
        let cli = try CLI(demo: false)
        #expect(try cli.run(["orgs", "add", "berlin", "--name", "Berlin GmbH", "--time-zone", "Europe/Berlin"]).status == 0)
        #expect(try cli.run(["orgs", "add", "utc", "--name", "UTC Ltd"]).status == 0)
        let bad = try cli.run(["orgs", "add", "mars", "--name", "Mars", "--time-zone", "Mars/Olympus"])
        #expect(bad.status == 2 && bad.stderr.contains("is not an IANA time zone"), "\(bad.stderr)")
        let shown = try cli.run(["schedule", "--at", "2026-11-28T03:00:00Z", "--format", "json"])
        let organizations = ((try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])?["pipelines"]
                             as? [[String: Any]])?.first?["organizations"] as? [[String: Any]] ?? []
        let slots = Dictionary(uniqueKeysWithValues: organizations.compactMap { org -> (String, String)? in
            guard let id = org["organization_id"] as? String, let slot = org["slot"] as? String else { return nil }
            return (id, slot)
        })
        #expect(slots == ["berlin": "2026-11-28T01:00:00Z", "utc": "2026-11-28T02:00:00Z"], "\(shown.stdout)")
        #expect(organizations.first { $0["organization_id"] as? String == "berlin" }?["time_zone"] as? String == "Europe/Berlin")
    }

    /// Per integration: never tried, then the last success or the last error, and when next due.
    @Test func integrationsStatusShowsLastSuccessLastErrorAndNextDue() throws {
        let cli = try CLI()
        let before = try cli.run(["integrations", "status", "--org", "acme"])
        #expect(before.status == 0 && before.stdout.contains("github: last success never; next due now (nightly)"), "\(before.stdout)\(before.stderr)")
        #expect(try cli.run(["run", "--due", "--quiet"]).status == 1)
        func github(_ org: String) throws -> [String: Any]? {
            let status = try cli.run(["integrations", "status", "--org", org, "--format", "json"])
            return ((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["integrations"]
                    as? [[String: Any]])?.first { $0["kind"] as? String == "github" }
        }
        let acme = try github("acme")
        #expect(acme?["last_success"] is String && acme?["last_error"] is NSNull, "\(String(describing: acme))")
        #expect((acme?["next_due"] as? String).flatMap(Timestamp.parse).map { $0 > Date() } == true)
        let initech = try github("initech")
        #expect(initech?["last_success"] is NSNull)
        #expect((initech?["last_error"] as? String)?.contains("the token is wrong, expired or revoked") == true)
        // A viewer may not look.
        let viewer = try cli.run(["integrations", "status", "--org", "acme", "--actor", "vic@acme.example"])
        #expect(viewer.status == 1 && viewer.stderr.contains("refused"), "\(viewer.stderr)")
    }

    /// `run --all-orgs --metrics-file`: the file a textfile collector reads, written whatever the outcome.
    @Test func aRunWritesItsMetricsInThePrometheusTextFormat() throws {
        let cli = try CLI()
        let file = cli.dataDir.appendingPathComponent("nightly.prom")
        let ran = try cli.run(["run", "nightly", "--all-orgs", "--quiet", "--metrics-file", file.path])
        #expect(ran.status == 1)  // initech's credentials are revoked
        let samples = try PrometheusText.samples(file)
        #expect(samples["lightsail_runs_total{pipeline=nightly,status=succeeded}"] == 2, "\(samples)")
        #expect(samples["lightsail_runs_total{pipeline=nightly,status=sources_failed}"] == 1)
        #expect(samples["lightsail_run_duration_seconds_count{pipeline=nightly,status=succeeded}"] == 2)
        #expect((samples["lightsail_evidence_collected_total{pipeline=nightly}"] ?? 0) > 50)
        #expect((samples["lightsail_check_outcomes_total{pipeline=nightly,status=fail}"] ?? 0) > 0)
        #expect(samples["lightsail_failures_total{kind=source:github,pipeline=nightly}"] == 1)
        let missing = try cli.run(["run", "nightly", "--org", "acme", "--metrics-file", "/nonexistent/x.prom"])
        #expect(missing.status == 2 && missing.stderr.contains("its folder does not exist"), "\(missing.stderr)")
    }

    /// `enqueue --due` from cron every few minutes: each scheduled pipeline's latest slot once.
    @Test(.needsPostgres) func enqueueDueQueuesEachSlotOnce() throws {
        let bench = try QueueBench.make()
        let light = bench.pipelines.appendingPathComponent("light.yml")
        try String(contentsOf: light, encoding: .utf8).replacingOccurrences(of: "stages:", with: "schedule: \"*/5 * * * *\"\nstages:")
            .write(to: light, atomically: true, encoding: .utf8)
        let first = try bench.run(["enqueue", "--due"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.split(separator: "\n").filter { $0.hasSuffix("\tqueued") }.count == 4, "\(first.stdout)")
        let second = try bench.run(["enqueue", "--due"])
        #expect(second.stdout.split(separator: "\n").allSatisfy { $0.contains("already queued") } || second.stdout.contains("\tqueued"),
                "\(second.stdout)")
        // Within one five-minute slot (or across the boundary, one more each): never doubled.
        let periods = try bench.sql("SELECT count(*) / count(DISTINCT organization_id) FROM jobs")
        #expect(["1", "2"].contains(periods))
        #expect(try bench.sql("SELECT count(*) FROM (SELECT organization_id, period FROM jobs GROUP BY 1, 2 HAVING count(*) > 1) d") == "0")
    }
}

/// A metrics file read with the Python client's parser (`prometheus_client`, from PyPI): each
/// sample as `name{label=value,…}` (labels sorted) to its value. A file it cannot parse fails.
enum PrometheusText {
    static func samples(_ file: URL) throws -> [String: Double] {
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                    print(f"{s.name}{{{labels}}}" if labels else s.name, s.value)
            """
        let result = try ExternalTool.run("python3", ["-c", script, file.path])
        guard result.status == 0 else { throw ToolFailure("prometheus_client parser", result) }
        var samples: [String: Double] = [:]
        for line in result.stdout.split(separator: "\n") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
