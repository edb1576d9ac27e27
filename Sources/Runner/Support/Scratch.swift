import Foundation
import Pipeline

/// The data directory's `scratch/` folder: each run makes its files (the report and bundle before
/// they are stored) in a folder of its own there, removed when the run ends. A folder a killed
/// process left is removed by the next run.
struct Scratch {
    let root: URL

    /// Opens the folder and removes what dead runs left; returns the scratch with how much went.
    static func open(in dataRoot: URL) async throws -> (Scratch, swept: (files: Int, bytes: Int64)) {
        let root = dataRoot.appendingPathComponent("scratch", isDirectory: true)
        let swept = try await BlockingExecutor.shared.run {
            do {
                try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            } catch {
                throw PipelineError(.storage, "cannot create \(root.path): \(error.localizedDescription)")
            }
            return Residue.sweep(root)
        }
        return (Scratch(root: root), swept)
    }

    /// Runs `body` with a fresh folder, removed afterwards whatever happens.
    func withFolder<T: Sendable>(_ body: (URL) async throws -> T) async throws -> T {
        let folder = root.appendingPathComponent(Residue.temporaryName("run"), isDirectory: true)
        try await BlockingExecutor.shared.run {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        do {
            let value = try await body(folder)
            await Self.remove(folder)
            return value
        } catch {
            await Self.remove(folder)
            throw error
        }
    }

    /// Removal runs even for a cancelled run (detached from its cancellation).
    static func remove(_ folder: URL) async {
        _ = try? await Task.detached {
            try await BlockingExecutor.shared.run { try? FileManager.default.removeItem(at: folder) }
        }.value
    }
}

/// Runs a killed process left recorded as `running`: marked abandoned (and audited) by the next
/// run of the organization, so the history says what happened.
enum AbandonedRuns {
    @discardableResult
    static func sweep(_ store: any EvidenceStore, organization: OrganizationID) async throws -> [String] {
        var abandoned: [String] = []
        for run in try await store.runs(of: organization, status: .running, limit: 1000)
        where Residue.isGone(host: run.host, pid: run.pid, started: run.startedAt) {
            let reason = run.host == Residue.host
                ? "process \(run.pid) on \(run.host) ended without finishing the run"
                : "started at \(Timestamp.iso8601(run.startedAt)) on \(run.host) and never finished"
            if try await store.abandonRun(run.id, of: organization, reason: reason) { abandoned.append(run.id) }
        }
        return abandoned
    }
}
