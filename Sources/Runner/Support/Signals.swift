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
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [unowned self] in
                self.received += 1
                if self.received > 1 { exit(130) }
                StandardError.write("\npipeline: stopping (signal \(signalNumber)); press again to quit at once\n")
                cancel()
            }
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
