import CArchive
import Foundation
import Pipeline

/// Reads entries of a zip (a bundle) through libarchive: their names, and one entry's bytes.
public enum ZipReader {
    /// Entry names in archive order, and the bytes of `entry` if named (at most `limit` bytes).
    public static func read(_ path: String, entry wanted: String? = nil, limit: Int = 64 << 20) throws -> (names: [String], data: Data?) {
        guard let archive = archive_read_new() else { throw PipelineError(.render, "libarchive could not start reading \(path)") }
        defer { archive_read_free(archive) }
        archive_read_support_format_zip(archive)
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else {
            throw PipelineError(.render, "cannot read \(path) as a zip: \(String(cString: archive_error_string(archive)))")
        }
        var names: [String] = []
        var found: Data?
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { break }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry, let name = archive_entry_pathname(entry) else {
                throw PipelineError(.render, "\(path) is not a readable zip: \(String(cString: archive_error_string(archive)))")
            }
            let text = String(cString: name)
            names.append(text)
            if text == wanted {
                var data = Data()
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let count = archive_read_data(archive, &buffer, buffer.count)
                    if count < 0 { throw PipelineError(.render, "\(path): cannot read \(text): \(String(cString: archive_error_string(archive)))") }
                    if count == 0 { break }
                    data.append(buffer, count: count)
                    if data.count > limit { throw PipelineError(.render, "\(path): \(text) is over \(limit) bytes") }
                }
                found = data
            }
        }
        return (names, found)
    }
}
