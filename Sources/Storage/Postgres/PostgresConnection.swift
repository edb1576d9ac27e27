import CPostgres
import Foundation
import Pipeline

/// The one owner of libpq: a connection whose every call runs on its own lane of the shared
/// blocking executor (never on the cooperative pool), with a statement timeout set at connect and
/// cancellation through `PQcancel` when the awaiting task is cancelled.
///
/// Cancelling is tied to the unit of work that asked: each `run` holds a ticket while its
/// statements execute, and a cancel is sent only while that same ticket still holds the
/// connection, under the lock the unit takes to let go of it. So a cancel that arrives late, after
/// the connection went back to the pool, never cancels another unit's (another organization's)
/// statement. The cancel itself runs on the executor; its TCP connection is bounded by
/// `tcp_user_timeout`.
/// `@unchecked Sendable`: `conn` is only touched by jobs of `lane` (or, idle in the pool, by the
/// pool alone); `current` is guarded by `ticketLock`; `cancelHandle` is made for use from other
/// threads (libpq documents PQcancel as safe to call from any thread).
public final class PostgresConnection: @unchecked Sendable {
    let conn: OpaquePointer
    /// Channels this connection LISTENs on (touched only inside `run`).
    var listening: Set<String> = []
    private let cancelHandle: OpaquePointer?
    private let lane: SerialLane
    private let executor: BlockingExecutor
    private let ticketLock = NSLock()
    private var current: UInt64?
    private var nextTicket: UInt64 = 0

    public struct Settings: Sendable {
        /// A `postgres://` URL or `key=value` string; empty means the PG* environment variables.
        public var url: String
        public var connectTimeout: Duration = .seconds(10)
        public var statementTimeout: Duration = .seconds(60)
        public var applicationName = "lightsail-pipeline"
        /// Bounds how long unacknowledged data, and the TCP connect of a cancel request, may hang.
        public var tcpUserTimeout: Duration = .seconds(10)

        public init(url: String) { self.url = url }

        /// The URL with any password replaced, for messages.
        public var redacted: String { url.isEmpty ? "postgres (PG* environment)" : ConnectionString.redact(url) }
    }

    public struct Rows: Sendable {
        public let columns: [String]
        public let values: [[String?]]
        /// Rows changed by an INSERT/UPDATE/DELETE.
        public let affected: Int

        public var first: [String?]? { values.first }
        public func scalar() -> String? { values.first?.first ?? nil }
    }

    private init(conn: OpaquePointer, lane: SerialLane, executor: BlockingExecutor) {
        self.conn = conn
        self.lane = lane
        self.executor = executor
        cancelHandle = PQgetCancel(conn)
    }

    deinit {
        if let cancelHandle { PQfreeCancel(cancelHandle) }
        PQfinish(conn)
    }

