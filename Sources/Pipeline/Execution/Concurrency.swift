import Foundation

/// Runs `body` for every element with at most `width` running at once. Structured: every child
/// is awaited; the first error cancels the rest and is rethrown; cancellation of the caller
/// flows down to every child.
public func forEachConcurrently<S: Sequence>(
    _ elements: S, width: Int,
    _ body: @escaping @Sendable (S.Element) async throws -> Void
) async throws where S.Element: Sendable {
    let width = max(1, width)
    try await withThrowingTaskGroup(of: Void.self) { group in
        var iterator = elements.makeIterator()
        var running = 0
        while running < width, let next = iterator.next() {
            group.addTask { try await body(next) }
            running += 1
        }
        while try await group.next() != nil {
            if let next = iterator.next() {
                try Task.checkCancellation()
                group.addTask { try await body(next) }
            }
        }
    }
}

/// Like `forEachConcurrently` but collecting results in input order.
public func mapConcurrently<S: Sequence, T: Sendable>(
    _ elements: S, width: Int,
    _ transform: @escaping @Sendable (S.Element) async throws -> T
) async throws -> [T] where S.Element: Sendable {
    let width = max(1, width)
    return try await withThrowingTaskGroup(of: (Int, T).self) { group in
        var results: [T?] = []
        var iterator = elements.enumerated().makeIterator()
        var running = 0
        while running < width, let (index, next) = iterator.next() {
            results.append(nil)
            group.addTask { (index, try await transform(next)) }
            running += 1
        }
        while let (index, value) = try await group.next() {
            results[index] = value
            if let (nextIndex, next) = iterator.next() {
                try Task.checkCancellation()
                results.append(nil)
                group.addTask { (nextIndex, try await transform(next)) }
            }
        }
        return results.map { $0! }
    }
}

/// Runs `operation`, throwing `PipelineError.timeout` if it has not finished within `limit`.
/// The operation is cancelled on timeout; it must honor cancellation (blocking C calls need
/// their own timeouts too, since cancellation cannot interrupt them).
///
/// The limit is a dispatch timer cancelled as soon as the operation ends, not a sleeping task: a
/// cancelled `Task.sleep` keeps its timer (and its task's memory) until the deadline would have
/// passed, so thousands of quick requests under a 30-second limit held megabytes for 30 seconds.
public func withTimeout<T: Sendable>(
    _ limit: Duration, _ what: @autoclosure () -> String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let label = what()
    let expired = TimeoutFlag()
    let task = Task { try await operation() }
    let timer = DispatchSource.makeTimerSource(queue: .global())
    timer.setEventHandler {
        expired.set()
        task.cancel()
    }
    let nanoseconds = limit / .nanoseconds(1)
    timer.schedule(deadline: .now() + .nanoseconds(Int(min(nanoseconds, Double(Int.max / 2)))))
    timer.resume()
    defer { timer.cancel() }
    return try await withTaskCancellationHandler {
        do {
            return try await task.value
        } catch {
            if expired.isSet { throw PipelineError.timeout(label, after: limit) }
            throw error
        }
    } onCancel: {
        task.cancel()
    }
}

/// Set once, from the timer's queue; read after the operation ends.
final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
