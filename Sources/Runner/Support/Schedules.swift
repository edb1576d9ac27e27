import Foundation
import Pipeline

/// The scheduled pipelines of a definitions folder, and which organizations each is due for.
enum Schedules {
    struct Entry: Sendable {
        let definition: PipelineDefinition
        let schedule: CronSchedule
        var name: String { definition.name }
        /// The sources its collect stage reads.
        var sources: [String] { definition.collect?.sources ?? [] }
    }

    /// Every definition of `folder` with a `schedule:`; a definition with errors stops everything
    /// (a scheduler must not skip a pipeline silently).
    static func scheduled(in folder: String) throws -> [Entry] {
        let (catalog, _) = try CatalogFiles.loadWithDigests(folder)
        let loader = DefinitionLoader(vocabulary: BuiltIn.vocabulary(catalog))
        return try DefinitionFiles.expand([folder]).compactMap { file in
            let result = loader.load(file: file, within: folder)
            guard let definition = result.definition else {
                for diagnostic in result.diagnostics { StandardError.write(diagnostic.rendered(source: result.source) + "\n") }
                throw PipelineError(.invalidDefinition, "\(file) has errors; no schedule was read")
            }
            return definition.schedule.map { Entry(definition: definition, schedule: $0) }
        }.sorted { $0.name < $1.name }
    }

    /// The run clock of the organization's latest successful run of `pipeline`.
    static func lastSuccess(of pipeline: String, for organization: OrganizationID, store: any EvidenceStore) async throws -> Date? {
        try await store.runs(of: organization, status: .succeeded, limit: 1000).filter { $0.pipeline == pipeline }.map(\.asOf).max()
    }

    struct Decision: Sendable {
        let entry: Entry
        let organization: Organization
        let lastSuccess: Date?
        let due: ScheduleDecision.Due
    }

    /// For each scheduled pipeline and organization: its latest slot, and whether it is due.
    static func decisions(_ entries: [Entry], organizations: [Organization], store: any EvidenceStore,
                          now: Date) async throws -> [Decision] {
        var decisions: [Decision] = []
        for entry in entries {
            let found = try await mapConcurrently(organizations, width: 8) { organization -> Decision? in
                let last = try await lastSuccess(of: entry.name, for: organization.id, store: store)
                return ScheduleDecision.decide(entry.schedule, now: now, lastSuccess: last, in: organization.scheduleTimeZone)
                    .map { Decision(entry: entry, organization: organization, lastSuccess: last, due: $0) }
            }
            decisions += found.compactMap { $0 }
        }
        return decisions
    }
}
