import Foundation

/// What a caller of a pool is given: a connection to use, or the right to open a new one.
public enum PoolGrant<Connection> {
    case use(Connection)
    case open
}

extension PoolGrant: Sendable where Connection: Sendable {}

/// A connection pool's state: idle connections, how many are open, and callers waiting in
/// arrival order. Pure (no I/O, no locks), so every transition is tested alone; the
/// `PostgresPool` shell opens connections, checks them and resumes waiters as told.
///
/// Invariants: `open` counts idle, lent and being-opened connections and never exceeds `size`;
/// a caller waits only while nothing is idle and `open == size`.
public struct PoolState<Connection, Waiter> {
    public typealias Grant = PoolGrant<Connection>

    public let size: Int
    public private(set) var open = 0
    private var idle: [Connection] = []
    private var waiters: [(id: UInt64, waiter: Waiter)] = []

    public init(size: Int) {
        self.size = max(1, size)
    }

    public var idleCount: Int { idle.count }
    public var waiting: Int { waiters.count }

    /// A caller asks for a connection: it gets an idle one, the right to open one, or waits
    /// (nil: `waiter` was queued under `id`).
    public mutating func checkout(id: UInt64, waiter: Waiter) -> Grant? {
        if let connection = idle.popLast() { return .use(connection) }
        if open < size {
            open += 1
            return .open
        }
        waiters.append((id, waiter))
        return nil
    }

    /// A connection comes back. Reusable, it goes to the oldest waiter or to the idle list; not
    /// reusable (broken, mid-transaction, or found dead), its slot goes to the oldest waiter to
    /// open a new one, or is freed.
    public mutating func checkin(_ connection: Connection, reusable: Bool) -> (Waiter, Grant)? {
        if reusable {
            if waiters.isEmpty {
                idle.append(connection)
                return nil
            }
            return (waiters.removeFirst().waiter, .use(connection))
        }
        return release()
    }

    /// A slot given up without a connection (opening failed, or an idle one was found dead).
    public mutating func release() -> (Waiter, Grant)? {
        if waiters.isEmpty {
            open -= 1
            return nil
        }
        return (waiters.removeFirst().waiter, .open)
    }

    /// A waiter gave up (cancelled, timed out): returned to be resumed with the error, or nil if
    /// it was already granted something.
    public mutating func cancel(id: UInt64) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).waiter
    }

    /// Closes the idle connections (returned to be closed); lent ones close when they come back.
    public mutating func drain() -> [Connection] {
        defer {
            open -= idle.count
            idle.removeAll()
        }
        return idle
    }
}
