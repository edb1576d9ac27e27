import ArgumentParser
import Foundation
import Logging
import Pipeline
import Stages
import Storage
import Transport

/// Where definitions live. Flags win over environment, which wins over defaults.
struct LocationOptions: ParsableArguments {
    @Option(name: .customLong("pipelines"), help: ArgumentHelp("Folder of pipeline definitions (env LIGHTSAIL_PIPELINES).", valueName: "dir"))
    var pipelinesDirectory: String?

    var pipelines: String {
        pipelinesDirectory ?? ProcessInfo.processInfo.environment["LIGHTSAIL_PIPELINES"] ?? "pipelines"
    }
}

struct LoggingOptions: ParsableArguments {
    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(name: .long, help: "Log format on standard error: text or json.")
    var logFormat: Format = .text

    @Option(name: .long, help: "Least severe level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "warning"

    func bootstrap() throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        let format = logFormat
        ErrorOutput.shared.configure(json: format == .json, debug: level <= .debug)
        LoggingSystem.bootstrap { label in
            var handler = StandardErrorLogHandler(label: label, json: format == .json)
            handler.logLevel = level
            return handler
        }
    }
}

/// The built-in vocabulary definitions may use: the sources and frameworks this build has.
enum BuiltIn {
    static let collectors: [any EvidenceCollector] = [GitHubCollector(), AWSCollector(), GoogleWorkspaceCollector()]
    static var vocabulary: Vocabulary {
        Vocabulary(sources: Set(collectors.map(\.source)), frameworks: Set(ControlCatalog.frameworks.keys))
    }
}
