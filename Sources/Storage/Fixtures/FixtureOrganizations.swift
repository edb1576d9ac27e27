import Foundation
import Pipeline
import Yams

/// Organizations described by `fixtures/orgs/<id>/organization.yml`, with recorded integration
/// answers beside them: the demo organizations, and what `pipeline verify` replays.
///
/// ```
/// name: Acme Corp
/// members:
///   - { actor: olive@acme.example, role: owner }
/// integrations:
///   github:
///     account: acme-corp
///     recording: github.json
/// ```
public struct FixtureOrganizations: OrganizationDirectory {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    public func all() async throws -> [Organization] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        var organizations: [Organization] = []
        for entry in entries.sorted() where OrganizationID.isValid(entry) {
            let file = root.appendingPathComponent(entry).appendingPathComponent("organization.yml")
            guard FileManager.default.fileExists(atPath: file.path) else { continue }
            organizations.append(try load(try OrganizationID(entry)))
        }
        return organizations
    }

    public func organization(_ id: OrganizationID) async throws -> Organization {
        let file = root.appendingPathComponent(id.rawValue).appendingPathComponent("organization.yml")
        guard FileManager.default.fileExists(atPath: file.path) else {
            let known = (try? await all().map(\.id.rawValue).joined(separator: ", ")) ?? ""
            throw PipelineError(.unknownOrganization,
                                "unknown organization '\(id)': no \(file.path)" + (known.isEmpty ? "" : " (known: \(known))"))
        }
        return try load(id)
    }

    /// The recording file for one integration of one organization.
    public func recording(for source: String, of organization: Organization) throws -> String {
        guard let name = organization.integrations[source]?["recording"] else {
            throw PipelineError(.fixture, "organization \(organization.id) has no recording for \(source) (integrations.\(source).recording)")
        }
        guard !name.contains("/"), !name.hasPrefix(".") else {
            throw PipelineError(.fixture, "recording name \(quotedForMessage(name)) of \(organization.id) must be a file name in its folder")
        }
        return root.appendingPathComponent(organization.id.rawValue).appendingPathComponent(name).path
    }

    func load(_ id: OrganizationID) throws -> Organization {
        let file = root.appendingPathComponent(id.rawValue).appendingPathComponent("organization.yml")
        guard let text = try? String(contentsOf: file, encoding: .utf8) else {
            throw PipelineError(.fixture, "\(file.path): cannot read")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw PipelineError(.fixture, "\(file.path): invalid YAML", detail: "\(error)")
        }
        guard let mapping = node?.mapping, let name = mapping["name"]?.string else {
            throw PipelineError(.fixture, "\(file.path): needs a 'name'")
        }
        var integrations: [String: [String: String]] = [:]
        if let list = mapping["integrations"] {
            guard let entries = list.mapping else {
                throw PipelineError(.fixture, "\(file.path): 'integrations' must be a mapping")
            }
            for (key, value) in entries {
                guard let source = key.string, let settings = value.mapping else {
                    throw PipelineError(.fixture, "\(file.path): integration \(key.string ?? "?") must be a mapping of settings")
                }
                var values: [String: String] = [:]
                for (k, v) in settings {
                    guard let k = k.string, let v = v.string else {
                        throw PipelineError(.fixture, "\(file.path): settings of \(source) must be strings")
                    }
                    values[k] = v
                }
                integrations[source] = values
            }
        }
        var members: [Member] = []
        if let list = mapping["members"] {
            guard let entries = list.sequence else {
                throw PipelineError(.fixture, "\(file.path): 'members' must be a list of {actor, role}")
            }
            for entry in entries {
                guard let actor = entry.mapping?["actor"]?.string, Actor.isValidName(actor),
                      let role = entry.mapping?["role"]?.string.flatMap(Role.init(rawValue:)) else {
                    throw PipelineError(.fixture, "\(file.path): each member needs an 'actor' and a 'role' (owner, admin, member, viewer)")
                }
                members.append(Member(actor: actor, role: role))
            }
        }
        return Organization(id: id, name: name, integrations: integrations, members: members)
    }
}
