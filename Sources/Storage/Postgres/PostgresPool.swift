import Foundation
import Pipeline

/// A small pool of PostgreSQL connections: at most `size` open at once; callers beyond that wait
/// their turn, and a waiter whose task is cancelled stops waiting at once. A connection that comes
/// back broken or mid-transaction is closed, not reused; an idle one the server has since closed
/// is dropped on checkout rather than lent out. The decisions live in `PoolState`.
///
/// `@unchecked Sendable`: `state` and `nextID` are guarded by `lock`.
public final class PostgresPool: @unchecked Sendable {
    typealias Grant = PoolGrant<PostgresConnection>
    typealias Waiter = CheckedContinuation<Grant, any Error>

    public let settings: PostgresConnection.Settings
    private let lock = NSLock()
    private var state: PoolState<PostgresConnection, Waiter>
    private var nextID: UInt64 = 0

    public init(settings: PostgresConnection.Settings, size: Int = 4) {
        self.settings = settings
        state = PoolState(size: size)
    }

    public var size: Int { state.size }

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
            switch try await grant() {
            case .use(let connection):
                // An idle connection the server has since closed (a restart, an idle timeout, a
                // terminated backend) is dropped here, not lent out to fail a unit of work.
                if connection.isAlive { return connection }
                resume(lock.withLock { state.release() })
            case .open:
                do {
                    return try await PostgresConnection.connect(settings)
                } catch {
                    resume(lock.withLock { state.release() })
                    throw error
                }
            }
        }
    }

    /// Something to use or the right to open, now or once another caller lets go.
    private func grant() async throws -> Grant {
        let id: UInt64 = lock.withLock {
            nextID += 1
            return nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                enum Outcome { case cancelled, granted(Grant), queued }
                let outcome: Outcome = lock.withLock {
                    // Checked under the lock: a cancellation that came first has set the flag.
                    if Task.isCancelled { return .cancelled }
                    return state.checkout(id: id, waiter: continuation).map(Outcome.granted) ?? .queued
                }
                switch outcome {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .granted(let grant): continuation.resume(returning: grant)
                case .queued: break
                }
            }
        } onCancel: {
            lock.withLock { state.cancel(id: id) }?.resume(throwing: CancellationError())
        }
    }

    private func checkin(_ connection: PostgresConnection) {
        resume(lock.withLock { state.checkin(connection, reusable: connection.isHealthy) })
    }

    private func resume(_ handoff: (Waiter, Grant)?) {
        guard let (waiter, grant) = handoff else { return }
        waiter.resume(returning: grant)
    }

    /// Closes idle connections (lent ones close when returned).
    public func shutdown() {
        _ = lock.withLock { state.drain() }
    }
}
