import CPostgres
import Dispatch
import Foundation
import Pipeline

/// The one owner of libpq: a connection whose every call runs on its own serial queue (never on
/// the cooperative pool), with a statement timeout set at connect and cancellation through
/// `PQcancel` when the awaiting task is cancelled.
/// `@unchecked Sendable`: `conn` is only touched on `queue`; `cancelHandle` is made for use from
/// other threads (libpq documents PQcancel as safe to call from any thread).
public final class PostgresConnection: @unchecked Sendable {
    private let conn: OpaquePointer
    private let cancelHandle: OpaquePointer?
    private let queue: DispatchQueue

    public struct Settings: Sendable {
        /// A `postgres://` URL or `key=value` string; empty means the PG* environment variables.
        public var url: String
        public var connectTimeout: Duration = .seconds(10)
        public var statementTimeout: Duration = .seconds(60)
        public var applicationName = "lightsail-pipeline"

        public init(url: String) { self.url = url }

        /// The URL with any password replaced, for messages.
        public var redacted: String { Self.redact(url) }

        public static func redact(_ url: String) -> String {
            guard var components = URLComponents(string: url), components.password != nil else {
                return url.replacingOccurrences(of: #"password=\S+"#, with: "password=***", options: .regularExpression)
            }
            components.password = "***"
            return components.string ?? "(database URL)"
        }
    }

    public struct Rows: Sendable {
        public let columns: [String]
        public let values: [[String?]]
        /// Rows changed by an INSERT/UPDATE/DELETE.
        public let affected: Int

        public var first: [String?]? { values.first }
        public func scalar() -> String? { values.first?.first ?? nil }
    }

    private init(conn: OpaquePointer, queue: DispatchQueue) {
        self.conn = conn
        self.queue = queue
        cancelHandle = PQgetCancel(conn)
    }

    deinit {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        PQfinish(conn)
    }

    public static func connect(_ settings: Settings) async throws -> PostgresConnection {
        let queue = DispatchQueue(label: "lightsail.postgres")
        return try await BlockingIO.run(on: queue) {
            let seconds = max(1, Int(settings.connectTimeout.components.seconds))
            let ms = Int(settings.statementTimeout.components.seconds) * 1000
                + Int(settings.statementTimeout.components.attoseconds / 1_000_000_000_000_000)
            let keywords = ["connect_timeout", "application_name", "options", "dbname"]
            let values = [String(seconds), settings.applicationName, "-c statement_timeout=\(ms)", settings.url]
            let conn = withCStrings(keywords) { k in
                withCStrings(values) { v in PQconnectdbParams(k, v, 1) }
            }
            guard let conn else { throw PipelineError(.database, "cannot allocate a PostgreSQL connection") }
            guard PQstatus(conn) == CONNECTION_OK else {
                let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
                PQfinish(conn)
                throw PipelineError(.database, "cannot connect to PostgreSQL at \(settings.redacted): \(message)",
                                    transient: true)
            }
            return PostgresConnection(conn: conn, queue: queue)
        }
    }

    /// Whether the connection is still usable (a pool drops it when not).
    public var isHealthy: Bool {
        queue.sync { PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE }
    }

    /// Whether the server is still there, without a round trip. An idle session that has
    /// something to read has been ended by the server (it sends the reason, then closes): the
    /// pipeline never LISTENs, so nothing else arrives unasked.
    public var isAlive: Bool {
        queue.sync {
            guard PQstatus(conn) == CONNECTION_OK, PQtransactionStatus(conn) == PQTRANS_IDLE else { return false }
            var readable = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
            return poll(&readable, 1, 0) == 0
        }
    }

    /// Runs `work` on the connection's queue; if the awaiting task is cancelled meanwhile, the
    /// statement in flight is cancelled on the server.
    @discardableResult
    public func run<T: Sendable>(_ work: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try Task.checkCancellation()
            return try await BlockingIO.run(on: queue) { try work(self) }
        } onCancel: {
            cancelStatement()
        }
    }

    /// Asks the server to cancel the statement in flight, from any thread.
    public func cancelStatement() {
        guard let cancelHandle else { return }
        var buffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
    }

    /// Runs `body` in one transaction with `app.org_id` set for row-level security; rolls back on
    /// any error.
    @discardableResult
    public func transaction<T: Sendable>(organization: OrganizationID?,
                                         _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await run { db in
            try db.execute("BEGIN")
            do {
                if let organization {
                    try db.execute("SELECT set_config('app.org_id', $1, true)", [organization.rawValue])
                }
                let value = try body(db)
                try db.execute("COMMIT")
                return value
            } catch {
                if PQstatus(db.conn) == CONNECTION_OK { _ = try? db.execute("ROLLBACK") }
                throw error
            }
        }
    }

