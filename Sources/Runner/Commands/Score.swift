import ArgumentParser
import Foundation
import Pipeline

/// `pipeline score`: an organization's latest scores, their trend over earlier runs, and what
/// changed in the latest run.
struct Score: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an organization's latest scores, the trend over earlier runs, and what changed.")
    @Option(name: .long, help: "Organization id.") var org: String
    @Option(name: .long, help: "How many runs the trend covers (1-100).") var runs = 10
    @Option(name: .long, help: "Output format: text or json.") var format: Controls.Format = .text
    @OptionGroup var backends: BackendOptions
    @OptionGroup var actorOption: ActorOption

    func validate() throws {
        guard (1...100).contains(runs) else { throw ValidationError("--runs must be between 1 and 100") }
    }

    func run() async throws {
        do {
            let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                      permission: .readControls, what: "see scores")
            let history = try await context.store.scoreHistory(of: context.organization, runs: runs)
            guard let latest = history.first else {
                throw PipelineError(.invalidInput, "\(context.organization) has no scored run yet (pipeline run report --org \(context.organization))")
            }
            let byRun = Dictionary(grouping: history, by: \.runID)
            let order = history.map(\.runID).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            func overall(_ records: [ScoreRecord]) -> (points: Int, possible: Int) {
                records.reduce((0, 0)) { ($0.0 + $1.points, $0.1 + $1.possible) }
            }
            func percent(_ value: (points: Int, possible: Int)) -> String {
                value.possible == 0 ? "n/a" : "\(Int((Double(value.points) / Double(value.possible) * 100).rounded()))%"
            }
            let current = byRun[latest.runID] ?? []
            let changes = try await context.store.changes(of: context.organization, run: latest.runID)
            if format == .json {
                let trend: [[String: Any]] = order.map { run in
                    let records = byRun[run] ?? []
                    let total = overall(records)
                    return ["run_id": run, "pipeline": records.first?.pipeline ?? "", "as_of": Timestamp.iso8601(records.first?.asOf ?? Date()),
                            "score": total.possible == 0 ? NSNull() : Double(total.points) / Double(total.possible) as Any,
                            "frameworks": Dictionary(records.map { ($0.framework, $0.possible == 0 ? NSNull() : Double($0.points) / Double($0.possible) as Any) },
                                                     uniquingKeysWith: { first, _ in first })]
                }
                var document: [String: Any] = [
                    "organization_id": context.organization.rawValue, "run_id": latest.runID, "pipeline": latest.pipeline,
                    "as_of": Timestamp.iso8601(latest.asOf),
                    "frameworks": current.map { ["framework": $0.framework, "points": $0.points, "possible": $0.possible,
                                                 "score": $0.possible == 0 ? NSNull() : Double($0.points) / Double($0.possible) as Any,
                                                 "criteria_passed": $0.passed, "criteria_failed": $0.failed,
                                                 "criteria_not_verified": $0.notVerified] as [String: Any] },
                    "trend": trend,
                ]
                if let changes, let data = try? JSONEncoder().encode(changes) { document["changes"] = try JSONSerialization.jsonObject(with: data) }
                let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("\(context.organization): \(percent(overall(current))) at \(Timestamp.iso8601(latest.asOf)) (\(latest.pipeline), run \(latest.runID))")
            for record in current {
                print("  \(record.framework): \(record.percentText) (\(record.points) of \(record.possible) severity points; criteria \(record.passed) passing, \(record.failed) failing, \(record.notVerified) not verified)")
            }
            print("  trend:   " + order.reversed().map { percent(overall(byRun[$0] ?? [])) }.joined(separator: " → "))
            if let changes {
                print("  changes: \(changes.summary)")
                for (label, items) in [("newly failing", changes.newlyFailing), ("newly passing", changes.newlyPassing),
                                       ("new finding", changes.newFindings), ("resolved", changes.resolvedFindings),
                                       ("new resource", changes.newResources), ("vanished", changes.vanishedResources),
                                       ("exception expired", changes.exceptionsExpired)] {
                    for item in items.prefix(20) { print("    \(label): \(item)") }
                    if items.count > 20 { print("    … and \(items.count - 20) more \(label)") }
                }
            }
        } catch {
            throw report(error)
        }
    }
}
