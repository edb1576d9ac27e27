import Foundation

/// A stream with room for `capacity` items: a sender waits while that many are sent and not yet
/// taken, so a fast producer (collectors) waits for a slow consumer (storage) instead of filling
/// memory. A waiting sender whose task is cancelled stops waiting at once.
public final class BoundedChannel<Element: Sendable>: Sendable {
    private let room: AsyncSemaphore
    private let stream: AsyncStream<Element>
    private let continuation: AsyncStream<Element>.Continuation

    public init(capacity: Int) {
        room = AsyncSemaphore(permits: max(1, capacity))
        (stream, continuation) = AsyncStream<Element>.makeStream()
    }

    /// Sends `element`, waiting for room.
    public func send(_ element: Element) async throws {
        try await room.acquire()
        continuation.yield(element)
    }

    /// No more elements: the receiver's loop ends once it has taken what was sent.
    public func finish() {
        continuation.finish()
    }

    /// The elements in order; taking one makes room for a sender.
    public var elements: AsyncMapSequence<AsyncStream<Element>, Element> {
        stream.map { [room] element in
            room.release()
            return element
        }
    }
}
