import CSystem
import Foundation
import Glibc
import Pipeline

/// The embedded default object store: a directory. An object is written to a temporary file in
/// the store's `.staging` folder and linked or renamed into place, so a reader sees it whole or
/// not at all. Writes are not flushed one by one: `sync()` flushes the file system once per batch,
/// before the rows that point at the objects commit. A file left in `.staging` by a writer that
/// died is removed by `sweep()`.
public struct LocalObjectStore: ObjectStore {
    public let root: URL
    let staging: URL
    let executor: BlockingExecutor

    init(root: URL, executor: BlockingExecutor) {
        self.root = root
        staging = root.appendingPathComponent(".staging", isDirectory: true)
        self.executor = executor
    }

    /// Opens (creating) the store under `root`.
    public static func open(root: URL, executor: BlockingExecutor = .shared) async throws -> LocalObjectStore {
        let store = LocalObjectStore(root: root.standardizedFileURL, executor: executor)
        try await executor.run {
            do {
                try FileManager.default.createDirectory(at: store.staging, withIntermediateDirectories: true)
            } catch {
                throw PipelineError(.storage, "cannot create object directory \(store.root.path): \(error.localizedDescription)")
            }
        }
        return store
    }

    func url(for key: String) throws -> URL {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !segments.isEmpty, segments.first != ".staging",
              segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") })
        else {
            throw PipelineError(.storage, "object key \(quotedForMessage(key)) is not a valid key")
        }
        return root.appendingPathComponent(key, isDirectory: false)
    }

    public func put(_ key: String, data: Data, contentType: String, ifAbsent: Bool) async throws -> Bool {
        let target = try url(for: key)
        return try await executor.run {
            if ifAbsent, Self.size(of: target) == Int64(data.count) { return false }
            return try self.place(key, at: target, size: Int64(data.count), ifAbsent: ifAbsent) { temporary in
                try Self.write(data, to: temporary, key: key)
            }
        }
    }

    public func put(_ key: String, file: URL, contentType: String, ifAbsent: Bool) async throws -> Bool {
        let target = try url(for: key)
        return try await executor.run {
            let size = Self.size(of: file) ?? -1
            if ifAbsent, size >= 0, Self.size(of: target) == size { return false }
            return try self.place(key, at: target, size: size, ifAbsent: ifAbsent) { temporary in
                // A second name for the file where the store can give one (the run's scratch folder
                // is on the same file system): its bytes are written once, and made durable by `sync`.
                if link(file.path, temporary.path) == 0 { return }
                do {
                    try FileManager.default.copyItem(at: file, to: temporary)
                } catch {
                    throw PipelineError(.storage, "cannot copy \(file.path) into the store: \(error.localizedDescription)")
                }
            }
        }
    }

    /// Writes a temporary file with `write`, then moves it to `target`. With `ifAbsent`, link(2)
    /// refuses an existing target, so a concurrent writer of the same content wins; an existing
    /// object of the wrong size (torn by a crash before its flush) is replaced.
    private func place(_ key: String, at target: URL, size: Int64, ifAbsent: Bool,
                       write: (URL) throws -> Void) throws -> Bool {
        let folder = target.deletingLastPathComponent()
        if mkdir(folder.path, 0o755) != 0, errno != EEXIST {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        let temporary = staging.appendingPathComponent(Residue.temporaryName())
        defer { unlink(temporary.path) }
        try write(temporary)
        if ifAbsent, link(temporary.path, target.path) == 0 { return true }
        if ifAbsent, errno == EEXIST, Self.size(of: target) == size { return false }
        guard rename(temporary.path, target.path) == 0 else {
            throw PipelineError(.storage, "cannot store \(key): \(String(cString: strerror(errno)))")
        }
        return true
    }

    /// Writes `data` to a new file with plain system calls (no flush: `sync()` does that per batch).
    static func write(_ data: Data, to file: URL, key: String) throws {
        let fd = Glibc.open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipelineError(.storage, "cannot write \(key): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw PipelineError(.storage, "cannot write \(key): \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }

    /// Reads a whole file with plain system calls.
    static func read(_ file: URL, key: String) throws -> Data {
        let fd = Glibc.open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw PipelineError(.storage, "object \(key) not found", fields: [.httpStatus: "404"]) }
            throw PipelineError(.storage, "cannot read \(key): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw PipelineError(.storage, "object \(key) is not a file")
        }
        var data = Data(count: Int(info.st_size))
        var offset = 0
        try data.withUnsafeMutableBytes { raw in
            while offset < raw.count {
                let got = Glibc.read(fd, raw.baseAddress! + offset, raw.count - offset)
                if got < 0, errno == EINTR { continue }
                guard got > 0 else { throw PipelineError(.storage, "cannot read \(key): it ended early") }
                offset += got
            }
        }
        return data
    }

    static func size(of file: URL) -> Int64? {
        var info = stat()
        guard stat(file.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(info.st_size)
    }

    public func get(_ key: String) async throws -> Data {
        let target = try url(for: key)
        return try await executor.run { try Self.read(target, key: key) }
    }

    public func read(_ key: String, chunkSize: Int, _ body: (Data) async throws -> Void) async throws {
        let target = try url(for: key)
        guard try await exists(key) else {
            throw PipelineError(.storage, "object \(key) not found", fields: [.httpStatus: "404"])
        }
        try await readFileInChunks(target, chunkSize: chunkSize, executor: executor, body)
    }

    public func exists(_ key: String) async throws -> Bool {
        let target = try url(for: key)
        return try await executor.run { Self.size(of: target) != nil }
    }

    public var backend: String { "directory" }

    public func delete(_ key: String) async throws {
        let target = try url(for: key)
        let root = self.root
        try await executor.run {
            if unlink(target.path) != 0, errno != ENOENT {
                throw PipelineError(.storage, "cannot delete \(key): \(String(cString: strerror(errno)))")
            }
            // Folders the object leaves empty go too (rmdir refuses a folder that is not empty).
            var folder = target.deletingLastPathComponent()
            while folder.path.count > root.path.count, rmdir(folder.path) == 0 {
                folder = folder.deletingLastPathComponent()
            }
        }
    }

    /// One flush of the whole file system (syncfs): the data of every object written so far and
    /// the renames that placed them, at the cost of one call per batch rather than one per object.
    public func sync() async throws {
        let root = self.root
        try await executor.run {
            let fd = Glibc.open(root.path, O_RDONLY | O_DIRECTORY)
            guard fd >= 0 else { throw PipelineError(.storage, "cannot open \(root.path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            guard lightsail_syncfs(fd) == 0 else {
                throw PipelineError(.storage, "cannot flush \(root.path): \(String(cString: strerror(errno)))")
            }
        }
    }

    public func sweep() async throws -> (files: Int, bytes: Int64) {
        let staging = self.staging
        return try await executor.run { Residue.sweep(staging) }
    }

    /// Copies a file in whole, as `put(_:file:)` does.
    public func upload(_ key: String, file: URL, size: Int, contentType: String) async throws {
        _ = try await put(key, file: file, contentType: contentType, ifAbsent: false)
    }

    public func location(of key: String) -> String {
        (try? url(for: key).path) ?? key
    }
}
