import CArchive
import Foundation
import Pipeline

/// The one owner of libarchive: writes a zip into a file, entry by entry, with fixed entry times,
/// owner and permissions, in the order given, so the same entries give the same bytes. An entry's
/// data may arrive in pieces, so nothing larger than a piece is held.
///
/// libarchive writes the DOS date and time of each entry in the process's local time zone. Rather
/// than touch the environment (`TZ` is read by every thread), `finish()` rewrites those fields in
/// the finished file to the UTC time of `modified`; the extended-timestamp field libarchive also
/// writes holds seconds since the epoch, the same everywhere.
///
/// Its calls block (libarchive, the file system): make them on the blocking executor, from one
/// task at a time. `@unchecked Sendable` for that hand-over between executor jobs; never used by
/// two jobs at once.
final class ZipWriter: @unchecked Sendable {
    private final class Sink {
        let handle: FileHandle
        var failure: String?
        init(handle: FileHandle) { self.handle = handle }
    }

    let file: URL
    private let archive: OpaquePointer
    private let sink: Sink
    private let modified: Date
    private var closed = false
    private var entryOpen = false

    init(file: URL, modified: Date) throws {
        guard FileManager.default.createFile(atPath: file.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: file) else {
            throw PipelineError(.render, "cannot write the bundle at \(file.path)")
        }
        guard let archive = archive_write_new() else {
            try? handle.close()
            throw PipelineError(.render, "libarchive could not start an archive")
        }
        self.file = file
        self.archive = archive
        self.modified = modified
        sink = Sink(handle: handle)
        try check(archive_write_set_format_zip(archive), "set zip format")
        try check(archive_write_set_options(archive, "zip:compression=deflate"), "set deflate")
        // Straight through to the file: no blocking into 10 KiB records, no padding.
        try check(archive_write_set_bytes_per_block(archive, 0), "set block size")
        try check(archive_write_set_bytes_in_last_block(archive, 1), "set last block")
        let context = Unmanaged.passUnretained(sink).toOpaque()
        try check(archive_write_open(archive, context, nil, { _, context, buffer, length in
            guard let context, let buffer else { return -1 }
            let sink = Unmanaged<Sink>.fromOpaque(context).takeUnretainedValue()
            do {
                try sink.handle.write(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
            } catch {
                sink.failure = error.localizedDescription
                return -1
            }
            return la_ssize_t(length)
        }, nil), "open")
    }

    deinit {
        if !closed { archive_write_close(archive) }
        archive_write_free(archive)
        try? sink.handle.close()
    }

    /// Entries this small are stored as they are: deflating them saves a few hundred bytes at the
    /// cost of setting up a compressor (hundreds of kilobytes) for each one.
    static let storedBelow = 1024
    private var compression = "deflate"

    /// Starts an entry of `size` bytes; its data follows through `write`, then `endEntry`.
    func beginEntry(path: String, size: Int) throws {
        guard !entryOpen, !closed else { throw PipelineError(.render, "zip entry \(path) started out of turn") }
        let wanted = size < Self.storedBelow ? "store" : "deflate"
        if wanted != compression {
            try check(wanted == "store" ? archive_write_zip_set_compression_store(archive)
                                        : archive_write_zip_set_compression_deflate(archive), "set \(wanted)")
            compression = wanted
        }
        guard let entry = archive_entry_new() else { throw PipelineError(.render, "libarchive could not make an entry") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname_utf8(entry, path)
        archive_entry_set_size(entry, la_int64_t(size))
        archive_entry_set_filetype(entry, lightsail_archive_regular_file_type())
        archive_entry_set_perm(entry, 0o644)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        archive_entry_set_mtime(entry, time_t(modified.timeIntervalSince1970), 0)
        try check(archive_write_header(archive, entry), "write header of \(path)")
        entryOpen = true
    }

    func write(_ data: Data) throws {
        guard entryOpen else { throw PipelineError(.render, "zip data written outside an entry") }
        guard !data.isEmpty else { return }
        let written = data.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
        guard written == data.count else {
            throw PipelineError(.render, "libarchive wrote \(written) of \(data.count) bytes: \(errorString)")
        }
    }

    func endEntry() throws {
        guard entryOpen else { throw PipelineError(.render, "no zip entry to end") }
        entryOpen = false
        try check(archive_write_finish_entry(archive), "finish an entry")
    }

    /// A whole entry from memory.
    func add(path: String, data: Data) throws {
        try beginEntry(path: path, size: data.count)
        try write(data)
        try endEntry()
    }

    /// Writes the central directory and sets every entry's DOS time to `modified` in UTC. The file
    /// is scratch: the object store makes its stored copy durable.
    func finish() throws {
        guard !closed else { throw PipelineError(.render, "the bundle was already finished") }
        closed = true
        try check(archive_write_close(archive), "close")
        try sink.handle.close()
        try ZipTimes.set(file, to: modified)
    }

    private var errorString: String {
        if let failure = sink.failure { return "cannot write the file: \(failure)" }
        return archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
    }

    private func check(_ code: Int32, _ step: String) throws {
        guard code == ARCHIVE_OK || code == ARCHIVE_WARN else {
            throw PipelineError(.render, "libarchive could not \(step): \(errorString)")
        }
    }
}

/// The DOS date and time fields of a finished zip: found through the end-of-central-directory
/// record (zip64 too), set in every central directory record and every local header.
enum ZipTimes {
    /// DOS date and time of `date`'s UTC calendar fields (2-second resolution).
    static func dos(_ date: Date) -> (date: UInt16, time: UInt16) {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let year = max(0, min(127, Int(parts.tm_year) + 1900 - 1980))
        let day = UInt16(year << 9 | Int(parts.tm_mon + 1) << 5 | Int(parts.tm_mday))
        let time = UInt16(Int(parts.tm_hour) << 11 | Int(parts.tm_min) << 5 | Int(parts.tm_sec) / 2)
        return (day, time)
    }

    static func set(_ file: URL, to date: Date) throws {
        let (dosDate, dosTime) = dos(date)
        let handle: FileHandle
        do {
            handle = try FileHandle(forUpdating: file)
        } catch {
            throw PipelineError(.render, "cannot open the bundle to finish it: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        func read(_ offset: UInt64, _ count: Int) throws -> [UInt8] {
            try handle.seek(toOffset: offset)
            let data = try handle.read(upToCount: count) ?? Data()
            guard data.count == count else { throw PipelineError(.render, "the bundle is shorter than its directory says") }
            return Array(data)
        }
        func u16(_ bytes: [UInt8], _ at: Int) -> UInt64 { UInt64(bytes[at]) | UInt64(bytes[at + 1]) << 8 }
        func u32(_ bytes: [UInt8], _ at: Int) -> UInt64 { u16(bytes, at) | u16(bytes, at + 2) << 16 }
        func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 { u32(bytes, at) | u32(bytes, at + 4) << 32 }
        let stamp: [UInt8] = [UInt8(dosTime & 0xFF), UInt8(dosTime >> 8), UInt8(dosDate & 0xFF), UInt8(dosDate >> 8)]

        let size = try handle.seekToEnd()
        guard size >= 22 else { throw PipelineError(.render, "the bundle has no end record") }
        let end = try read(size - 22, 22)
        guard u32(end, 0) == 0x0605_4b50 else { throw PipelineError(.render, "the bundle's end record is not where expected") }
        var entries = u16(end, 10)
        var directorySize = u32(end, 12)
        var directoryOffset = u32(end, 16)
        if entries == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            guard size >= 42 else { throw PipelineError(.render, "the bundle has no zip64 locator") }
            let locator = try read(size - 42, 20)
            guard u32(locator, 0) == 0x0706_4b50 else { throw PipelineError(.render, "the bundle's zip64 locator is missing") }
            let record = try read(u64(locator, 8), 56)
            guard u32(record, 0) == 0x0606_4b50 else { throw PipelineError(.render, "the bundle's zip64 end record is missing") }
            entries = u64(record, 32)
            directorySize = u64(record, 40)
            directoryOffset = u64(record, 48)
        }
        var directory = try read(directoryOffset, Int(directorySize))
        var position = 0
        var localHeaders: [UInt64] = []
        for _ in 0..<entries {
            guard position + 46 <= directory.count, u32(directory, position) == 0x0201_4b50 else {
                throw PipelineError(.render, "the bundle's central directory is malformed")
            }
            directory.replaceSubrange(position + 12..<position + 16, with: stamp)
            let nameLength = Int(u16(directory, position + 28))
            let extraLength = Int(u16(directory, position + 30))
            let commentLength = Int(u16(directory, position + 32))
            var local = u32(directory, position + 42)
            if local == 0xFFFF_FFFF {
                // The zip64 extra field holds, in order, whichever of these are 0xFFFFFFFF above.
                var at = position + 46 + nameLength
                let extraEnd = at + extraLength
                while at + 4 <= extraEnd {
                    let id = u16(directory, at)
                    let length = Int(u16(directory, at + 2))
                    if id == 0x0001 {
                        var field = at + 4
                        if u32(directory, position + 24) == 0xFFFF_FFFF { field += 8 }
                        if u32(directory, position + 20) == 0xFFFF_FFFF { field += 8 }
                        local = u64(directory, field)
                        break
                    }
                    at += 4 + length
                }
            }
            localHeaders.append(local)
            position += 46 + nameLength + extraLength + commentLength
        }
        try handle.seek(toOffset: directoryOffset)
        try handle.write(contentsOf: directory)
        for offset in localHeaders {
            guard u32(try read(offset, 4), 0) == 0x0403_4b50 else {
                throw PipelineError(.render, "the bundle's local header at \(offset) is not where its directory says")
            }
            try handle.seek(toOffset: offset + 10)
            try handle.write(contentsOf: stamp)
        }
    }
}
