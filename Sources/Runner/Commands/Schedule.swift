import ArgumentParser
import Foundation
import Pipeline

struct Schedule: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The scheduled pipelines: their latest and next slot, and for each organization whether a run is due.",
        discussion: """
        Schedules are the definitions' cron expressions (UTC). A pipeline is due for an organization \
        when its latest slot has passed and no run of it has succeeded since; slots missed while \
        the machine was down are run once. `pipeline run --due` runs what is due; `pipeline \
        enqueue --due` queues it (PostgreSQL), so one cron entry every few minutes serves every pipeline.
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

    @Option(name: .long, help: "Only this organization.") var org: String?
    @Option(name: .long, help: ArgumentHelp("The time to decide at, ISO-8601 UTC (default: now).", valueName: "time")) var at: String?
    @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
    @OptionGroup var locations: LocationOptions
    @OptionGroup var backends: BackendOptions

    func validate() throws {
        if let at, Timestamp.parse(at) == nil { throw ValidationError("--at '\(at)' is not an ISO-8601 time such as 2026-11-28T00:00:00Z") }
    }

    func run() async throws {
        do {
            let now = at.flatMap(Timestamp.parse) ?? Date()
            let entries = try Schedules.scheduled(in: locations.pipelines)
            let requested = try org.map { try OrganizationID($0) }
            let store = try await backends.openStore()
            let organizations = try await OrganizationLookup.selected(requested, in: store)
            let decisions = try await Schedules.decisions(entries, organizations: organizations, store: store, now: now)
            switch format {
            case .json:
                let list = entries.map { entry -> [String: Any] in
                    [
                        "pipeline": entry.name, "schedule": entry.schedule.expression,
                        "latest_slot": entry.schedule.previous(atOrBefore: now).map(Timestamp.iso8601) ?? NSNull(),
                        "next_slot": entry.schedule.next(after: now).map(Timestamp.iso8601) ?? NSNull(),
                        "organizations": decisions.filter { $0.entry.name == entry.name }.map { decision -> [String: Any] in
                            ["organization_id": decision.organization.id.rawValue, "due": decision.due.due,
                             "time_zone": decision.organization.timeZone ?? "UTC",
                             "slot": Timestamp.iso8601(decision.due.slot), "missed_slots": decision.due.missed,
                             "last_success": decision.lastSuccess.map(Timestamp.iso8601) ?? NSNull()]
                        },
                    ]
                }
                let data = try JSONSerialization.data(withJSONObject: ["at": Timestamp.iso8601(now), "pipelines": list],
                                                      options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            case .text:
                if entries.isEmpty { print("no pipeline of \(locations.pipelines) has a schedule") }
                for entry in entries {
                    let latest = entry.schedule.previous(atOrBefore: now).map(Timestamp.iso8601) ?? "none in five years"
                    let next = entry.schedule.next(after: now).map(Timestamp.iso8601) ?? "none in five years"
                    print("\(entry.name)  \(entry.schedule.expression) (UTC)  latest slot \(latest), next \(next)")
                    for decision in decisions where decision.entry.name == entry.name {
                        let last = decision.lastSuccess.map { "last success \(Timestamp.iso8601($0))" } ?? "never run"
                        let state = decision.due.due
                            ? "DUE for \(Timestamp.iso8601(decision.due.slot))" + (decision.due.missed > 0
                                ? " (\(decision.due.missed) earlier slot\(decision.due.missed == 1 ? "" : "s") missed: run once)" : "")
                            : "done"
                        let zone = decision.organization.timeZone.map { " [\($0)]" } ?? ""
                        print("  \(decision.organization.id)\(zone)  \(state); \(last)")
                    }
                }
            }
        } catch {
            throw report(error)
        }
    }
}
