import Foundation

/// The one place blocking work runs: C library calls (SQLite, libpq, libcurl, cairo, libarchive)
/// and the file system. A fixed number of threads take jobs in order, so Swift's cooperative
/// pool never blocks and the process never grows threads under load (as Dispatch's global queues
/// do when their threads block).
///
/// A job must never wait for another job of the same executor: with every thread busy, that
/// would wait forever. Work that needs several blocking steps awaits each one from async code.
/// Serial work on one handle (a database connection) goes through a `SerialLane`.
///
/// `@unchecked Sendable`: `jobs` and `stopped` are guarded by `condition`.
public final class BlockingExecutor: @unchecked Sendable {
    /// Shared by every module in the process. `LIGHTSAIL_BLOCKING_THREADS` sets its width.
    public static let shared = BlockingExecutor(
        threads: ProcessInfo.processInfo.environment["LIGHTSAIL_BLOCKING_THREADS"].flatMap(Int.init) ?? 32,
        name: "lightsail.blocking")

    public let threads: Int
    private let condition = NSCondition()
    /// Waiting jobs from `head` on; a taken job's slot is emptied at once, so nothing it captured
    /// (an 8 MB body) outlives it.
    private var jobs: [(@Sendable () -> Void)?] = []
    private var head = 0

    public init(threads: Int, name: String) {
        self.threads = max(1, threads)
        for index in 0..<self.threads {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "\(name).\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `job` on one of the executor's threads, in submission order.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs `work` on one of the executor's threads and returns its result. A caller cancelled
    /// before its job starts gets `CancellationError` and the job does not run; once started, a
    /// job runs to its end (a blocking call cannot be interrupted: it needs its own time limit).
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await runCancellable(submit: submit, work)
    }

    /// Jobs waiting for a thread (for tests and diagnostics).
    public var pending: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count - head
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            jobs[head] = nil
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024, head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job?()
        }
    }

    /// A lane of this executor whose jobs run one at a time, in order.
    public func makeLane() -> SerialLane { SerialLane(executor: self) }
}

/// Jobs that must not overlap (calls on one database handle) run one at a time, in order, on the
/// shared executor; no thread waits on a lock for its turn.
///
/// `@unchecked Sendable`: `waiting` and `busy` are guarded by `lock`.
public final class SerialLane: @unchecked Sendable {
    private let executor: BlockingExecutor
    private let lock = NSLock()
    private var waiting: [@Sendable () -> Void] = []
    private var busy = false

    init(executor: BlockingExecutor) {
        self.executor = executor
    }

    public func submit(_ job: @escaping @Sendable () -> Void) {
        let start: Bool = lock.withLock {
            if busy {
                waiting.append(job)
                return false
            }
            busy = true
            return true
        }
        if start { executor.submit { self.drain(job) } }
    }

    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await runCancellable(submit: submit, work)
    }

    private func drain(_ first: @escaping @Sendable () -> Void) {
        first()
        let next: (@Sendable () -> Void)? = lock.withLock {
            if waiting.isEmpty {
                busy = false
                return nil
            }
            return waiting.removeFirst()
        }
        // The next job goes to the back of the executor's queue: a busy lane never starves others.
        if let next { executor.submit { self.drain(next) } }
    }
}

/// A submitted job and its waiting caller. Whichever comes first wins: the job starting (it then
/// runs to its end) or the caller being cancelled (it stops waiting at once, and the job, when a
/// thread reaches it, does nothing).
private final class PendingResult<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, any Error>?
    private var state = 0  // 0 waiting, 1 started, 2 cancelled

    func wait(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        lock.withLock {
            guard state == 0 else { return false }
            self.continuation = continuation
            return true
        }
    }

    func start() -> CheckedContinuation<T, any Error>? {
        lock.withLock {
            guard state == 0 else { return nil }
            state = 1
            defer { continuation = nil }
            return continuation
        }
    }

    func cancel() {
        let waiting: CheckedContinuation<T, any Error>? = lock.withLock {
            guard state == 0 else { return nil }
            state = 2
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(throwing: CancellationError())
    }
}

private func runCancellable<T: Sendable>(submit: (@escaping @Sendable () -> Void) -> Void,
                                         _ work: @escaping @Sendable () throws -> T) async throws -> T {
    try Task.checkCancellation()
    let job = PendingResult<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            guard job.wait(continuation) else {
                continuation.resume(throwing: CancellationError())
                return
            }
            submit {
                guard let continuation = job.start() else { return }
                continuation.resume(with: Result { try work() })
            }
        }
    } onCancel: {
        job.cancel()
    }
}
