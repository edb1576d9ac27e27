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
public func withTimeout<T: Sendable>(
    _ limit: Duration, _ what: @autoclosure () -> String,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let label = what()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw CancellationError() }
        if let value = first { return value }
        throw PipelineError.timeout(label, after: limit)
    }
}
