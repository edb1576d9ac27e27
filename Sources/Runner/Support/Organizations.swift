import Foundation
import Pipeline
import Transport

/// Errors about organizations the store does not have, saying what it has and how to add one.
enum OrganizationLookup {
    static func unknown(_ id: OrganizationID?, in store: any EvidenceStore) async throws -> PipelineError {
        let known = try await store.organizations().map(\.id.rawValue)
        let hint = known.isEmpty
            ? "the store has no organizations: add one with `pipeline orgs add`, or import the demo ones with `pipeline orgs import fixtures/orgs`"
            : "known: \(known.joined(separator: ", "))"
        guard let id else { return PipelineError(.unknownOrganization, "no organizations to run: \(hint)") }
        return PipelineError(.unknownOrganization, "unknown organization '\(id)' (\(hint))")
    }
}

/// The transport each source of an organization talks through: replay when its integration
/// names a recording, the live client otherwise. The source never knows which.
enum IntegrationTransports {
    static func transport(for source: String, of organization: Organization) async throws -> any HTTPTransport {
        guard let settings = organization.integrations[source] else {
            throw PipelineError(.configuration, "organization \(organization.id) has no \(source) integration: connect one with `pipeline integrations add --org \(organization.id) --kind \(source)`")
        }
        if let recording = settings["recording"] {
            return try await ReplayTransport.open(recording: recording)
        }
        throw PipelineError(.configuration, "the \(source) integration of \(organization.id) names no recording, and live \(source) collection is not built yet")
    }
}
