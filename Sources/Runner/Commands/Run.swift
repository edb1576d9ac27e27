import ArgumentParser
import Foundation
import Logging
import Pipeline
import Reporting
import Stages
import Storage
import Transport

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a pipeline for one organization or for all of them.",
        discussion: """
        Example: pipeline run report --org acme
        Prints, per organization, its score and where the report and the bundle are. One \
        organization's failure never stops another's; the exit code is 1 if any failed.
        """
    )

    @Argument(help: "Pipeline name (a file pipelines/<name>.yml) or a path to a definition.")
    var pipeline: String?

    @Flag(name: .long, help: "Run every scheduled pipeline that is due (see pipeline schedule), for --org or every organization.")
    var due = false

    @Option(name: .long, help: "Organization id to run for.")
    var org: String?

    @Flag(name: .long, help: "Run for every organization.")
    var allOrgs = false

    @Option(name: .long, help: ArgumentHelp("Run clock, ISO-8601 UTC (default: now). Same evidence and clock give the same report bytes.", valueName: "time"))
    var asOf: String?

    @Option(name: .long, help: "Organizations run at once with --all-orgs.")
    var orgConcurrency = 2

    @Flag(name: .long, help: "Print the outcome as JSON on standard output.")
    var json = false

    @Flag(name: .long, help: "No progress lines on standard error.")
    var quiet = false

    @Option(name: .long, help: ArgumentHelp("How long a shared link to the bundle lasts, when the storage makes links (S3): 1s to 7d.", valueName: "duration"))
    var linkExpiry = "7d"

    @OptionGroup var backends: BackendOptions
    @OptionGroup var actorOption: ActorOption
    @OptionGroup var locations: LocationOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metrics: MetricsOptions

    func validate() throws {
        if (pipeline == nil) == !due {
            throw ValidationError("name a pipeline, or --due for the scheduled ones that are due")
        }
        if due {
            if allOrgs { throw ValidationError("--due runs every organization unless --org names one; --all-orgs is not needed") }
            if asOf != nil { throw ValidationError("--due runs with the clock of now; --as-of does not apply") }
        } else if (org == nil) == !allOrgs {
            throw ValidationError("name exactly one of --org <id> or --all-orgs")
        }
        if orgConcurrency < 1 || orgConcurrency > 64 {
            throw ValidationError("--org-concurrency must be between 1 and 64")
        }
        if let asOf, Timestamp.parse(asOf) == nil {
            throw ValidationError("--as-of '\(asOf)' is not an ISO-8601 time such as 2026-11-28T00:00:00Z")
        }
        guard let expiry = parseDuration(linkExpiry), expiry >= .seconds(1), expiry <= .seconds(604_800) else {
            throw ValidationError("--link-expiry '\(linkExpiry)' must be a duration from 1s to 7d")
        }
        _ = try actorOption.resolve()
    }

    func run() async throws {
        try logging.bootstrap()
        let metricsFile = metrics.start()
        let work = Task { try await execute() }
        let signals = SignalCanceller { work.cancel() }
        defer { signals.stop() }
        let code: ExitCode
        // The metrics are written whatever the outcome: a failed nightly is what they are for.
        defer { writeMetrics(metricsFile) }
        do {
            code = try await work.value
        } catch let exit as ExitCode {
            throw exit
        } catch {
            let code = report(error)
            if json {
                // Standard output stays JSON for a machine reading it, failure or not.
                print(jsonLine(["error": errorObject(error, exit: code, debug: ErrorOutput.shared.debug), "runs": []]))
            }
            throw code
        }
        if code != .success { throw code }
    }

    func writeMetrics(_ file: MetricsFile?) {
        do {
            try file?.write()
        } catch {
            StandardError.write("pipeline: warning: \(error)\n")
        }
    }

    func execute() async throws -> ExitCode {
        // Definitions first: a malformed one is reported before anything is opened.
        let entries = due ? try Schedules.scheduled(in: locations.pipelines) : []
        let loadedNamed = try pipeline.map { try PipelineSession.Loaded.load($0, folder: locations.pipelines) }
        // A hostile id is refused before anything is opened.
        let requested = try org.map { try OrganizationID($0) }
        let store = try await backends.openStore()
        let organizations = try await OrganizationLookup.selected(requested, in: store)
        let clock = asOf.flatMap(Timestamp.parse) ?? Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        // What to run: the pipeline named for the organizations selected, or each scheduled
        // pipeline for the organizations it is due for.
        var plan: [(PipelineSession.Loaded, [Organization])] = []
        if let loadedNamed {
            plan = [(loadedNamed, organizations)]
        } else {
            let decisions = try await Schedules.decisions(entries, organizations: organizations, store: store, now: clock)
            for entry in entries {
                let dueNow = decisions.filter { $0.entry.name == entry.name && $0.due.due }.map(\.organization)
                if !dueNow.isEmpty { plan.append((try PipelineSession.Loaded.load(entry.name, folder: locations.pipelines), dueNow)) }
            }
            if plan.isEmpty && !json { print("nothing is due (pipeline schedule shows when it will be)") }
        }
        let objects = try await backends.openObjects()
        let logger = Logger(label: "lightsail.pipeline")
        let scratch = try await PipelineSession.openScratch(backends: backends, objects: objects, logger: logger)
        let runActor = try actorOption.resolve()
        let progress = ProgressDisplay(enabled: !quiet)

        // Each organization's outcome becomes its report (summary lines, JSON entry, error lines)
        // as soon as it finishes, and is let go: a nightly over thousands of organizations holds
        // a few hundred bytes for each, not its results.
        var reports: [OrganizationReport] = []
        for (loaded, organizations) in plan {
            let session = try PipelineSession.open(loaded, store: store, objects: objects, scratch: scratch, backends: backends,
                                                   linkLifetime: parseDuration(linkExpiry)!, logger: logger)
            reports += try await mapConcurrently(organizations, width: orgConcurrency) { organization in
                let started = ContinuousClock.now
                let result: Result<RunOutcome, any Error>
                do {
                    result = .success(try await session.run(organization, id: UUID().uuidString.lowercased(), clock: clock,
                                                            actor: runActor, progress: progress.handle))
                } catch {
                    if Task.isCancelled { throw CancellationError() }
                    result = .failure(error)
                }
                return try organizationReport(organization, result, duration: ContinuousClock.now - started)
            }
        }
        progress.close()
        try Task.checkCancellation()

        if json {
            // The entries as made, in the organizations' order.
            let entries = reports.map { String(decoding: $0.entry, as: UTF8.self) }
            print("{\n\"runs\" : [\n" + entries.joined(separator: ",\n") + "\n]\n}")
        } else {
            for report in reports { print(report.lines.joined(separator: "\n")) }
        }
        // A run whose sources failed as a whole completed, but something needs fixing: it exits 1.
        for line in reports.flatMap(\.errors) { StandardError.write(line + "\n") }
        return reports.allSatisfy(\.errors.isEmpty) ? .success : Exit.problems
    }

    /// What is printed of one organization's run.
    struct OrganizationReport: Sendable {
        var lines: [String]
        /// Its entry in the `--json` document.
        var entry: Data
        /// Lines for standard error: the run's failure, or each source that failed as a whole.
        var errors: [String]
    }

    func organizationReport(_ organization: Organization, _ result: Result<RunOutcome, any Error>, duration: Duration) throws -> OrganizationReport {
        let failed: [any Error]
        switch result {
        case .failure(let error): failed = [error]
        case .success(let outcome):
            failed = outcome.sourceErrors.sorted { $0.key < $1.key }.map {
                PipelineError(.integration, "the \($0.key) integration failed: \($0.value)")
            }
        }
        let output = ErrorOutput.shared
        let errors = failed.map { error -> String in
            if output.json {
                var object = errorObject(error, exit: exitStatus(for: error), debug: output.debug)
                object["level"] = "error"
                object["time"] = Timestamp.iso8601(Date())
                object["logger"] = "pipeline"
                object["org.id"] = organization.id.rawValue
                return jsonLine(object)
            }
            let text = output.debug ? (error as? PipelineError)?.debugDescription ?? "\(error)" : "\(error)"
            return "pipeline: error: \(organization.id): \(text)"
        }
        let entry = try JSONSerialization.data(withJSONObject: jsonEntry(organization, result, duration: duration),
                                               options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return OrganizationReport(lines: json ? [] : summary(organization, result, duration: duration), entry: json ? entry : Data(),
                                  errors: errors)
    }

    func summary(_ organization: Organization, _ result: Result<RunOutcome, any Error>, duration: Duration) -> [String] {
        var lines: [String] = []
        func print(_ line: String) { lines.append(line) }
        switch result {
        case .failure(let error):
            print("\(organization.id): FAILED after \(Self.seconds(duration)): \(error)")
        case .success(let outcome):
            let counts = Dictionary(grouping: outcome.results, by: \.status).mapValues(\.count)
            let checkLine = CheckStatus.allCases.compactMap { status in
                counts[status].map { "\($0) \(status.rawValue)" }
            }.joined(separator: ", ")
            var line = due ? "\(organization.id) \(outcome.run.pipeline): " : "\(organization.id): "
            if let scores = outcome.scores {
                line += "score \(scores.percentText) ("
                    + scores.frameworks.map { "\($0.framework) \($0.percentText)" }.joined(separator: ", ") + ")"
            } else {
                line += "no score"
            }
            print(line)
            print("  checks:   \(outcome.results.count) (\(checkLine))")
            print("  evidence: \(outcome.evidenceCollected) collected, \(outcome.evidenceNew) new, \(outcome.notCollected) not collected")
            if !outcome.reused.isEmpty {
                print("  reused:   \(outcome.reused.count) answer\(outcome.reused.count == 1 ? "" : "s") not collected now, from an earlier run while still fresh")
            }
            if let changes = outcome.changes, changes.previousRun != nil {
                print("  changes:  \(changes.summary) since run \(changes.previousRun ?? "")")
                for check in changes.newlyFailing { print("            newly failing: \(check)") }
            }
            for (source, reason) in outcome.sourceErrors.sorted(by: { $0.key < $1.key }) {
                print("  \(source):\(String(repeating: " ", count: max(1, 9 - source.count)))FAILED: \(reason)")
            }
            if !outcome.unconnected.isEmpty {
                print("  not connected: \(outcome.unconnected.joined(separator: ", ")) (their checks are not verified)")
            }
            for artifact in outcome.export?.artifacts ?? [] {
                let name = artifact.kind == .pdf ? "report:" : artifact.kind == .bundle ? "bundle:" : "manifest:"
                print("  " + name.padding(toLength: 10, withPad: " ", startingAt: 0) + artifact.location)
                if let link = outcome.links[artifact.key] { print("  link:     \(link.absoluteString)") }
            }
            print("  run:      \(outcome.run.id) (\(Self.seconds(duration)))")
        }
        return lines
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.2f s", Double(duration / .milliseconds(1)) / 1000)
    }

    func jsonEntry(_ organization: Organization, _ result: Result<RunOutcome, any Error>, duration: Duration) -> [String: Any] {
            var entry: [String: Any] = ["organization_id": organization.id.rawValue,
                                        "duration_ms": Int((duration / .milliseconds(1)).rounded())]
            switch result {
            case .failure(let error):
                entry["status"] = "failed"
                entry["error"] = errorObject(error, exit: exitStatus(for: error), debug: ErrorOutput.shared.debug)
            case .success(let outcome):
                entry["status"] = "succeeded"
                entry["pipeline"] = outcome.run.pipeline
                entry["run_id"] = outcome.run.id
                entry["score"] = outcome.scores?.ratio ?? NSNull()
                entry["evidence_collected"] = outcome.evidenceCollected
                entry["evidence_new"] = outcome.evidenceNew
                entry["not_collected"] = outcome.notCollected
                entry["source_errors"] = outcome.sourceErrors
                entry["unconnected"] = outcome.unconnected
                entry["checks"] = outcome.results.map { ["check_id": $0.checkID, "status": $0.status.rawValue] }
                entry["frameworks"] = (outcome.scores?.frameworks ?? []).map {
                    ["framework": $0.framework, "passed": $0.passed, "evaluated": $0.evaluated, "points": $0.points,
                     "possible": $0.possible, "score": $0.ratio ?? NSNull()] as [String: Any]
                }
                entry["export_id"] = outcome.export?.id ?? NSNull()
                entry["reused"] = outcome.reused
                if let changes = outcome.changes, let data = try? JSONEncoder().encode(changes) {
                    entry["changes"] = try? JSONSerialization.jsonObject(with: data)
                }
                entry["timings_ms"] = Dictionary(outcome.timings.map {
                    ($0.stage.rawValue, ($0.duration / .microseconds(1)).rounded() / 1000)
                }, uniquingKeysWith: +)
                entry["artifacts"] = (outcome.export?.artifacts ?? []).map {
                    ["kind": $0.kind.rawValue, "key": $0.key, "location": $0.location, "sha256": $0.sha256, "size": $0.size,
                     "link": outcome.links[$0.key]?.absoluteString ?? NSNull()] as [String: Any]
                }
            }
            return entry
    }
}
