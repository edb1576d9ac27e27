import Foundation
import Pipeline

/// The embedded default object store: a directory. Objects are written to a temporary file in
/// the same directory, flushed, and renamed into place, so a reader sees them whole or not at all.
public struct LocalObjectStore: ObjectStore {
    public let root: URL

    public init(root: URL) throws {
        self.root = root.standardizedFileURL
        do {
            try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
        } catch {
            throw PipelineError(.storage, "cannot create object directory \(self.root.path): \(error.localizedDescription)")
        }
    }

    func url(for key: String) throws -> URL {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !segments.isEmpty, segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") })
        else {
            throw PipelineError(.storage, "object key \(quotedForMessage(key)) is not a valid key")
        }
        return segments.reduce(root) { $0.appendingPathComponent(String($1), isDirectory: false) }
    }

    public func put(_ key: String, data: Data, contentType: String, ifAbsent: Bool) async throws -> Bool {
        let target = try url(for: key)
        return try await BlockingIO.run {
            let manager = FileManager.default
            if ifAbsent, manager.fileExists(atPath: target.path) { return false }
            let directory = target.deletingLastPathComponent()
            try manager.createDirectory(at: directory, withIntermediateDirectories: true)
            let temporary = directory.appendingPathComponent(".tmp-\(UUID().uuidString)")
            guard manager.createFile(atPath: temporary.path, contents: nil) else {
                throw PipelineError(.storage, "cannot write in \(directory.path)")
            }
            do {
                let handle = try FileHandle(forWritingTo: temporary)
                try handle.write(contentsOf: data)
                try handle.synchronize()
                try handle.close()
                if ifAbsent {
                    // link(2) fails if the target exists: a concurrent writer of the same content wins.
                    if link(temporary.path, target.path) != 0 {
                        let code = errno
                        try? manager.removeItem(at: temporary)
                        if code == EEXIST { return false }
                        throw PipelineError(.storage, "cannot store \(key): \(String(cString: strerror(code)))")
                    }
                    try manager.removeItem(at: temporary)
                } else if rename(temporary.path, target.path) != 0 {
                    let code = errno
                    throw PipelineError(.storage, "cannot store \(key): \(String(cString: strerror(code)))")
                }
            } catch {
                try? manager.removeItem(at: temporary)
                throw error
            }
            return true
        }
    }

    public func get(_ key: String) async throws -> Data {
        let target = try url(for: key)
        return try await BlockingIO.run {
            guard let data = FileManager.default.contents(atPath: target.path) else {
                throw PipelineError(.storage, "object \(key) not found")
            }
            return data
        }
    }

    public func exists(_ key: String) async throws -> Bool {
        let target = try url(for: key)
        return try await BlockingIO.run { FileManager.default.fileExists(atPath: target.path) }
    }

    public var backend: String { "directory" }

    public func delete(_ key: String) async throws {
        let target = try url(for: key)
        let root = self.root
        try await BlockingIO.run {
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

    /// Copies a file in whole: to a temporary file beside the target, then renamed into place.
    public func upload(_ key: String, file: URL, size: Int, contentType: String) async throws {
        let target = try url(for: key)
        try await BlockingIO.run {
            let manager = FileManager.default
            try manager.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
            let temporary = target.deletingLastPathComponent().appendingPathComponent(".tmp-\(UUID().uuidString)")
            do {
                try manager.copyItem(at: file, to: temporary)
                if rename(temporary.path, target.path) != 0 {
                    throw PipelineError(.storage, "cannot store \(key): \(String(cString: strerror(errno)))")
                }
            } catch {
                try? manager.removeItem(at: temporary)
                throw error
            }
        }
    }

    public func location(of key: String) -> String {
        (try? url(for: key).path) ?? key
    }
}
