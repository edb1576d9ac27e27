import ArgumentParser
import Foundation
import Pipeline

struct Runs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An organization's runs: status, times and actor.",
        subcommands: [ListRuns.self]
    )

    struct ListRuns: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List runs, newest first.",
            discussion: "Statuses: running, succeeded, failed, cancelled, abandoned (its process died; marked by the next run).")

        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "At most this many runs.") var limit = 20
        @Option(name: .long, help: "Only runs with this status.") var status: String?
        @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
            if let status, RunRecord.Status(rawValue: status) == nil {
                throw ValidationError("--status must be one of \(RunRecord.Status.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .readEvidence, what: "see runs")
                let runs = try await context.store.runs(of: context.organization, status: status.flatMap(RunRecord.Status.init),
                                                        limit: limit)
                switch format {
                case .json:
                    print(String(decoding: try JSONValueEncoder.canonicalData(["runs": runs]), as: UTF8.self), terminator: "")
                case .text:
                    for run in runs {
                        let finished = run.finishedAt.map(Timestamp.iso8601) ?? "-"
                        print([run.id, run.status, run.pipeline, Timestamp.iso8601(run.startedAt), finished, run.actor]
                            .joined(separator: "\t"))
                    }
                }
            } catch {
                throw report(error)
            }
        }
    }
}
