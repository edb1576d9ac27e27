import Foundation

/// Runs the programs a reader of our output uses (pdfinfo, pdftotext, unzip, python3,
/// sha256sum, the built `pipeline` binary) from tests, capturing their output.
public struct ToolResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum ExternalTool {
    /// The absolute path of `name` on PATH, if it is installed.
    public static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Stops a test that needs tools that are not installed: skipped with the reason, except in CI,
    /// where it fails (`.ci/run` installs them all).
    public static func require(_ tools: String...) throws {
        let missing = tools.filter { find($0) == nil }
        guard !missing.isEmpty else { return }
        try Peers.missing("\(missing.joined(separator: ", ")) (scripts/install-packages)")
    }

    /// Whether a missing peer must fail the test: in CI, nothing may be skipped.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty && $0 != "false" } ?? false }

    /// Runs `tool` with `arguments`; `environment` entries are added to the current environment.
    public static func run(_ tool: String, _ arguments: [String], environment: [String: String] = [:],
                           directory: URL? = nil, input: Data? = nil) throws -> ToolResult {
        guard let executable = find(tool) else {
            throw NSError(domain: "ExternalTool", code: 127, userInfo: [NSLocalizedDescriptionKey: "\(tool) is not installed"])
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(input) }
        try inPipe.fileHandleForWriting.close()
        // Read both pipes to the end before waiting, so a chatty child never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return ToolResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                          stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh temporary directory.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lightsail-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// A helper process a test starts (a fault-injecting server), stopped when the value goes away.
public final class BackgroundProcess: @unchecked Sendable {
    public let process: Process
    /// The first line the process printed (a server prints its port).
    public let firstLine: String
    private let output: Pipe

    public init(_ tool: String, _ arguments: [String]) throws {
        guard let executable = ExternalTool.find(tool) else {
            throw NSError(domain: "ExternalTool", code: 127, userInfo: [NSLocalizedDescriptionKey: "\(tool) is not installed"])
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while true {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        firstLine = String(decoding: line, as: UTF8.self)
    }

    /// Everything printed after the first line, once the process has ended.
    public func stop() -> String {
        kill(process.processIdentifier, SIGKILL)
        // The pipe closes when the process is gone; Foundation reaps it.
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
    }
}