    public static func connect(_ settings: Settings, executor: BlockingExecutor = .shared) async throws -> PostgresConnection {
        let lane = executor.makeLane()
        return try await lane.run {
            let seconds = max(1, Int(settings.connectTimeout.components.seconds))
            let ms = milliseconds(settings.statementTimeout)
            let keywords = ["connect_timeout", "application_name", "options", "tcp_user_timeout", "keepalives",
                            "keepalives_idle", "dbname"]
            let values = [String(seconds), settings.applicationName, "-c statement_timeout=\(ms)",
                          String(milliseconds(settings.tcpUserTimeout)), "1", "30", settings.url]
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
            return PostgresConnection(conn: conn, lane: lane, executor: executor)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Whether the connection is still usable (a pool drops it when not). Only for a connection no
    /// unit is using (the pool's): these read libpq's state without the lane.
    public var isHealthy: Bool {
        PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE
    }

    /// Whether the server is still there, without a round trip. An idle session that has
    /// something to read has been ended by the server (it sends the reason, then closes): the
    /// pipeline never LISTENs, so nothing else arrives unasked.
    public var isAlive: Bool {
        guard isHealthy else { return false }
        var readable = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        return poll(&readable, 1, 0) == 0
    }

    /// Runs `work` on the connection's lane; if the awaiting task is cancelled while it runs, the
    /// statement in flight (and only this unit's) is cancelled on the server.
    @discardableResult
    public func run<T: Sendable>(_ work: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let ticket: UInt64 = ticketLock.withLock {
            nextTicket += 1
            return nextTicket
        }
        return try await withTaskCancellationHandler {
            try await lane.run {
                self.ticketLock.withLock { self.current = ticket }
                // Letting go takes the lock a cancel holds while it is sent: a cancel in flight
                // finishes before the connection can serve anyone else.
                defer { self.ticketLock.withLock { self.current = nil } }
                return try work(self)
            }
        } onCancel: {
            cancel(ticket: ticket)
        }
    }

    /// Sends a cancel for the statement of `ticket`, on the executor, if that unit still holds
    /// the connection. Returns at once.
    func cancel(ticket: UInt64) {
        guard cancelHandle != nil else { return }
        executor.submit {
            // A cancel only stops a statement the server is running: one sent in the instant
            // between the unit starting and its statement reaching the server is lost (and one can
            // fail to be sent to a busy server). So it is sent again, a little later each time,
            // for as long as this unit holds the connection; each under the lock the unit takes to
            // let go, so none can reach the next unit's statement.
            var buffer = [CChar](repeating: 0, count: 256)
            for attempt in 0..<20 {
                let sent: Bool = self.ticketLock.withLock {
                    guard self.current == ticket, let cancelHandle = self.cancelHandle else { return false }
                    _ = PQcancel(cancelHandle, &buffer, Int32(buffer.count))
                    return true
                }
                guard sent else { return }
                usleep(UInt32(min(50_000 << attempt, 500_000)))
            }
        }
    }

    /// The ticket of the unit now running on the connection, for tests.
    var runningTicket: UInt64? { ticketLock.withLock { current } }
    /// The ticket given most recently, for tests.
    var lastTicketForTests: UInt64? { ticketLock.withLock { nextTicket == 0 ? nil : nextTicket } }

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

    /// The server's error as fields callers branch on (SQLSTATE, detail, hint, constraint);
    /// SQLSTATE classes that mean the connection or server went away are worth a retry of the unit.
    private func error(from result: OpaquePointer, sql: String) -> PipelineError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let state = field("C") ?? ""
        let message = field("M") ?? String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
        var fields: [PipelineError.Field: String] = [.sqlState: state, .serverMessage: message]
        fields[.serverDetail] = field("D")
        fields[.serverHint] = field("H")
        fields[.serverConstraint] = field("n")
        if PQstatus(conn) != CONNECTION_OK {
            return PipelineError(.database, "the connection to PostgreSQL was lost: \(message)", detail: sql, fields: fields,
                                 transient: true)
        }
        let transient = state.hasPrefix("08") || state == "40001" || state == "40P01" || state == "57P01"
        let cancelled = state == "57014"
        return PipelineError(.database, cancelled ? "PostgreSQL statement cancelled or timed out: \(message)"
                                                  : "PostgreSQL: \(message) (SQLSTATE \(state))",
                             detail: sql, fields: fields, transient: transient)
    }

    private func connectionError(_ what: String) -> PipelineError {
        let message = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
        if PQstatus(conn) != CONNECTION_OK {
            return PipelineError(.database, "the connection to PostgreSQL was lost: \(message)", detail: what,
                                 fields: [.serverMessage: message], transient: true)
        }
        return PipelineError(.database, "PostgreSQL: \(message)", detail: what, fields: [.serverMessage: message])
    }

    /// Whether `error` is PostgreSQL's unique violation (SQLSTATE 23505), read from its field.
    public static func isUniqueViolation(_ error: any Error) -> Bool {
        (error as? PipelineError)?[.sqlState] == "23505"
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
