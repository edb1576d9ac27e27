import Foundation

/// A weighted semaphore's state: how much of the capacity is free, and the waiters in arrival
/// order with what each asks for. Pure: no locks, no continuations of its own, so every transition
/// is tested alone. `Waiter` is whatever the shell resumes (a continuation in `AsyncSemaphore`).
///
/// Waiters are served strictly in order (a small late arrival never overtakes a large one that
/// waits). A request larger than the whole capacity is granted once nothing else is held, so it
/// waits but never forever.
public struct SemaphoreState<Waiter> {
    public let capacity: Int
    public private(set) var available: Int
    private var waiters: [(id: UInt64, weight: Int, waiter: Waiter)] = []

    public init(permits: Int) {
        capacity = max(1, permits)
        available = capacity
    }

    public var waiting: Int { waiters.count }

    private func fits(_ weight: Int) -> Bool {
        weight <= available || available == capacity
    }

    /// Takes `weight` (true), or queues `waiter` under `id` (false).
    public mutating func acquire(id: UInt64, weight: Int = 1, waiter: Waiter) -> Bool {
        let weight = max(1, weight)
        if waiters.isEmpty, fits(weight) {
            available -= weight
            return true
        }
        waiters.append((id, weight, waiter))
        return false
    }

    /// Gives `weight` back; returns the waiters it lets in, oldest first, to be resumed.
    public mutating func release(weight: Int = 1) -> [Waiter] {
        available += max(1, weight)
        return admit()
    }

    /// Removes a waiter that gave up (cancelled, timed out); returns it to be resumed with the
    /// error (nil when it was already let in), and the waiters behind it that now fit.
    public mutating func cancel(id: UInt64) -> (cancelled: Waiter?, admitted: [Waiter]) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return (nil, []) }
        let removed = waiters.remove(at: index).waiter
        return (removed, index == 0 ? admit() : [])
    }

    private mutating func admit() -> [Waiter] {
        var admitted: [Waiter] = []
        while let first = waiters.first, fits(first.weight) {
            available -= first.weight
            admitted.append(waiters.removeFirst().waiter)
        }
        return admitted
    }
}

/// At most `permits` held at once (one each by default, or a weight such as a body's bytes); the
/// rest wait in order. A waiter whose task is cancelled (or whose timeout fires) stops waiting at
/// once with `CancellationError`, without taking anything from anyone.
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

    public func acquire(weight: Int = 1) async throws {
        let id: UInt64 = lock.withLock {
            nextID += 1
            return nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let granted: Bool? = lock.withLock {
                    // Checked under the lock: a cancellation that came first has set the flag.
                    if Task.isCancelled { return nil }
                    return state.acquire(id: id, weight: weight, waiter: continuation)
                }
                switch granted {
                case nil: continuation.resume(throwing: CancellationError())
                case true?: continuation.resume()
                case false?: break
                }
            }
        } onCancel: {
            let (cancelled, admitted) = lock.withLock { state.cancel(id: id) }
            cancelled?.resume(throwing: CancellationError())
            for waiter in admitted { waiter.resume() }
        }
    }

    public func release(weight: Int = 1) {
        for waiter in lock.withLock({ state.release(weight: weight) }) { waiter.resume() }
    }

    /// Runs `body` holding a permit.
    public func withPermit<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }
}
