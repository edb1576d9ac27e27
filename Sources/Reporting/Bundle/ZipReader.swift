import CArchive
import Cryptography
import Foundation
import Pipeline

/// Reads entries of a zip (a bundle) through libarchive: their names, one entry's bytes, or every
/// entry hashed as it streams past. Its calls block.
public enum ZipReader {
    /// An entry as read: its name, SHA-256 and size.
    public struct Entry: Sendable, Equatable {
        public let path: String
        public let sha256: String
        public let size: Int
    }

    /// Entry names in archive order, and the bytes of `entry` if named (at most `limit` bytes).
    public static func read(_ path: String, entry wanted: String? = nil, limit: Int = 64 << 20) throws -> (names: [String], data: Data?) {
        let (entries, kept) = try scan(path, keep: wanted.map { [$0] } ?? [], limit: limit, hash: false)
        return (entries.map(\.path), wanted.flatMap { kept[$0] })
    }

    /// Every file entry in archive order with its SHA-256 and size (read in pieces: memory holds
    /// one piece, whatever the entry's size), and the bytes of the entries named in `keep` (each at
    /// most `limit` bytes). Directory entries are skipped.
    public static func scan(_ path: String, keep: Set<String>, limit: Int = 256 << 20, hash: Bool = true) throws
        -> (entries: [Entry], kept: [String: Data]) {
        guard let archive = archive_read_new() else { throw PipelineError(.render, "libarchive could not start reading \(path)") }
        defer { archive_read_free(archive) }
        archive_read_support_format_zip(archive)
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else {
            throw PipelineError(.invalidInput, "cannot read \(path) as a zip: \(String(cString: archive_error_string(archive)))")
        }
        var entries: [Entry] = []
        var kept: [String: Data] = [:]
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry, let name = archive_entry_pathname(entry) else {
                throw PipelineError(.invalidInput, "\(path) is not a readable zip: \(String(cString: archive_error_string(archive)))")
            }
            let text = String(cString: name)
            if archive_entry_filetype(entry) == 0o040000 || text.hasSuffix("/") { continue }
            let hasher = hash ? try SHA256Hasher() : nil
            var size = 0
            var data: Data? = keep.contains(text) ? Data() : nil
            while true {
                let count = buffer.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
                if count < 0 {
                    throw PipelineError(.invalidInput, "\(path): cannot read \(text): \(String(cString: archive_error_string(archive)))")
                }
                if count == 0 { break }
                size += count
                try buffer.withUnsafeBytes { raw in
                    let piece = UnsafeRawBufferPointer(rebasing: raw.prefix(count))
                    try hasher?.update(piece)
                    data?.append(contentsOf: piece)
                }
                if let kept = data, kept.count > limit {
                    throw PipelineError(.invalidInput, "\(path): \(text) is over \(limit) bytes")
                }
            }
            entries.append(Entry(path: text, sha256: try hasher.map { Digest.hex(try $0.finalize()) } ?? "", size: size))
            if let data { kept[text] = data }
        }
        return (entries, kept)
    }
}
