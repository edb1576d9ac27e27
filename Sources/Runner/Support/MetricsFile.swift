import ArgumentParser
import Foundation
import Metrics
import Pipeline
import Prometheus

struct MetricsOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Write metrics in the Prometheus text format to this file (node_exporter's textfile collector reads *.prom).", valueName: "path"))
    var metricsFile: String?

    func validate() throws {
        guard let metricsFile else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: metricsFile).deletingLastPathComponent().path,
                                             isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--metrics-file \(metricsFile): its folder does not exist")
        }
    }

    /// Starts collecting when a file is named: swift-metrics bootstrapped with a Prometheus registry.
    func start() -> MetricsFile? {
        metricsFile.map { MetricsFile.start(URL(fileURLWithPath: $0)) }
    }
}

/// The process's metrics, written whole to a file by renaming a temporary one into place, so a
/// collector never reads half a file.
final class MetricsFile: Sendable {
    let registry: PrometheusCollectorRegistry
    let file: URL

    private init(registry: PrometheusCollectorRegistry, file: URL) {
        self.registry = registry
        self.file = file
    }

    private static let shared = PrometheusCollectorRegistry()

    static func start(_ file: URL) -> MetricsFile {
        var factory = PrometheusMetricsFactory(registry: shared)
        // Runs and jobs take seconds to minutes.
        factory.defaultDurationHistogramBuckets = [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(15),
                                                .seconds(60), .seconds(300), .seconds(900), .seconds(3600)]
        MetricsSystem.bootstrap(factory)
        return MetricsFile(registry: shared, file: file)
    }

    func write() throws {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        let temporary = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).\(getpid()).tmp")
        do {
            try Data(buffer).write(to: temporary)
            guard rename(temporary.path, file.path) == 0 else {
                throw PipelineError(.storage, "cannot write the metrics file \(file.path): \(String(cString: strerror(errno)))")
            }
        } catch let error as PipelineError {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw PipelineError(.storage, "cannot write the metrics file \(file.path): \(error.localizedDescription)")
        }
    }
}

/// What runs and jobs report, through swift-metrics (a no-op unless a metrics file is named).
enum RunMetrics {
    static func run(_ outcome: RunOutcome, duration: Duration) {
        let pipeline = outcome.run.pipeline
        let status = outcome.sourceErrors.isEmpty ? "succeeded" : "sources_failed"
        Metrics.Timer(label: "lightsail_run_duration_seconds", dimensions: [("pipeline", pipeline), ("status", status)])
            .recordNanoseconds(Int64(duration / .nanoseconds(1)))
        Counter(label: "lightsail_runs_total", dimensions: [("pipeline", pipeline), ("status", status)]).increment()
        Counter(label: "lightsail_evidence_collected_total", dimensions: [("pipeline", pipeline)]).increment(by: outcome.evidenceCollected)
        Counter(label: "lightsail_evidence_new_total", dimensions: [("pipeline", pipeline)]).increment(by: outcome.evidenceNew)
        for (status, count) in Dictionary(grouping: outcome.results, by: \.status).mapValues(\.count) {
            Counter(label: "lightsail_check_outcomes_total", dimensions: [("pipeline", pipeline), ("status", status.rawValue)])
                .increment(by: count)
        }
        for source in outcome.sourceErrors.keys {
            Counter(label: "lightsail_failures_total", dimensions: [("pipeline", pipeline), ("kind", "source:\(source)")]).increment()
        }
    }

    static func failed(pipeline: String, duration: Duration) {
        Metrics.Timer(label: "lightsail_run_duration_seconds", dimensions: [("pipeline", pipeline), ("status", "failed")])
            .recordNanoseconds(Int64(duration / .nanoseconds(1)))
        Counter(label: "lightsail_runs_total", dimensions: [("pipeline", pipeline), ("status", "failed")]).increment()
        Counter(label: "lightsail_failures_total", dimensions: [("pipeline", pipeline), ("kind", "run")]).increment()
    }

    /// A job's end: `succeeded`, `retried` (waits for another attempt), `dead`, `lost`, `released`.
    static func job(queue: Job.Queue, outcome: String) {
        Counter(label: "lightsail_jobs_total", dimensions: [("queue", queue.rawValue), ("outcome", outcome)]).increment()
        if outcome == "retried" { Counter(label: "lightsail_job_retries_total", dimensions: [("queue", queue.rawValue)]).increment() }
    }

    static func queue(_ depths: [QueueDepth], now: Date) {
        for depth in depths {
            let queue = depth.queue.rawValue
            for (state, count) in [("waiting", depth.waiting), ("running", depth.running), ("dead", depth.dead)] {
                Gauge(label: "lightsail_queue_depth", dimensions: [("queue", queue), ("state", state)]).record(count)
            }
            Gauge(label: "lightsail_queue_oldest_waiting_seconds", dimensions: [("queue", queue)])
                .record(depth.oldestWaiting.map { max(0, now.timeIntervalSince($0)) } ?? 0)
        }
    }
}
