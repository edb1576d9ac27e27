import Foundation
import Pipeline
import PipelineTesting
import Testing

@Suite struct SemaphoreStateTests {
    typealias State = SemaphoreState<String>

    @Test func permitsAreTakenThenWaitersQueueInOrder() {
        var state = State(permits: 2)
        do { let result = state.acquire(id: 1, waiter: "a"); #expect(result) }
        do { let result = state.acquire(id: 2, waiter: "b"); #expect(result) }
        do { let result = state.acquire(id: 3, waiter: "c"); #expect(!result) }
        do { let result = state.acquire(id: 4, waiter: "d"); #expect(!result) }
        do { let result = state.release(); #expect(result == ["c"]) }
        do { let result = state.release(); #expect(result == ["d"]) }
        do { let result = state.release(); #expect(result == []) }
        #expect(state.available == 1)
    }

    @Test func aCancelledWaiterLeavesWithoutTakingAPermit() {
        var state = State(permits: 1)
        do { let result = state.acquire(id: 1, waiter: "a"); #expect(result) }
        do { let result = state.acquire(id: 2, waiter: "b"); #expect(!result) }
        do { let result = state.acquire(id: 3, waiter: "c"); #expect(!result) }
        do { let result = state.cancel(id: 2).cancelled; #expect(result == "b") }
        do { let result = state.cancel(id: 2).cancelled; #expect(result == nil) }
        do { let result = state.release(); #expect(result == ["c"]) }
        do { let result = state.release(); #expect(result == []) }
        #expect(state.available == 1)
    }

    @Test func weightsWaitForRoomInOrderAndAnOversizedOneGoesAlone() {
        var state = State(permits: 10)
        do { let result = state.acquire(id: 1, weight: 6, waiter: "a"); #expect(result) }
        do { let result = state.acquire(id: 2, weight: 6, waiter: "b"); #expect(!result) }
        // A small request behind a waiting large one does not overtake it.
        do { let result = state.acquire(id: 3, weight: 1, waiter: "c"); #expect(!result) }
        do { let result = state.release(weight: 6); #expect(result == ["b", "c"]) }
        #expect(state.available == 3)
        // Larger than everything: it waits for the rest to go, then goes alone.
        do { let result = state.acquire(id: 4, weight: 50, waiter: "d"); #expect(!result) }
        do { let result = state.release(weight: 6); #expect(result == []) }
        do { let result = state.release(weight: 1); #expect(result == ["d"]) }
        #expect(state.available == -40)
        do { let result = state.release(weight: 50); #expect(result == []) }
        #expect(state.available == 10)
    }

    @Test func cancellingTheHeadLetsTheNextOnesIn() {
        var state = State(permits: 4)
        do { let result = state.acquire(id: 1, weight: 3, waiter: "a"); #expect(result) }
        do { let result = state.acquire(id: 2, weight: 4, waiter: "b"); #expect(!result) }
        do { let result = state.acquire(id: 3, weight: 1, waiter: "c"); #expect(!result) }
        let (cancelled, admitted) = state.cancel(id: 2)
        #expect(cancelled == "b")
        #expect(admitted == ["c"])
    }
}

@Suite struct AsyncSemaphoreTests {
    @Test func aCancelledWaiterStopsWaitingAtOnce() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let waiter = Task { try await semaphore.acquire() }
        while semaphore.waiting == 0 { await Task.yield() }
        let start = ContinuousClock.now
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        // At once (it would otherwise wait forever; the bound is generous for a loaded machine).
        #expect(ContinuousClock.now - start < .seconds(10))
        // The permit it never got is still the holder's to give back, and is not lost.
        semaphore.release()
        #expect(semaphore.available == 1)
        try await semaphore.acquire()
    }

    @Test func aTimeoutEndsTheWait() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        await #expect(throws: PipelineError.self) {
            try await withTimeout(.milliseconds(50), "waiting for a permit") { try await semaphore.acquire() }
        }
        #expect(semaphore.waiting == 0)
    }

    @Test func noMoreThanThePermitsHoldAtOnce() async throws {
        let semaphore = AsyncSemaphore(permits: 3)
        let gauge = ConcurrencyGauge()
        try await forEachConcurrently(0..<30, width: 30) { _ in
            try await semaphore.withPermit {
                await gauge.enter()
                try await Task.sleep(for: .milliseconds(2))
                await gauge.leave()
            }
        }
        #expect(await gauge.peak == 3)
        #expect(await gauge.finished == 30)
    }
}

@Suite struct BlockingExecutorTests {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var current = 0
        private(set) var peak = 0
        func enter() { lock.withLock { current += 1; peak = max(peak, current) } }
        func leave() { lock.withLock { current -= 1 } }
        var highest: Int { lock.withLock { peak } }
    }

    @Test func noMoreJobsRunAtOnceThanItHasThreads() async throws {
        let executor = BlockingExecutor(threads: 3, name: "test.width")
        let counter = Counter()
        try await forEachConcurrently(0..<24, width: 24) { _ in
            try await executor.run {
                counter.enter()
                usleep(5_000)
                counter.leave()
            }
        }
        #expect(counter.highest == 3)
    }

    @Test func aCallerCancelledWhileItsJobWaitsStopsAtOnceAndTheJobNeverRuns() async throws {
        let executor = BlockingExecutor(threads: 1, name: "test.cancel")
        let gate = Gate()
        let blocker = Task { try await executor.run { gate.wait() } }
        while executor.pending > 0 { await Task.yield() }
        let ran = Counter()
        let waiting = Task { try await executor.run { ran.enter() } }
        while executor.pending == 0 { await Task.yield() }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        gate.open()
        try await blocker.value
        try await executor.run {}  // the skipped job has been passed by now
        #expect(ran.highest == 0)
    }

    @Test func aLaneRunsItsJobsOneAtATimeInOrder() async throws {
        let lane = BlockingExecutor(threads: 4, name: "test.lane").makeLane()
        let counter = Counter()
        let order = OrderBox()
        try await forEachConcurrently(0..<20, width: 20) { n in
            try await lane.run {
                counter.enter()
                usleep(500)
                order.append(n)
                counter.leave()
            }
        }
        #expect(counter.highest == 1)
        #expect(order.values.count == 20)
    }

    /// Holds an executor thread until opened.
    final class Gate: @unchecked Sendable {
        private let condition = NSCondition()
        private var isOpen = false
        func wait() {
            condition.lock()
            while !isOpen { condition.wait() }
            condition.unlock()
        }
        func open() {
            condition.lock()
            isOpen = true
            condition.broadcast()
            condition.unlock()
        }
    }

    final class OrderBox: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [Int] = []
        func append(_ n: Int) { lock.withLock { items.append(n) } }
        var values: [Int] { lock.withLock { items } }
    }
}

@Suite struct BoundedChannelTests {
    @Test func aSenderWaitsWhileTheRoomIsFull() async throws {
        let channel = BoundedChannel<Int>(capacity: 10)
        let sent = ManagedCount()
        let producer = Task {
            for n in 0..<5 {
                try await channel.send(n, weight: 4)
                sent.increment()
            }
            channel.finish()
        }
        // Room for 10: two sends of 4 fit, the third waits until something is taken.
        try await Task.sleep(for: .milliseconds(100))
        #expect(sent.value == 2)
        var received: [Int] = []
        for await n in channel.elements { received.append(n) }
        try await producer.value
        #expect(received == [0, 1, 2, 3, 4])
    }

    @Test func aWaitingSenderIsCancellable() async throws {
        let channel = BoundedChannel<Int>(capacity: 1)
        try await channel.send(1)
        let blocked = Task { try await channel.send(2) }
        try await Task.sleep(for: .milliseconds(20))
        blocked.cancel()
        await #expect(throws: CancellationError.self) { try await blocked.value }
    }

    final class ManagedCount: @unchecked Sendable {
        private let lock = NSLock()
        private var count = 0
        func increment() { lock.withLock { count += 1 } }
        var value: Int { lock.withLock { count } }
    }
}