    // MARK: Synchronous calls: only from inside `run` / `transaction`.

    @discardableResult
    public func execute(_ sql: String, _ parameters: [String?] = []) throws -> Rows {
        let result: OpaquePointer? = withOptionalCStrings(parameters) { values in
            PQexecParams(conn, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        return try consume(result, sql: sql)
    }

    /// Runs several statements separated by semicolons (no parameters), as a migration does.
    public func executeScript(_ sql: String) throws {
        _ = try consume(PQexec(conn, sql), sql: sql)
    }

    /// `COPY … FROM STDIN` with `data` in the text format; returns rows copied.
    @discardableResult
    public func copyIn(_ sql: String, data: Data) throws -> Int {
        var sent = false
        return try copyIn(sql) { buffer in
            guard !sent else { return false }
            buffer.append(contentsOf: data)
            sent = true
            return true
        }
    }

    /// `COPY … FROM STDIN`, the data made piece by piece by `produce` (which fills the buffer and
    /// returns false when there is no more), so making the next piece overlaps the server's work
    /// on the last. Returns rows copied.
    @discardableResult
    public func copyIn(_ sql: String, produce: (inout [UInt8]) throws -> Bool) throws -> Int {
        _ = try consume(PQexec(conn, sql), sql: sql, expectCopyIn: true)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        do {
            while try produce(&buffer) {
                guard !buffer.isEmpty else { continue }
                let rc = buffer.withUnsafeBufferPointer { raw in
                    raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) {
                        PQputCopyData(conn, $0, Int32(raw.count))
                    }
                }
                guard rc == 1 else { throw connectionError("COPY data") }
                buffer.removeAll(keepingCapacity: true)
            }
        } catch {
            _ = PQputCopyEnd(conn, "aborted by the client")
            while let result = PQgetResult(conn) { PQclear(result) }
            throw error
        }
        guard PQputCopyEnd(conn, nil) == 1 else { throw connectionError("COPY end") }
        let rows = try consume(PQgetResult(conn), sql: sql)
        while let extra = PQgetResult(conn) { PQclear(extra) }
        return rows.affected
    }

    private func consume(_ result: OpaquePointer?, sql: String, expectCopyIn: Bool = false) throws -> Rows {
        guard let result else { throw connectionError(sql) }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        if expectCopyIn, status == PGRES_COPY_IN { return Rows(columns: [], values: [], affected: 0) }
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw error(from: result, sql: sql)
        }
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var values: [[String?]] = []
        values.reserveCapacity(Int(PQntuples(result)))
        for row in 0..<PQntuples(result) {
            values.append((0..<columnCount).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            })
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return Rows(columns: columns, values: values, affected: affected)
    }

    /// SQLSTATE classes that mean the connection or server went away: worth a retry of the unit.
    private func error(from result: OpaquePointer, sql: String) -> PipelineError {
        let state = lightsail_pq_sqlstate(result).map { String(cString: $0) } ?? ""
        let message = lightsail_pq_primary_message(result).map { String(cString: $0) }
            ?? String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
        if PQstatus(conn) != CONNECTION_OK {
            return PipelineError(.database, "the connection to PostgreSQL was lost: \(message)", detail: sql, transient: true)
        }
        let transient = state.hasPrefix("08") || state == "40001" || state == "40P01" || state == "57P01"
        let cancelled = state == "57014"
        return PipelineError(.database, cancelled ? "PostgreSQL statement cancelled or timed out: \(message)"
                                                  : "PostgreSQL: \(message) (SQLSTATE \(state))",
                             detail: sql, transient: transient)
    }

    private func connectionError(_ what: String) -> PipelineError {
        let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
        if PQstatus(conn) != CONNECTION_OK {
            return PipelineError(.database, "the connection to PostgreSQL was lost: \(message)", detail: what, transient: true)
        }
        return PipelineError(.database, "PostgreSQL: \(message)", detail: what)
    }

    /// SQLSTATE of an error thrown by this connection, for callers that handle specific ones.
    public static func isUniqueViolation(_ error: any Error) -> Bool {
        (error as? PipelineError)?.message.contains("SQLSTATE 23505") ?? false
    }
}

/// C string arrays for libpq's parameter lists, valid for the duration of `body`.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    withOptionalCStrings(strings.map { Optional($0) } + [nil]) { body($0!) }
}

func withOptionalCStrings<T>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> T) -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { for pointer in pointers { free(pointer) } }
    if pointers.isEmpty { return body(nil) }
    return pointers.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}
