import Dispatch
import Foundation

/// Cancels a task on SIGINT or SIGTERM, so work in flight stops and nothing is left half-written.
/// A second signal exits at once.
final class SignalCanceller: @unchecked Sendable {
    // Only touched on `queue`.
    private var sources: [any DispatchSourceSignal] = []
    private var received = 0
    private let queue = DispatchQueue(label: "lightsail.signals")

    init(cancel: @escaping @Sendable () -> Void) {
        install { [unowned self] signalNumber in
            self.received += 1
            if self.received > 1 { exit(130) }
            StandardError.write("\npipeline: stopping (signal \(signalNumber)); press again to quit at once\n")
            cancel()
        }
    }

    /// A worker's signals: the first drains (finish what is in hand, take nothing new), the second
    /// cancels what is in hand, a third exits at once.
    init(drain: @escaping @Sendable () -> Void, cancel: @escaping @Sendable () -> Void) {
        install { [unowned self] signalNumber in
            self.received += 1
            switch self.received {
            case 1:
                StandardError.write("pipeline: draining (signal \(signalNumber)): finishing the jobs in hand; signal again to stop them\n")
                drain()
            case 2:
                StandardError.write("pipeline: stopping the jobs in hand and giving them back\n")
                cancel()
            default:
                exit(130)
            }
        }
    }

    private func install(_ handle: @escaping (Int32) -> Void) {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { handle(signalNumber) }
            source.resume()
            sources.append(source)
        }
    }

    func stop() {
        queue.sync {
            for source in sources { source.cancel() }
            sources.removeAll()
        }
    }
}
