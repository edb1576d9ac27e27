import Foundation
import Pipeline
import Yams

/// Organizations described by `<root>/<id>/organization.yml`, with recorded integration answers
/// beside them: the demo organizations in `fixtures/orgs`, read only by `pipeline orgs import`.
///
/// ```
/// name: Acme Corp
/// members:
///   - { actor: olive@acme.example, role: owner }
/// integrations:
///   github:
///     account: acme-corp
///     recording: github.jsonl
/// ```
///
/// A broken description is reported at its file, line and column.
public struct FixtureOrganizations: Sendable {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    /// An organization whose description could not be loaded, and why.
    public struct Problem: Sendable, Error, CustomStringConvertible {
        public let id: OrganizationID
        public let diagnostic: Diagnostic
        public var description: String { diagnostic.description }
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

    func file(of id: OrganizationID) -> URL {
        root.appendingPathComponent(id.rawValue).appendingPathComponent("organization.yml")
    }

    /// Reads one description; a problem names the file, line and column.
    public func load(_ id: OrganizationID) throws -> Organization {
        let path = file(of: id).path
        func problem(_ node: Node?, _ message: String, line: Int = 1) -> Problem {
            Problem(id: id, diagnostic: Diagnostic(file: path, line: node?.mark?.line ?? line, column: node?.mark?.column ?? 1,
                                                   message: message, code: "invalid-organization"))
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= DefinitionLoader.maximumSize,
              let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw problem(nil, "cannot read the organization's description (a UTF-8 file of at most 1 MiB)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            switch error {
            case let .scanner(_, message, mark, _), let .parser(_, message, mark, _), let .composer(_, message, mark, _):
                throw Problem(id: id, diagnostic: Diagnostic(file: path, line: mark.line, column: mark.column,
                                                             message: "invalid YAML: \(message)", code: "yaml-syntax"))
            default:
                throw problem(nil, "invalid YAML")
            }
        }
        guard let node, let mapping = node.mapping else { throw problem(node, "the description must be a mapping with a 'name'") }
        guard let name = mapping["name"]?.string, !name.isEmpty else { throw problem(node, "needs a 'name'") }
        var integrations: [String: [String: String]] = [:]
        if let list = mapping["integrations"] {
            guard let entries = list.mapping else { throw problem(list, "'integrations' must be a mapping") }
            for (key, value) in entries {
                guard let source = key.string, let settings = value.mapping else {
                    throw problem(value, "integration \(quotedForMessage(key.string ?? "?")) must be a mapping of settings")
                }
                var values: [String: String] = [:]
                for (k, v) in settings {
                    guard let k = k.string, let v = v.string else { throw problem(v, "settings of \(source) must be strings") }
                    values[k] = v
                }
                integrations[source] = values
            }
        }
        var members: [Member] = []
        if let list = mapping["members"] {
            guard let entries = list.sequence else { throw problem(list, "'members' must be a list of {actor, role}") }
            for entry in entries {
                guard let actor = entry.mapping?["actor"]?.string, Actor.isValidName(actor),
                      let role = entry.mapping?["role"]?.string.flatMap(Role.init(rawValue:)) else {
                    throw problem(entry, "each member needs an 'actor' and a 'role' (owner, admin, member, viewer)")
                }
                members.append(Member(actor: actor, role: role))
            }
        }
        var timeZone: String?
        if let zone = mapping["time_zone"] {
            guard let text = zone.string, Organization.isValidTimeZone(text) else {
                throw problem(zone, "'time_zone' must be an IANA time zone such as Europe/Berlin or America/New_York")
            }
            timeZone = text
        }
        return Organization(id: id, name: name, integrations: integrations, members: members, timeZone: timeZone)
    }

    /// The risk exceptions a description records (`exceptions:`), added on import:
    /// `{check, resource?, approver, justification, expires}` each.
    public func exceptions(_ id: OrganizationID, createdAt: Date) throws -> [RiskException] {
        let path = file(of: id).path
        guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }),
              let list = (try? Yams.compose(yaml: text))??.mapping?["exceptions"] else { return [] }
        guard let entries = list.sequence else {
            throw Problem(id: id, diagnostic: Diagnostic(file: path, line: list.mark?.line ?? 1, column: list.mark?.column ?? 1,
                                                         message: "'exceptions' must be a list", code: "invalid-organization"))
        }
        return try entries.enumerated().map { number, entry in
            guard let fields = entry.mapping, let check = fields["check"]?.string, let approver = fields["approver"]?.string,
                  let why = fields["justification"]?.string, let expires = fields["expires"]?.string.flatMap(Timestamp.parse) else {
                throw Problem(id: id, diagnostic: Diagnostic(file: path, line: entry.mark?.line ?? 1, column: entry.mark?.column ?? 1,
                                                             message: "each exception needs 'check', 'approver', 'justification' and 'expires' (a date)",
                                                             code: "invalid-organization"))
            }
            // Ids fixed by position, so that an import is the same everywhere.
            return RiskException(id: "exc-\(id.rawValue)-\(number + 1)", checkID: check, resource: fields["resource"]?.string,
                                 approver: approver, justification: why, expires: expires, createdBy: "import", createdAt: createdAt)
        }
    }

    /// A document an organization description attaches (`documents:`), uploaded on import as
    /// evidence for manual controls.
    public struct Document: Sendable, Hashable {
        public let file: URL
        public let controls: [String]
        public let reviewer: String?
        public let reviewed: Date
        public let validFor: Duration
    }

    /// The description's documents: `{file, controls, reviewer, reviewed, valid_for}` each, the
    /// file beside organization.yml.
    public func documents(_ id: OrganizationID) throws -> [Document] {
        let path = file(of: id).path
        func problem(_ node: Node?, _ message: String) -> Problem {
            Problem(id: id, diagnostic: Diagnostic(file: path, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1,
                                                   message: message, code: "invalid-organization"))
        }
        guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }),
              let list = (try? Yams.compose(yaml: text))??.mapping?["documents"] else { return [] }
        guard let entries = list.sequence else { throw problem(list, "'documents' must be a list of {file, controls, reviewer, reviewed, valid_for}") }
        return try entries.map { entry in
            guard let fields = entry.mapping, let name = fields["file"]?.string, !name.contains("/"), !name.hasPrefix("."),
                  let controls = fields["controls"]?.sequence?.compactMap(\.string), !controls.isEmpty,
                  let reviewed = fields["reviewed"]?.string.flatMap(Timestamp.parse) else {
                throw problem(entry, "each document needs 'file' (beside organization.yml), 'controls' (a list) and 'reviewed' (a date)")
            }
            let validity = fields["valid_for"]?.string.flatMap(parseDuration) ?? .seconds(365 * 86_400)
            return Document(file: root.appendingPathComponent(id.rawValue).appendingPathComponent(name), controls: controls,
                            reviewer: fields["reviewer"]?.string, reviewed: reviewed, validFor: validity)
        }
    }
}
