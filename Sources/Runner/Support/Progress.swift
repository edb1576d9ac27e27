import Foundation
import Pipeline

/// Progress on standard error: one line redrawn in place on a terminal, plain lines otherwise
/// (stage starts and ends only, never one line per evidence item).
final class ProgressDisplay: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var lineOpen = false
    private let tty: Bool
    private let enabled: Bool

    init(enabled: Bool) {
        self.enabled = enabled
        tty = StandardError.isTerminal
    }

    func handle(_ event: ProgressEvent) {
        guard enabled else { return }
        lock.withLock {
            switch event {
            case let .stageStarted(org, stage):
                show("\(org): \(stage.rawValue)…", force: true)
            case let .evidenceCollected(org, source, count):
                if tty { show("\(org): collect: \(count) evidence items from \(source)", force: false) }
            case let .stageFinished(org, stage, detail):
                show("\(org): \(stage.rawValue) done: \(detail)", force: true, finalLine: true)
            }
        }
    }

    /// Ends a redrawn line before other output is written.
    func close() {
        lock.withLock {
            if tty, lineOpen { StandardError.write("\n") }
            lineOpen = false
        }
    }

    private func show(_ text: String, force: Bool, finalLine: Bool = false) {
        let now = Date()
        if tty {
            guard force || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            StandardError.write("\r\u{1B}[K" + text + (finalLine ? "\n" : ""))
            lineOpen = !finalLine
        } else if finalLine || force {
            StandardError.write(text + "\n")
        }
    }
}
