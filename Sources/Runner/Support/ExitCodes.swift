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

/// How errors are printed, set once as a command starts (from --log-format and --log-level).
final class ErrorOutput: @unchecked Sendable {
    static let shared = ErrorOutput()
    private let lock = NSLock()
    private var _json = false
    private var _debug = false

    var json: Bool { lock.withLock { _json } }
    var debug: Bool { lock.withLock { _debug } }

    func configure(json: Bool, debug: Bool) {
        lock.withLock {
            _json = json
            _debug = debug
        }
    }
}

/// The exit code an error means: a user's mistake (a bad id, an unknown member, a missing file) is
/// 2; what the pipeline cannot reach or open (the data directory, database, storage) is 3.
func exitStatus(for error: any Error) -> ExitCode {
    if let error = error as? PipelineError {
        switch error.code {
        case .invalidOrganizationID, .unknownOrganization, .unknownPipeline, .invalidInput: return Exit.usage
        case .cancelled: return Exit.interrupted
        case .database, .storage, .configuration: return Exit.fatal
        default: return Exit.problems
        }
    }
    if error is CancellationError { return Exit.interrupted }
    return Exit.fatal
}

/// The error as a JSON object: code, message, exit code, and with --log-level debug its detail.
func errorObject(_ error: any Error, exit: ExitCode, debug: Bool) -> [String: Any] {
    var object: [String: Any] = ["exit_code": Int(exit.rawValue)]
    if let error = error as? PipelineError {
        object["code"] = error.code.name
        object["message"] = error.message
        if !error.fields.isEmpty {
            object["fields"] = Dictionary(uniqueKeysWithValues: error.fields.map { ($0.key.name, $0.value) })
        }
        if debug {
            object["where"] = "\(error.file):\(error.line)"
            if let detail = error.detail { object["detail"] = detail }
        }
    } else if error is CancellationError {
        object["code"] = "interrupted"
        object["message"] = "interrupted"
    } else {
        object["code"] = "internal"
        object["message"] = "\(error)"
    }
    return object
}

func jsonLine(_ object: [String: Any]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}

/// Prints an error the way every command does and returns the exit code: `pipeline: error:
/// message` (with the structured fields and detail under --log-level debug), or one JSON object
/// per line under --log-format json.
func report(_ error: any Error) -> ExitCode {
    let code = exitStatus(for: error)
    let output = ErrorOutput.shared
    if output.json {
        var object = errorObject(error, exit: code, debug: output.debug)
        object["level"] = "error"
        object["time"] = Timestamp.iso8601(Date())
        object["logger"] = "pipeline"
        StandardError.write(jsonLine(object) + "\n")
        return code
    }
    if error is CancellationError {
        StandardError.write("pipeline: interrupted\n")
    } else if let error = error as? PipelineError {
        StandardError.write("pipeline: error: \(output.debug ? error.debugDescription : error.description)\n")
    } else {
        StandardError.write("pipeline: error: \(error)\n")
    }
    return code
}
