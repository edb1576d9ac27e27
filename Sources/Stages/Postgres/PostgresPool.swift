import Foundation
import Pipeline

/// A small pool of PostgreSQL connections: at most `size` open at once; callers beyond that wait
/// their turn. A connection that comes back broken or mid-transaction is closed, not reused.
public actor PostgresPool {
    public let settings: PostgresConnection.Settings
    public let size: Int
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(settings: PostgresConnection.Settings, size: Int = 4) {
        self.settings = settings
        self.size = max(1, size)
    }

    /// Lends a connection to `body`, returning it afterwards.
    public func withConnection<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await checkout()
        do {
            let value = try await body(connection)
            checkin(connection)
            return value
        } catch {
            checkin(connection)
            throw error
        }
    }

    private func checkout() async throws -> PostgresConnection {
        while true {
            try Task.checkCancellation()
            // An idle connection the server has since closed (a restart, an idle timeout, a
            // terminated backend) is dropped here, not lent out to fail a unit of work.
            while let connection = idle.popLast() {
                if connection.isAlive { return connection }
                open -= 1
            }
            if open < size {
                open += 1
                do {
                    return try await PostgresConnection.connect(settings)
                } catch {
                    open -= 1
                    wakeOne()
                    throw error
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    private func checkin(_ connection: PostgresConnection) {
        if connection.isHealthy {
            idle.append(connection)
        } else {
            open -= 1
        }
        wakeOne()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Closes idle connections (open ones close when returned).
    public func shutdown() {
        open -= idle.count
        idle.removeAll()
    }
}
