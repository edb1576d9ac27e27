import Foundation

/// A stream with room for `capacity` (items, or bytes when senders weigh what they send): a sender
/// waits while that much is sent and not yet taken, so a fast producer (collectors) waits for a
/// slow consumer (storage) instead of filling memory. One element larger than the room still
/// passes, alone. A waiting sender whose task is cancelled stops waiting at once.
public final class BoundedChannel<Element: Sendable>: Sendable {
    private let room: AsyncSemaphore
    private let stream: AsyncStream<(Element, Int)>
    private let continuation: AsyncStream<(Element, Int)>.Continuation

    public init(capacity: Int) {
        room = AsyncSemaphore(permits: max(1, capacity))
        (stream, continuation) = AsyncStream<(Element, Int)>.makeStream()
    }

    /// Sends `element` of `weight`, waiting for room.
    public func send(_ element: Element, weight: Int = 1) async throws {
        let weight = max(1, weight)
        try await room.acquire(weight: weight)
        continuation.yield((element, weight))
    }

    /// No more elements: the receiver's loop ends once it has taken what was sent.
    public func finish() {
        continuation.finish()
    }

    /// The elements in order; taking one makes room for a sender.
    public var elements: AsyncMapSequence<AsyncStream<(Element, Int)>, Element> {
        stream.map { [room] element, weight in
            room.release(weight: weight)
            return element
        }
    }
}
