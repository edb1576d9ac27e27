import CArchive
import Foundation
import Pipeline

/// The one owner of libarchive: writes a zip into memory with fixed entry times, owner and
/// permissions, in the order given, so the same entries give the same bytes.
///
/// libarchive writes zip entry times as DOS local time; the process must run in UTC for the
/// bytes to be the same everywhere. Every `ZipWriter` pins the process's TZ to UTC as it starts.
final class ZipWriter {
    private final class Sink {
        var data = Data()
    }

    static let timeZoneLock = NSLock()

    static func pinUTC() {
        timeZoneLock.withLock {
            if ProcessInfo.processInfo.environment["TZ"] != "UTC" {
                setenv("TZ", "UTC", 1)
            }
            tzset()
        }
    }

    private let archive: OpaquePointer
    private let sink = Sink()
    private let modified: Date
    private var closed = false

    init(modified: Date) throws {
        Self.pinUTC()
        guard let archive = archive_write_new() else {
            throw PipelineError(.render, "libarchive could not start an archive")
        }
        self.archive = archive
        self.modified = modified
        try check(archive_write_set_format_zip(archive), "set zip format")
        try check(archive_write_set_options(archive, "zip:compression=deflate"), "set deflate")
        // Write straight through: no padding blocks.
        try check(archive_write_set_bytes_in_last_block(archive, 1), "set block size")
        let context = Unmanaged.passUnretained(sink).toOpaque()
        try check(archive_write_open(archive, context, nil, { _, context, buffer, length in
            guard let context, let buffer else { return -1 }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            sink.data.append(buffer.assumingMemoryBound(to: UInt8.self), count: length)
            return la_ssize_t(length)
        }, nil), "open")
    }

    deinit {
        if !closed { archive_write_close(archive) }
        archive_write_free(archive)
    }

    func add(path: String, data: Data) throws {
        guard let entry = archive_entry_new() else { throw PipelineError(.render, "libarchive could not make an entry") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname_utf8(entry, path)
        archive_entry_set_size(entry, la_int64_t(data.count))
        archive_entry_set_filetype(entry, lightsail_archive_regular_file_type())
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        let seconds = time_t(modified.timeIntervalSince1970)
        archive_entry_set_mtime(entry, seconds, 0)
        try check(archive_write_header(archive, entry), "write header of \(path)")
        if !data.isEmpty {
            let written = data.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
            guard written == data.count else {
                throw PipelineError(.render, "libarchive wrote \(written) of \(data.count) bytes of \(path): \(errorString)")
            }
        }
        try check(archive_write_finish_entry(archive), "finish \(path)")
    }

    func finish() throws -> Data {
        closed = true
        try check(archive_write_close(archive), "close")
        return sink.data
    }

    private var errorString: String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
    }

    private func check(_ code: Int32, _ step: String) throws {
        guard code == ARCHIVE_OK || code == ARCHIVE_WARN else {
            throw PipelineError(.render, "libarchive could not \(step): \(errorString)")
        }
    }
}
