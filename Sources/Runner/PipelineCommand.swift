import ArgumentParser
import CSystem
import Foundation

@main
struct PipelineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Collect compliance evidence, check it against SOC 2 and ISO/IEC 27001:2022, score it, and render reports.",
        discussion: """
        Pipelines are declared in YAML under pipelines/ (see pipelines/README.md). On the embedded \
        default, state lives in a data directory (./.lightsail, or --data-dir / LIGHTSAIL_DATA_DIR): \
        a SQLite file and an object directory.

        Exit codes: 0 success, 1 problems (a failed run, lint findings), 2 usage, 3 fatal.
        """,
        subcommands: [Run.self, List.self, Lint.self, Controls.self, Verify.self, Exceptions.self, Score.self, Health.self, Database.self, EvidenceCommand.self, Members.self, Integrations.self,
                      Runs.self, Orgs.self, Keys.self, Record.self, BundleCommand.self, Exports.self,
                      Enqueue.self, Worker.self, JobsCommand.self, Schedule.self]
    )

    /// Parses and runs, mapping ArgumentParser's usage failures (64) to this tool's exit 2.
    static func main() async {
        // Bodies of megabytes pass through: keep them out of the heap's high-water mark.
        lightsail_tune_malloc(128 << 10, 2)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code.rawValue == 64 {
                StandardError.write(fullMessage(for: error) + "\n")
                Foundation.exit(Exit.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}
