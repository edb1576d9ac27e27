import CSQLite
import Foundation
import Pipeline

/// The one owner of sqlite3 in the project: a connection whose calls run one at a time on a lane
/// of the shared blocking executor, so no blocking call runs on the cooperative pool and no two
/// threads use the handle at once.
/// `@unchecked Sendable`: the handle is only touched by jobs of `lane`, which never overlap.
public final class SQLiteConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lane: SerialLane
    public let path: String

    public enum Value: Sendable, Equatable {
        case null
        case integer(Int64)
        case text(String)
        case blob(Data)
    }

    /// Opens (creating) the database at `path` on the blocking executor.
    public static func open(path: String, busyTimeout: Duration = .seconds(10),
                            executor: BlockingExecutor = .shared) async throws -> SQLiteConnection {
        let lane = executor.makeLane()
        return try await lane.run { try SQLiteConnection(path: path, busyTimeout: busyTimeout, lane: lane) }
    }

    private init(path: String, busyTimeout: Duration, lane: SerialLane) throws {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw PipelineError(.database, "cannot open SQLite database \(path): \(message)")
        }
        handle = db
        self.path = path
        self.lane = lane
        sqlite3_busy_timeout(db, Int32(busyTimeout.components.seconds * 1000))
        try executeNow("PRAGMA journal_mode=WAL")
        try executeNow("PRAGMA foreign_keys=ON")
        try executeNow("PRAGMA synchronous=NORMAL")
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs `work` on the connection's lane.
    public func run<T: Sendable>(_ work: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await lane.run { try work(self) }
    }

    /// Runs `work` in one transaction (BEGIN IMMEDIATE … COMMIT), rolling back on any error.
    public func transaction<T: Sendable>(_ work: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await run { db in
            try db.executeNow("BEGIN IMMEDIATE")
            do {
                let value = try work(db)
                try db.executeNow("COMMIT")
                return value
            } catch {
                try? db.executeNow("ROLLBACK")
                throw error
            }
        }
    }

    // MARK: Synchronous calls, only from inside `run` / `transaction`.

    public func executeNow(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(message)
            throw PipelineError(.database, "SQLite: \(text)", detail: sql,
                                fields: [.sqliteCode: String(sqlite3_extended_errcode(handle))],
                                transient: rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        }
    }

    /// Runs one statement with bound parameters and returns the rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [Value] = []) throws -> [[Value]] {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw error(sql)
        }
        defer { sqlite3_finalize(statement) }
        for (offset, parameter) in parameters.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch parameter {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .integer(let v): rc = sqlite3_bind_int64(statement, index, v)
            case .text(let v): rc = lightsail_sqlite3_bind_text_transient(statement, index, v, -1)
            case .blob(let v):
                rc = v.withUnsafeBytes { lightsail_sqlite3_bind_blob_transient(statement, index, $0.baseAddress, Int32($0.count)) }
            }
            guard rc == SQLITE_OK else { throw error(sql) }
        }
        var rows: [[Value]] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(sql) }
            var row: [Value] = []
            for column in 0..<sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_TEXT: row.append(.text(String(cString: sqlite3_column_text(statement, column))))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(statement, column))
                    let bytes = sqlite3_column_blob(statement, column)
                    row.append(.blob(bytes.map { Data(bytes: $0, count: count) } ?? Data()))
                default: row.append(.null)
                }
            }
            rows.append(row)
        }
        return rows
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }

    private func error(_ sql: String) -> PipelineError {
        let code = sqlite3_extended_errcode(handle)
        return PipelineError(.database, "SQLite: \(String(cString: sqlite3_errmsg(handle)))", detail: sql,
                             fields: [.sqliteCode: String(code)],
                             transient: code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED)
    }
}

extension SQLiteConnection.Value {
    public var int: Int? { if case .integer(let v) = self { return Int(v) } else { return nil } }
    public var string: String? { if case .text(let v) = self { return v } else { return nil } }
}

extension PipelineError.Field {
    /// SQLite's extended result code (2067 a unique constraint, 5 busy).
    public static let sqliteCode = PipelineError.Field("sqlite.code")
}
