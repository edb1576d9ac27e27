import Foundation

/// A counting semaphore's state: free permits and the waiters in arrival order. Pure: no locks,
/// no continuations of its own, so every transition is tested alone. `Waiter` is whatever the
/// shell resumes (a continuation in `AsyncSemaphore`).
///
/// Invariant: a waiter exists only while no permit is free; `release` hands its permit straight
/// to the oldest waiter, so a late arrival never overtakes one that waits.
public struct SemaphoreState<Waiter> {
    public private(set) var available: Int
    private var waiters: [(id: UInt64, waiter: Waiter)] = []

    public init(permits: Int) {
        available = max(0, permits)
    }

    public var waiting: Int { waiters.count }

    /// Takes a permit (true), or queues `waiter` under `id` (false).
    public mutating func acquire(id: UInt64, waiter: Waiter) -> Bool {
        if available > 0 {
            available -= 1
            return true
        }
        waiters.append((id, waiter))
        return false
    }

    /// Gives a permit back: to the oldest waiter (returned, to be resumed) or to the pool.
    public mutating func release() -> Waiter? {
        if waiters.isEmpty {
            available += 1
            return nil
        }
        return waiters.removeFirst().waiter
    }

    /// Removes a waiter that gave up (cancelled, timed out); returns it to be resumed with the
    /// error, or nil when it was already granted a permit.
    public mutating func cancel(id: UInt64) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).waiter
    }
}

/// At most `permits` holders at once; the rest wait in order. A waiter whose task is cancelled
/// (or whose timeout fires) stops waiting at once with `CancellationError`, without taking a
/// permit from anyone.
///
/// `@unchecked Sendable`: `state` and `nextID` are guarded by `lock`.
public final class AsyncSemaphore: @unchecked Sendable {
    private let lock = NSLock()
    private var state: SemaphoreState<CheckedContinuation<Void, any Error>>
    private var nextID: UInt64 = 0

    public init(permits: Int) {
        state = SemaphoreState(permits: max(1, permits))
    }

    public var waiting: Int { lock.withLock { state.waiting } }
    public var available: Int { lock.withLock { state.available } }

    public func acquire() async throws {
        let id: UInt64 = lock.withLock {
            nextID += 1
            return nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let granted: Bool? = lock.withLock {
                    // Checked under the lock: a cancellation that came first has set the flag.
                    if Task.isCancelled { return nil }
                    return state.acquire(id: id, waiter: continuation)
                }
                switch granted {
                case nil: continuation.resume(throwing: CancellationError())
                case true?: continuation.resume()
                case false?: break
                }
            }
        } onCancel: {
            let waiter = lock.withLock { state.cancel(id: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    public func release() {
        let waiter = lock.withLock { state.release() }
        waiter?.resume()
    }

    /// Runs `body` holding a permit.
    public func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }
}
