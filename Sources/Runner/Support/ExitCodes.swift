import ArgumentParser
import Foundation
import Pipeline

enum Exit {
    static let problems = ExitCode(1)
    static let usage = ExitCode(2)
    static let fatal = ExitCode(3)
    static let interrupted = ExitCode(130)
}

/// Writes to standard error without sharing the C `stderr` global.
enum StandardError {
    static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    static var isTerminal: Bool { isatty(2) == 1 }
}

/// Prints an error the way every command does: `pipeline: error: message`, and returns the exit code.
func report(_ error: any Error) -> ExitCode {
    if let error = error as? PipelineError {
        StandardError.write("pipeline: error: \(error.description)\n")
        switch error.code {
        case .invalidOrganizationID, .unknownOrganization, .unknownPipeline: return Exit.usage
        case .cancelled: return Exit.interrupted
        case .database, .storage, .configuration: return Exit.fatal
        default: return Exit.problems
        }
    }
    if error is CancellationError {
        StandardError.write("pipeline: interrupted\n")
        return Exit.interrupted
    }
    StandardError.write("pipeline: error: \(error)\n")
    return Exit.fatal
}
