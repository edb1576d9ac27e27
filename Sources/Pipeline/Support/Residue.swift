import Foundation

/// Temporary files name their writer (host and process id), so that a later process can tell
/// what a writer that died (`kill -9`, a crash, a lost machine) left behind from what a live one is
/// still writing, and remove only the former.
public enum Residue {
    /// `host.pid` of this process.
    public static let writer: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "localhost"
        let safe = host.unicodeScalars.map { scalar -> String in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-") ? String(scalar) : "-"
        }.joined()
        return "\(safe.isEmpty ? "localhost" : safe).\(getpid())"
    }()

    static let hostPart = String(writer[..<writer.lastIndex(of: ".")!])

    /// This machine's name, as temporary files and runs record it.
    public static var host: String { hostPart }
    public static var pid: Int32 { getpid() }

    /// Whether a writer (a run) recorded with `host` and `pid`, started at `started`, is gone: on
    /// this host with no such process, or started more than `maxAge` ago (a writer elsewhere).
    public static func isGone(host: String, pid: Int32, started: Date, now: Date = Date(),
                              maxAge: TimeInterval = 24 * 3600) -> Bool {
        if now.timeIntervalSince(started) > maxAge { return true }
        return host == hostPart && !isAlive(pid)
    }

    /// A fresh temporary file name: `host.pid.uuid.tmp`.
    public static func temporaryName(_ suffix: String = "tmp") -> String {
        "\(writer).\(UUID().uuidString.lowercased()).\(suffix)"
    }

    /// Whether a temporary file was left by a writer that is gone: one of this host whose process
    /// no longer exists, or any file older than `maxAge` (a writer on another machine).
    public static func isAbandoned(name: String, modified: Date, now: Date = Date(),
                                   maxAge: TimeInterval = 24 * 3600) -> Bool {
        if now.timeIntervalSince(modified) > maxAge { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 4, let pid = Int32(parts[parts.count - 3]) else {
            // Not a name we make: leave it to the age rule.
            return false
        }
        let host = parts[..<(parts.count - 3)].joined(separator: ".")
        guard host == hostPart else { return false }
        return !isAlive(pid)
    }

    public static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// Removes the abandoned files directly inside `folder`; returns how many and their bytes.
    public static func sweep(_ folder: URL, now: Date = Date()) -> (files: Int, bytes: Int64) {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: folder.path) else { return (0, 0) }
        var files = 0
        var bytes: Int64 = 0
        for name in names {
            let path = folder.appendingPathComponent(name).path
            guard let attributes = try? manager.attributesOfItem(atPath: path),
                  let modified = attributes[.modificationDate] as? Date,
                  isAbandoned(name: name, modified: modified, now: now) else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            if (try? manager.removeItem(atPath: path)) != nil {
                files += 1
                bytes += size
            }
        }
        return (files, bytes)
    }
}

/// Reads a file in pieces on the blocking executor, handing each to `body` before reading the
/// next.
public func readFileInChunks(_ file: URL, chunkSize: Int = 1 << 20, executor: BlockingExecutor = .shared,
                             _ body: (Data) async throws -> Void) async throws {
    let handle = try await executor.run { () -> FileHandleBox in
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw PipelineError(.storage, "cannot read \(file.path)")
        }
        return FileHandleBox(handle)
    }
    defer { try? handle.handle.close() }
    while true {
        let chunk = try await executor.run { try handle.handle.read(upToCount: max(1, chunkSize)) ?? Data() }
        if chunk.isEmpty { return }
        try await body(chunk)
    }
}

/// A file handle passed between executor jobs that use it one after another, never at once.
public final class FileHandleBox: @unchecked Sendable {
    public let handle: FileHandle
    public init(_ handle: FileHandle) { self.handle = handle }
}
