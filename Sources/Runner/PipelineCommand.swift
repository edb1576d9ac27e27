import ArgumentParser
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
        subcommands: [Run.self, List.self, Lint.self]
    )
}
