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
        func read(_ offset: UInt64, _ count: Int) throws -> [UInt8] { try ZipEnd.read(handle, offset, count) }
        let stamp: [UInt8] = [UInt8(dosTime & 0xFF), UInt8(dosTime >> 8), UInt8(dosDate & 0xFF), UInt8(dosDate >> 8)]

        let end = try ZipEnd(handle)
        let (entries, directoryOffset, directorySize) = (end.entries, end.directoryOffset, end.directorySize)
        var directory = try read(directoryOffset, Int(directorySize))
        var position = 0
        var localHeaders: [UInt64] = []
        for _ in 0..<entries {
            guard position + 46 <= directory.count, ZipEnd.u32(directory, position) == 0x0201_4b50 else {
                throw PipelineError(.render, "the bundle's central directory is malformed")
            }
            directory.replaceSubrange(position + 12..<position + 16, with: stamp)
            let nameLength = Int(ZipEnd.u16(directory, position + 28))
            let extraLength = Int(ZipEnd.u16(directory, position + 30))
            let commentLength = Int(ZipEnd.u16(directory, position + 32))
            var local = ZipEnd.u32(directory, position + 42)
            if local == 0xFFFF_FFFF {
                // The zip64 extra field holds, in order, whichever of these are 0xFFFFFFFF above.
                var at = position + 46 + nameLength
                let extraEnd = at + extraLength
                while at + 4 <= extraEnd {
                    let id = ZipEnd.u16(directory, at)
                    let length = Int(ZipEnd.u16(directory, at + 2))
                    if id == 0x0001 {
                        var field = at + 4
                        if ZipEnd.u32(directory, position + 24) == 0xFFFF_FFFF { field += 8 }
                        if ZipEnd.u32(directory, position + 20) == 0xFFFF_FFFF { field += 8 }
                        local = ZipEnd.u64(directory, field)
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
            guard ZipEnd.u32(try read(offset, 4), 0) == 0x0403_4b50 else {
                throw PipelineError(.render, "the bundle's local header at \(offset) is not where its directory says")
            }
            try handle.seek(toOffset: offset + 10)
            try handle.write(contentsOf: stamp)
        }
    }
}

/// Where a zip's central directory is, from its end record (or its zip64 end record).
struct ZipEnd {
    var entries: UInt64
    var directoryOffset: UInt64
    var directorySize: UInt64
    /// Whether the counts came from a zip64 end record.
    var zip64: Bool

    init(_ handle: FileHandle) throws {
        let size = try handle.seekToEnd()
        guard size >= 22 else { throw PipelineError(.render, "the bundle has no end record") }
        let end = try Self.read(handle, size - 22, 22)
        guard Self.u32(end, 0) == 0x0605_4b50 else { throw PipelineError(.render, "the bundle's end record is not where expected") }
        entries = Self.u16(end, 10)
        directorySize = Self.u32(end, 12)
        directoryOffset = Self.u32(end, 16)
        zip64 = entries == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF
        if zip64 {
            guard size >= 42 else { throw PipelineError(.render, "the bundle has no zip64 locator") }
            let locator = try Self.read(handle, size - 42, 20)
            guard Self.u32(locator, 0) == 0x0706_4b50 else { throw PipelineError(.render, "the bundle's zip64 locator is missing") }
            let record = try Self.read(handle, Self.u64(locator, 8), 56)
            guard Self.u32(record, 0) == 0x0606_4b50 else { throw PipelineError(.render, "the bundle's zip64 end record is missing") }
            entries = Self.u64(record, 32)
            directorySize = Self.u64(record, 40)
            directoryOffset = Self.u64(record, 48)
        }
    }

    static func read(_ handle: FileHandle, _ offset: UInt64, _ count: Int) throws -> [UInt8] {
        try handle.seek(toOffset: offset)
        let data = try handle.read(upToCount: count) ?? Data()
        guard data.count == count else { throw PipelineError(.render, "the bundle is shorter than its directory says") }
        return Array(data)
    }

    static func u16(_ bytes: [UInt8], _ at: Int) -> UInt64 { UInt64(bytes[at]) | UInt64(bytes[at + 1]) << 8 }
    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt64 { u16(bytes, at) | u16(bytes, at + 2) << 16 }
    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 { u32(bytes, at) | u32(bytes, at + 4) << 32 }
    static func put32(_ value: UInt64, into bytes: inout [UInt8], at: Int) {
        for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }
}

/// Two finished zips made one: the second's entries after the first's. libarchive writes each
/// entry (local header, data, descriptor) the same wherever it stands; only the central
/// directory records where entries start. So the first zip is cut at its central directory, the
/// second's entries follow, then both directories, the second's offsets moved by the length of
/// the first's entries, and a new end record: the bytes one writer would have made of all the
/// entries. That lets two writers deflate at once (deflate is most of a bundle's time).
///
/// Both parts and the whole must be plain zips (fewer than 65,535 entries, under 4 GiB); the
/// caller splits only bundles far inside that.
enum ZipJoin {
    static let limit: UInt64 = 0xFFFF_FFFF

    static func append(_ tail: URL, to head: URL) throws {
        let headHandle: FileHandle
        let tailHandle: FileHandle
        do {
            headHandle = try FileHandle(forUpdating: head)
            tailHandle = try FileHandle(forReadingFrom: tail)
        } catch {
            throw PipelineError(.render, "cannot open the bundle's parts to join them: \(error.localizedDescription)")
        }
        defer {
            try? headHandle.close()
            try? tailHandle.close()
        }
        let first = try ZipEnd(headHandle)
        let second = try ZipEnd(tailHandle)
        let directoryOffset = first.directoryOffset + second.directoryOffset
        let directorySize = first.directorySize + second.directorySize
        guard !first.zip64, !second.zip64, first.entries + second.entries < 0xFFFF,
              directoryOffset + directorySize + 22 < limit else {
            throw PipelineError(.render, "the bundle's two parts (\(first.entries) and \(second.entries) entries, \(directoryOffset + directorySize) bytes) are too large to join without zip64")
        }
        var headDirectory = try ZipEnd.read(headHandle, first.directoryOffset, Int(first.directorySize))
        var tailDirectory = try ZipEnd.read(tailHandle, second.directoryOffset, Int(second.directorySize))
        // The second part's records: each local header offset moved past the first part's entries.
        var position = 0
        for _ in 0..<second.entries {
            guard position + 46 <= tailDirectory.count, ZipEnd.u32(tailDirectory, position) == 0x0201_4b50 else {
                throw PipelineError(.render, "the bundle's second part has a malformed central directory")
            }
            let local = ZipEnd.u32(tailDirectory, position + 42)
            ZipEnd.put32(local + first.directoryOffset, into: &tailDirectory, at: position + 42)
            position += 46 + Int(ZipEnd.u16(tailDirectory, position + 28) + ZipEnd.u16(tailDirectory, position + 30)
                                 + ZipEnd.u16(tailDirectory, position + 32))
        }
        guard position == tailDirectory.count else {
            throw PipelineError(.render, "the bundle's second part's directory is longer than its entries")
        }
        try headHandle.truncate(atOffset: first.directoryOffset)
        try headHandle.seek(toOffset: first.directoryOffset)
        try tailHandle.seek(toOffset: 0)
        var remaining = Int(second.directoryOffset)
        while remaining > 0 {
            guard let piece = try tailHandle.read(upToCount: min(remaining, 1 << 20)), !piece.isEmpty else {
                throw PipelineError(.render, "the bundle's second part ended early")
            }
            try headHandle.write(contentsOf: piece)
            remaining -= piece.count
        }
        var end = [UInt8](repeating: 0, count: 22)
        ZipEnd.put32(0x0605_4b50, into: &end, at: 0)
        let entries = first.entries + second.entries
        for at in [8, 10] {
            end[at] = UInt8(entries & 0xFF)
            end[at + 1] = UInt8(entries >> 8)
        }
        ZipEnd.put32(directorySize, into: &end, at: 12)
        ZipEnd.put32(directoryOffset, into: &end, at: 16)
        headDirectory.append(contentsOf: tailDirectory)
        headDirectory.append(contentsOf: end)
        try headHandle.write(contentsOf: headDirectory)
    }
}
