import ArgumentParser
import Foundation
import Pipeline
import Stages
import Storage
import Transport

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the database and the object store; print JSON in the shape of the product's health endpoint.",
        discussion: "Exit 0 when healthy, 1 when not. The storage check writes, reads back and deletes a probe object."
    )

    @OptionGroup var backends: BackendOptions

    @Option(name: .long, help: "Give up on each check after this long.")
    var timeout = "10s"

    func run() async throws {
        guard let limit = parseDuration(timeout), limit > .zero else {
            throw ValidationError("--timeout '\(timeout)' is not a duration")
        }
        async let database = check(limit) { try await checkDatabase() }
        async let storage = check(limit) { try await checkStorage() }
        var checks = await ["database": database, "storage": storage]
        if case .postgres? = try? backends.databaseChoice() {
            checks["queue"] = await check(limit) { try await checkQueue() }
        }
        let healthy = checks.values.allSatisfy { $0["status"] as? String == "ok" }
        let document: [String: Any] = ["status": healthy ? "healthy" : "unhealthy", "checks": checks,
                                       "timestamp": Timestamp.iso8601(Date())]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
        if !healthy { throw Exit.problems }
    }

    /// A check's answer: plain JSON values (strings, numbers, dictionaries of them).
    struct JSONFields: @unchecked Sendable { var fields: [String: Any] }

    /// Runs one check with a time limit; a failure becomes `{"status": "error", "error": ...}`.
    func check(_ limit: Duration, _ body: @escaping @Sendable () async throws -> [String: Any]) async -> [String: Any] {
        let start = ContinuousClock.now
        do {
            var result = try await withTimeout(limit, "health check") { JSONFields(fields: try await body()) }.fields
            result["latency_ms"] = Int(((ContinuousClock.now - start) / .milliseconds(1)).rounded())
            return result
        } catch {
            return ["status": "error", "error": (error as? PipelineError)?.message ?? "\(error)"]
        }
    }

    func checkDatabase() async throws -> [String: Any] {
        let store = try await backends.openStore()
        let state = try await store.migrationState()
        let kind: String
        switch try backends.databaseChoice() {
        case .sqlite: kind = "sqlite"
        case .postgres: kind = "postgresql"
        }
        var result = ["backend": kind, "migrations": "\(state.applied)/\(state.latest)"]
        result["status"] = state.applied == state.latest ? "ok" : "error"
        if state.applied != state.latest { result["error"] = "schema at version \(state.applied), needs \(state.latest): run `pipeline db migrate`" }
        return result
    }

    /// The job queue's depth: jobs waiting, running and dead per queue, and how long the oldest
    /// waiting job has waited (what a worker deployment scales on).
    func checkQueue() async throws -> [String: Any] {
        let depths = try await backends.openJobQueue().depth()
        let now = Date()
        let oldest = depths.compactMap(\.oldestWaiting).min()
        var queues: [String: Any] = [:]
        for depth in depths {
            queues[depth.queue.rawValue] = ["waiting": depth.waiting, "running": depth.running, "dead": depth.dead,
                                            "oldest_waiting_seconds": depth.oldestWaiting.map { max(0, Int(now.timeIntervalSince($0))) } ?? 0]
        }
        return ["status": "ok", "waiting": depths.reduce(0) { $0 + $1.waiting }, "running": depths.reduce(0) { $0 + $1.running },
                "dead": depths.reduce(0) { $0 + $1.dead },
                "oldest_waiting_seconds": oldest.map { max(0, Int(now.timeIntervalSince($0))) } ?? 0, "queues": queues]
    }

    func checkStorage() async throws -> [String: Any] {
        let objects = try await backends.openObjects()
        let key = "health/probe-\(UUID().uuidString.lowercased())"
        let payload = Data("lightsail health probe \(Timestamp.iso8601(Date()))".utf8)
        try await objects.put(key, data: payload, contentType: "text/plain", ifAbsent: false)
        let back = try await objects.get(key)
        try await objects.delete(key)
        guard back == payload else { return ["status": "error", "error": "the probe object read back different"] }
        return ["status": "ok", "backend": objects.backend,
                "location": objects.location(of: "")]
    }
}
