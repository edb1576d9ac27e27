import Dispatch
import Foundation

/// Runs blocking work (file system, C library calls) off Swift's cooperative pool, on a
/// Dispatch queue, and resumes the caller with its result.
enum BlockingIO {
    static let queue = DispatchQueue(label: "lightsail.blocking-io", attributes: .concurrent)

    static func run<T: Sendable>(on queue: DispatchQueue = BlockingIO.queue,
                                 _ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try work() })
            }
        }
    }
}
